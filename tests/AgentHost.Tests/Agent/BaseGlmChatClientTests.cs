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
/// The fallback with the real connector and the engine's base-GLM format: <see cref="GlmChatClient"/> over the real GLM
/// tokenizer and <see cref="GlmBlankChatFormat"/>; only the generated text is scripted.
/// </summary>
public sealed class BaseGlmChatClientTests : IDisposable
{
    private const string TokenizerPath = "data/tokenizers/glm-chinese/cog-pretrain.model";
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private sealed class ScriptedBaseGlmSource(Func<string, string> reply) : IGlmTokenSource
    {
        private readonly GlmChineseTokenizer _tokenizer = GlmChineseTokenizer.Load(CliTestModel.SharedPath(TokenizerPath));
        public List<string> Prompts { get; } = [];
        public string ModelId => "glm-base-scripted";
        public IGlmTokenizer Tokenizer => _tokenizer;
        public IChatFormat ChatFormat => new GlmBlankChatFormat(_tokenizer);
        public int MaxContext => 8192;

        public async IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            string prompt = _tokenizer.Decode(promptIds, skipSpecialTokens: true);
            Prompts.Add(prompt);
            yield return new GenerationChunk(0, reply(prompt), FinishReason.Stop, promptIds.Count, 1);
        }
    }

    [Cli.SharedFileFact(TokenizerPath)]
    public async Task ABaseGlmModelIsDetectedAndAnsweredByRetrieveThenAnswer()
    {
        using var kb = await RagFixtures.SamplesKbAsync(_temp);
        var source = new ScriptedBaseGlmSource(prompt => prompt.Contains("查询") && !prompt.Contains("已知信息") ? "孔乙己 绰号" : "十九个钱[1]");
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
}
