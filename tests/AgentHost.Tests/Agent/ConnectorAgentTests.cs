using System.Runtime.CompilerServices;
using AgentHost.Rag.Agent;
using AgentHost.Rag.Answering;
using AgentHost.Tests.Cli;
using AgentHost.Tests.Rag;
using Glm.Connector;
using Glm.Engine.Generation;
using Glm.Engine.Tokenization;

namespace AgentHost.Tests.Agent;

/// <summary>
/// The agent through the real connector: <see cref="GlmChatClient"/> over real tokenizers and the engine's chat formats (base GLM:
/// <see cref="GlmBlankChatFormat"/>, ChatGLM3 with tools); only the generated text is scripted.
/// </summary>
public sealed class ConnectorAgentTests : IDisposable
{
    private const string TokenizerPath = "data/tokenizers/glm-chinese/cog-pretrain.model";
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>A token source with a real tokenizer and chat format whose generated text is <c>reply(decoded prompt)</c>.</summary>
    private sealed class ScriptedSource(IGlmTokenizer tokenizer, IChatFormat format, Func<string, string> reply) : IGlmTokenSource
    {
        private readonly IGlmTokenizer _tokenizer = tokenizer;
        public List<string> Prompts { get; } = [];
        public string ModelId => "glm-base-scripted";
        public IGlmTokenizer Tokenizer => _tokenizer;
        public IChatFormat ChatFormat => format;
        public int MaxContext => 8192;

        public async IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            string prompt = _tokenizer.Decode(promptIds);
            Prompts.Add(prompt);
            yield return new GenerationChunk(0, reply(prompt), FinishReason.Stop, promptIds.Count, 1);
        }
    }

    [Cli.SharedFileFact(TokenizerPath)]
    public async Task ABaseGlmModelIsDetectedAndAnsweredByRetrieveThenAnswer()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var baseTokenizer = GlmChineseTokenizer.Load(CliTestModel.SharedPath(TokenizerPath));
        var source = new ScriptedSource(baseTokenizer, new GlmBlankChatFormat(baseTokenizer), prompt => prompt.Contains("查询") && !prompt.Contains("已知信息") ? "孔乙己 绰号" : "十九个钱[1]");
        var chat = new GlmChatClient(source);
        Assert.False(KnowledgeBaseAgent.ModelHasToolFormat(chat));

        foreach (bool? forceTools in new bool?[] { null, true })
        {
            var prompts = RagFixtures.Prompts();
            var retriever = new Retriever(kb, null);
            var plugin = new KnowledgeBasePlugin(kb, retriever, chat, prompts);
            var notices = new StringWriter();
            var agent = new KnowledgeBaseAgent(chat, retriever, plugin, prompts, new KnowledgeBaseAgentOptions
            {
                KnowledgeBase = "samples", UseTools = forceTools, Ask = new AskOptions { TopK = 3, Thresholds = new(0.25, 0.5) },
            }, notices);

            var first = await agent.SendAsync("孔乙己欠了咸亨酒店多少钱？");
            Assert.Equal("十九个钱[1]", first.Answer);
            Assert.Single(first.Citations);
            var second = await agent.SendAsync("他的绰号是怎么来的？");
            Assert.Equal("他的绰号是怎么来的？ 孔乙己 绰号", second.Query);
            Assert.False(agent.UsesTools);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(notices.ToString(), "no tool format"));
            Assert.Equal(4, agent.History.Count);
        }
        Assert.Contains(source.Prompts, p => p.Contains("对话历史") && p.Contains("孔乙己欠了咸亨酒店多少钱"));
    }

    [Cli.SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task AChatGlm3ModelsToolCallRunsSearchThroughTheRealConnector()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var tokenizer = ChatGlm3Tokenizer.Load(CliTestModel.SharedPath("data/tokenizers/chatglm3-6b/tokenizer.model"));
        int call = 0;
        var source = new ScriptedSource(tokenizer, TokenizerFactory.CreateChatFormat(tokenizer)!, _ => call++ == 0
            ? "kb_search_documents\n```python\ntool_call(query='孔乙己 咸亨酒店 欠', top_k=2)\n```"
            : "孔乙己欠咸亨酒店十九个钱。[2][5]");
        var chat = new GlmChatClient(source);
        Assert.True(KnowledgeBaseAgent.ModelHasToolFormat(chat));
        var prompts = RagFixtures.Prompts();
        var retriever = new Retriever(kb, null);
        var plugin = new KnowledgeBasePlugin(kb, retriever, chat, prompts);
        var agent = new KnowledgeBaseAgent(chat, retriever, plugin, prompts, new KnowledgeBaseAgentOptions { KnowledgeBase = "samples" });

        var result = await agent.SendAsync("孔乙己欠了咸亨酒店多少钱？");

        Assert.True(agent.UsesTools);
        Assert.Equal(2, source.Prompts.Count);
        Assert.Contains("kb_search_documents", source.Prompts[0]);               // the tool list in ChatGLM3's system turn
        Assert.Contains("<|observation|>", source.Prompts[1]);                   // the search result went back as an observation
        Assert.Contains("[1] 来源：kongyiji.md", source.Prompts[1]);
        Assert.Equal(2, plugin.TurnPassages.Count);
        Assert.Equal("孔乙己欠咸亨酒店十九个钱。[2]", result.Answer);
        Assert.Equal([5], result.DroppedCitations);
    }
}
