using AgentHost.Rag.Agent;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Summarization;
using AgentHost.Tests.Rag;
using Glm.Engine;
using Microsoft.Extensions.AI;

namespace AgentHost.Tests.Agent;

/// <summary>glm chat --kb's agent over a real SQLite knowledge base (the bundled samples), the real SK kernel and prompts.</summary>
public sealed class KnowledgeBaseAgentTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static KnowledgeBaseAgent CreateAgent(IChatClient chat, SqliteKnowledgeBase kb, out KnowledgeBasePlugin plugin, TextWriter? notices = null)
    {
        var prompts = RagFixtures.Prompts();
        var retriever = new Retriever(kb, null);
        var thresholds = new RelevanceThresholds(0.25, 0.5);
        plugin = new KnowledgeBasePlugin(kb, retriever, chat, prompts, new KnowledgeBasePluginOptions { Thresholds = thresholds });
        return new KnowledgeBaseAgent(chat, retriever, plugin, prompts, new KnowledgeBaseAgentOptions
        {
            KnowledgeBase = "samples",
            Ask = new AskOptions { TopK = 3, Thresholds = thresholds },
        }, notices);
    }

    [Fact]
    public async Task TheModelsSearchCallRunsTheKernelFunctionAndItsResultReachesTheSecondRequest()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var chat = new ToolScriptedChatClient(
            query: _ => "孔乙己 咸亨酒店 欠 钱",
            answer: result => result.Contains("[1] 来源：kongyiji.md", StringComparison.Ordinal) ? "孔乙己欠咸亨酒店十九个钱。[1][7]" : "没有资料",
            rewrite: _ => throw new InvalidOperationException("the first turn must not be rewritten"));
        var agent = CreateAgent(chat, kb, out var plugin);
        var streamed = new System.Text.StringBuilder();

        var result = await agent.SendAsync("孔乙己欠了咸亨酒店多少钱？", d => streamed.Append(d));

        Assert.True(agent.UsesTools);
        Assert.Equal(2, chat.Requests.Count);
        var tools = chat.Options[0]!.Tools!.Select(t => t.Name).ToList();
        Assert.Equal(["kb_list_sources", "kb_search_documents", "kb_summarize_document"], tools.Order());
        Assert.Equal(ChatToolMode.Auto, chat.Options[0]!.ToolMode);
        Assert.Contains("search_documents", chat.Requests[0][0].Text); // the agent system prompt
        // The second request carries the call and the real search result from the knowledge base.
        var second = chat.Requests[1];
        var call = second.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("kb_search_documents", call.Name);
        var toolResult = second.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal(call.CallId, toolResult.CallId);
        string resultText = toolResult.Result!.ToString()!;
        Assert.Contains("[1] 来源：kongyiji.md", resultText);
        Assert.Contains("孔乙己", resultText);
        Assert.Equal(3, plugin.TurnPassages.Count);

        // Citations are checked against the passages the search returned: [7] pointed at none.
        Assert.Equal("孔乙己欠咸亨酒店十九个钱。[1]", result.Answer);
        Assert.Equal(result.Answer, streamed.ToString());
        Assert.Equal([7], result.DroppedCitations);
        Assert.Equal("kongyiji.md", Path.GetFileName(Assert.Single(result.Citations).Source));
        Assert.Equal("孔乙己欠咸亨酒店十九个钱。[1]", agent.History.Last().Content);
    }

    [Fact]
    public async Task AFollowUpSearchIsRewrittenWithTheConversation()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var rewritePrompts = new List<string>();
        var chat = new ToolScriptedChatClient(
            query: user => user.Contains("他") ? "他的绰号是怎么来的" : "孔乙己 咸亨酒店",
            answer: _ => "见资料[1]。",
            rewrite: prompt => { rewritePrompts.Add(prompt); return "孔乙己 绰号 来历"; });
        var agent = CreateAgent(chat, kb, out var plugin);

        await agent.SendAsync("孔乙己是谁？");
        Assert.Empty(rewritePrompts);
        await agent.SendAsync("他的绰号是怎么来的？");

        string prompt = Assert.Single(rewritePrompts);
        Assert.Contains("对话历史：\n用户：孔乙己是谁？\n助手：见资料[1]。", prompt);
        Assert.Contains("问题：他的绰号是怎么来的", prompt);
        Assert.Equal("他的绰号是怎么来的 孔乙己 绰号 来历", Assert.Single(plugin.TurnQueries));
        Assert.NotEmpty(plugin.TurnPassages);
    }

    [Fact]
    public async Task AModelWithoutAToolFormatFallsBackToRetrieveThenAnswerAndSaysSoOnce()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var rewritePrompts = new List<string>();
        var script = new ScriptedChatClient(prompt =>
        {
            if (prompt.Contains("查询：")) { rewritePrompts.Add(prompt); return "孔乙己 绰号"; }
            return prompt.Contains("<已知信息>") ? "孔乙己欠十九个钱[1][9]。" : "?";
        });
        var chat = new BaseModelChatClient(script);
        var notices = new StringWriter();
        var agent = CreateAgent(chat, kb, out _, notices);

        var first = await agent.SendAsync("孔乙己欠了咸亨酒店多少钱？");
        Assert.False(agent.UsesTools);
        Assert.Equal("孔乙己欠十九个钱[1]。", first.Answer);
        Assert.Equal([9], first.DroppedCitations);
        Assert.Single(first.Citations);
        Assert.Empty(rewritePrompts);

        var second = await agent.SendAsync("他的绰号是怎么来的？");
        Assert.Contains("对话历史：\n用户：孔乙己欠了咸亨酒店多少钱？\n助手：孔乙己欠十九个钱[1]。", Assert.Single(rewritePrompts));
        Assert.Equal("他的绰号是怎么来的？ 孔乙己 绰号", second.Query);
        Assert.Contains("他的绰号是怎么来的？（即：孔乙己 绰号）", script.UserPrompts.Last());
        Assert.NotEmpty(second.Passages);

        string said = notices.ToString();
        Assert.Contains("no tool format", said);
        Assert.Equal(said.IndexOf("no tool format", StringComparison.Ordinal), said.LastIndexOf("no tool format", StringComparison.Ordinal));
        Assert.Equal(4, agent.History.Count); // two user and two assistant messages, no tool traffic
    }

    [Fact]
    public async Task ListAndSummarizeToolsUseTheKnowledgeBase()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var chat = new ScriptedChatClient(prompt => "这是摘要。");
        var plugin = new KnowledgeBasePlugin(kb, new Retriever(kb, null), chat, RagFixtures.Prompts(),
            new KnowledgeBasePluginOptions { Summarize = new SummarizeOptions(ContextTokens: 100000, MaxOutputTokens: 200) });
        string list = plugin.ListSources();
        Assert.Contains("共有 5 篇文档", list);
        Assert.Contains("kongyiji.md", list);
        Assert.Equal("《guxiang.md》摘要：这是摘要。", await plugin.SummarizeDocumentAsync("guxiang.md"));
        Assert.Contains("故乡", chat.UserPrompts.Single());
        Assert.Contains("没有文档“nothing.md”", await plugin.SummarizeDocumentAsync("nothing.md"));
    }

    [Fact]
    public async Task HistoryKeepsTheLastTurnsWhole()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var chat = new BaseModelChatClient(new ScriptedChatClient(p => p.Contains("查询：") ? "孔乙己" : "答[1]"));
        var prompts = RagFixtures.Prompts();
        var retriever = new Retriever(kb, null);
        var plugin = new KnowledgeBasePlugin(kb, retriever, chat, prompts);
        var agent = new KnowledgeBaseAgent(chat, retriever, plugin, prompts,
            new KnowledgeBaseAgentOptions { KnowledgeBase = "samples", MaxTurns = 2, Ask = new AskOptions { Thresholds = new(0, 0) } });
        foreach (var q in new[] { "孔乙己一", "孔乙己二", "孔乙己三" }) await agent.SendAsync(q);
        Assert.Equal(["孔乙己二", "答[1]", "孔乙己三", "答[1]"], agent.History.Select(m => m.Content));
        await Assert.ThrowsAsync<GlmException>(() => agent.SendAsync("  "));
    }
}

/// <summary>
/// Stands in for a base GLM model: its chat format (GlmBlankChatFormat) rejects tools with the engine's exception; text
/// requests go to the scripted model.
/// </summary>
internal sealed class BaseModelChatClient(ScriptedChatClient inner) : DelegatingChatClient(inner)
{
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        options?.Tools is { Count: > 0 }
            ? throw new GlmException("this base GLM model has no tool format; function calling needs a ChatGLM3 or GLM-4 chat model.")
            : base.GetStreamingResponseAsync(messages, options, cancellationToken);

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        options?.Tools is { Count: > 0 }
            ? throw new GlmException("this base GLM model has no tool format; function calling needs a ChatGLM3 or GLM-4 chat model.")
            : base.GetResponseAsync(messages, options, cancellationToken);
}
