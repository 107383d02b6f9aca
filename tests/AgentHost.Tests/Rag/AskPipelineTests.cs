using AgentHost.Rag.Answering;
using AgentHost.Rag.Prompts;

namespace AgentHost.Tests.Rag;

public class AskPipelineTests
{
    private static readonly AskOptions Options = new() { TopK = 3, Thresholds = new RelevanceThresholds(0.3, 0.3) };

    [Fact]
    public async Task AskAnswersFromTheKnowledgeBaseWithCheckedCitations()
    {
        using var temp = new TempFolder();
        using var kb = await RagFixtures.SamplesKbAsync(temp);
        var chat = new ScriptedChatClient(_ => "孔乙己还欠十九个钱[1]。另见[9]。");
        var streamed = new List<string>();
        var result = await new AskPipeline(new Retriever(kb, null), chat, RagFixtures.Prompts())
            .AskAsync("孔乙己欠了咸亨酒店多少钱？", Options, streamed.Add);

        Assert.False(result.NoAnswer);
        Assert.Equal("孔乙己还欠十九个钱[1]。另见。", result.Answer);
        Assert.Equal(result.Answer, string.Concat(streamed));
        Assert.Equal([9], result.DroppedCitations);
        var citation = Assert.Single(result.Citations);
        Assert.Equal(1, citation.Number);
        Assert.EndsWith("kongyiji.md", citation.Source);
        Assert.Equal("孔乙己", citation.Section);
        Assert.Equal(result.Passages[0].Hit.Source, citation.Source);
        Assert.True(citation.EndOffset > citation.StartOffset);

        // The model saw the real QA prompt: the question, and passage [1] from kongyiji.md containing the fact.
        Assert.Equal(1, chat.Calls);
        string prompt = chat.UserPrompts.Single();
        Assert.Contains("孔乙己欠了咸亨酒店多少钱？", prompt);
        Assert.Contains("[1] 来源：kongyiji.md", prompt);
        Assert.Contains("十九个钱", prompt);
        Assert.Contains(result.Passages.Count.ToString(), prompt);
        Assert.Equal(Microsoft.Extensions.AI.ChatRole.System, chat.Requests[0][0].Role);
    }

    [Fact]
    public async Task RewriteAsksTheModelForAQueryFirstAndRetrievesWithIt()
    {
        using var temp = new TempFolder();
        using var kb = await RagFixtures.SamplesKbAsync(temp);
        var chat = new ScriptedChatClient(p => p.Contains("关键词查询") ? "藤野 解剖学 讲义\n多余的解释" : "他教解剖学[1]。");
        var result = await new AskPipeline(new Retriever(kb, null), chat, RagFixtures.Prompts())
            .AskAsync("那位日本老师教鲁迅哪门课？", Options with { RewriteQuery = true });
        Assert.Equal(2, chat.Calls);
        Assert.Contains("那位日本老师教鲁迅哪门课？", chat.UserPrompts.First());
        Assert.Equal("那位日本老师教鲁迅哪门课？ 藤野 解剖学 讲义", result.Query);
        Assert.EndsWith("tengye_xiansheng.md", result.Citations.Single().Source);
        Assert.Equal(64, chat.Options[0]!.MaxOutputTokens); // from prompts/query_rewrite/config.json
    }

    [Fact]
    public async Task NothingRelevantGivesTheFixedMessageWithoutCallingTheModel()
    {
        using var temp = new TempFolder();
        using var kb = await RagFixtures.SamplesKbAsync(temp);
        var chat = new ScriptedChatClient(_ => throw new InvalidOperationException("the model must not be called"));
        var prompts = RagFixtures.Prompts();
        var result = await new AskPipeline(new Retriever(kb, null), chat, prompts).AskAsync("量子计算机的工作原理是什么？", Options);

        Assert.True(result.NoAnswer);
        Assert.Equal(0, chat.Calls);
        Assert.Equal(await prompts.RenderAsync(PromptLibrary.NoAnswer, new Dictionary<string, object?>()), result.Answer);
        Assert.Empty(result.Passages);
        Assert.Empty(result.Citations);
    }

    [Fact]
    public async Task AnEmptyKnowledgeBaseAlsoGivesTheNoAnswerMessage()
    {
        using var temp = new TempFolder();
        using var kb = new AgentHost.Rag.Stores.SqliteKnowledgeBase(temp.File("empty.db"));
        var chat = new ScriptedChatClient(_ => "不应调用");
        var result = await new AskPipeline(new Retriever(kb, new HashingEmbeddingGenerator()), chat, RagFixtures.Prompts())
            .AskAsync("孔乙己是谁？", Options);
        Assert.True(result.NoAnswer);
        Assert.Equal(0, chat.Calls);
    }

    [Fact]
    public async Task HybridRetrievalWithAnEmbedderFindsThePassageAndCoverageGatesKeywordHits()
    {
        using var temp = new TempFolder();
        var embedder = new AgentHost.Rag.Llm.HashingEmbeddingGenerator();
        using var kb = await RagFixtures.SamplesKbAsync(temp, embedder);
        var retriever = new Retriever(kb, embedder);
        var hits = await retriever.RetrieveRelevantAsync("藤野先生在仙台教什么课？", RetrievalMode.Hybrid, 3, new RelevanceThresholds(0.3, 0.3));
        Assert.NotEmpty(hits);
        Assert.EndsWith("tengye_xiansheng.md", hits[0].Hit.Source);
        Assert.True(hits[0].TermCoverage >= 0.3 || hits[0].Cosine >= 0.3);
        Assert.Equal(["量子", "子计", "计算", "算机", "原理"], Retriever.ContentTerms("量子计算机的原理是什么"));
    }
}
