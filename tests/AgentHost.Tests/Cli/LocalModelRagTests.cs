using AgentHost.Cli;
using AgentHost.Hosting;
using AgentHost.Rag.Llm;
using AgentHost.Tests.Rag;
using Glm.Connector;
using Glm.Engine;
using Microsoft.Extensions.AI;

namespace AgentHost.Tests.Cli;

/// <summary>The local adapter over the real engine: a tiny random-weight model with the real ChatGLM3 tokenizer.</summary>
[Collection("RagHost")]
public sealed class LocalModelRagTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task LocalChatClientStreamsWithinTheTokenLimitAndReportsUsage()
    {
        using var model = GlmModel.Load(CliTestModel.ChatGlm3Folder(_temp.File("m")), new GlmLoadOptions { Device = "cpu", DType = "fp32" });
        using var client = new GlmChatClient(new GlmModelTokenSource(model));
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.System, "你是助手。"), new ChatMessage(ChatRole.User, "你好")],
                           new ChatOptions { MaxOutputTokens = 5 }))
            updates.Add(u);
        var last = updates[^1];
        Assert.NotNull(last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.InRange(usage.OutputTokenCount!.Value, 1, 5);
        Assert.True(usage.InputTokenCount > 4);
        Assert.Equal(GlmChatClient.ProviderName, client.GetService<ChatClientMetadata>()!.ProviderName);

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "你好")], new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(ChatRole.Assistant, response.Messages.Single().Role);
    }

    [SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task AskWithALocalModelFolderRunsEndToEnd()
    {
        string modelDir = CliTestModel.ChatGlm3Folder(_temp.File("m"));
        string settings = _temp.Write("appsettings.json", """
            { "Rag": { "ContextTokens": 200 }, "Chat": { "MaxOutputTokens": 6 } }
            """);
        var o = new StringWriter();
        var e = new StringWriter();
        using var hooks = RagHostHooks.Use(settingsFile: settings);
        int code = await GlmCommandLine.RunAsync(["ask", "孔乙己欠了咸亨酒店多少钱？", "--model", modelDir, "--top-k", "2",
            "--kb-root", _temp.File("kb"), "--verbose"], o, e);
        Assert.True(code == 0, e.ToString());
        Assert.Contains("loading local model", e.ToString()); // --verbose logs to stderr
        Assert.Contains("kongyiji.md", o.ToString());        // passages listed after the (random) answer
    }
}
