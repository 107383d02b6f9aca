using AgentHost.Cli;
using AgentHost.Hosting;
using AgentHost.Rag.Stores;
using AgentHost.Tests.Rag;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Tests.Cli;

[Collection("RagHost")]
public sealed class RagHostTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly CliConsole Quiet = new(new StringWriter(), new StringWriter());

    private IDisposable Settings(string settingsJson, out string path) =>
        RagHostHooks.Use(settingsFile: path = _temp.Write("appsettings.json", settingsJson));

    private static Microsoft.Extensions.Hosting.IHost Build(IReadOnlyDictionary<string, string?>? overrides = null) =>
        RagHost.Build(Quiet, overrides ?? new Dictionary<string, string?>(), verbose: false);

    [Fact]
    public void SettingsFileIsReadAndOptionsOverrideIt()
    {
        using var hooks = Settings("""
            // comments are allowed
            { "Rag": { "TopK": 7, "KbRoot": "/tmp/from-file" }, "Embedding": { "Provider": "hashing", "Dimensions": 64 } }
            """, out _);
        using (var host = Build())
        {
            Assert.Equal(7, host.Services.GetRequiredService<GlmSettings>().Rag.TopK);
            Assert.Equal("/tmp/from-file", host.Services.GetRequiredService<KnowledgeBaseCatalog>().Root);
            var embedder = host.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
            Assert.Equal(64, embedder.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);
        }
        using (var host = Build(new Dictionary<string, string?> { ["Rag:TopK"] = "9", ["Embedding:Provider"] = "none" }))
        {
            Assert.Equal(9, host.Services.GetRequiredService<GlmSettings>().Rag.TopK);
            Assert.Null(host.Services.GetService<IEmbeddingGenerator<string, Embedding<float>>>());
        }
    }

    [Fact]
    public void BadSettingsNameTheFileOrKey()
    {
        using (Settings("{ \"Rag\": { \"TopK\": ", out string path))
            Assert.Contains(path, Assert.Throws<GlmException>(() => Build()).Message);
        using (Settings("""{ "Rag": { "TopK": 0 } }""", out _))
            Assert.Contains("Rag:TopK = 0", Assert.Throws<GlmException>(() => Build()).Message);
        using (Settings("""{ "Rag": { "TopK": "many" } }""", out _))
            Assert.Contains("bad value", Assert.Throws<GlmException>(() => Build()).Message);
    }

    [Fact]
    public void OpenAiCompatibleEndpointIsChosenByConfiguration()
    {
        using var chat = RagHost.CreateChatClient(new ChatSettings { Provider = "openai", Endpoint = "http://localhost:8000/v1", Model = "glm-4-9b-chat", ApiKey = "x" });
        var meta = chat.GetService<ChatClientMetadata>()!;
        Assert.Equal("glm-4-9b-chat", meta.DefaultModelId);
        Assert.Equal("localhost", meta.ProviderUri!.Host);

        var e = Assert.Throws<GlmException>(() => RagHost.CreateChatClient(new ChatSettings { Provider = "openai", Endpoint = "localhost:8000" }));
        Assert.Contains("Chat:Endpoint = 'localhost:8000'", e.Message);
        Assert.Contains("Chat:Provider = 'ollama'", Assert.Throws<GlmException>(() => RagHost.CreateChatClient(new ChatSettings { Provider = "ollama" })).Message);
    }
}
