using AgentHost.Cli;
using AgentHost.Cli.Verbs;
using AgentHost.Hosting;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Stores.Qdrant;
using AgentHost.Rag.Stores.VectorData;
using AgentHost.Tests.Rag;
using AgentHost.Tests.Rag.Qdrant;
using AgentHost.Tests.Rag.VectorData;
using Glm.Engine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Tests.Cli;

/// <summary>Rag:VectorStore picks the VectorData store that retrieval goes through; with "qdrant" ingest mirrors the file into Qdrant.</summary>
[Collection("RagHost")]
public sealed class QdrantVectorStoreHostTests : IDisposable
{
    private const string Spec = "data/qdrant/openapi.json";
    private static readonly CliConsole Quiet = new(new StringWriter(), new StringWriter());
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private Microsoft.Extensions.Hosting.IHost Build(string settingsJson, Action<IServiceCollection>? configure = null)
    {
        using var hooks = RagHostHooks.Use(configure ?? (_ => { }), settingsFile: _temp.Write("appsettings.json", settingsJson));
        return RagHost.Build(Quiet, new Dictionary<string, string?> { ["Rag:KbRoot"] = _temp.File("kbs") }, verbose: false);
    }

    [Fact]
    public void The_sqlite_store_is_the_default_and_qdrant_is_chosen_by_configuration()
    {
        using (var host = Build("{}"))
        {
            Assert.IsType<SqliteKnowledgeVectorStore>(host.Services.GetRequiredService<VectorStore>());
            using var chunks = KnowledgeChunkCollections.ForRetrieval(host.Services, "kb");
            Assert.IsType<SqliteKnowledgeChunkCollection>(chunks);
        }
        using (var host = Build("""{ "Rag": { "VectorStore": "Qdrant", "Qdrant": { "Url": "http://qdrant.example:6333", "ApiKey": "k" } } }"""))
        {
            var store = Assert.IsType<QdrantKnowledgeVectorStore>(host.Services.GetRequiredService<VectorStore>());
            Assert.Equal("http://qdrant.example:6333/", store.Client.BaseUrl.ToString());
            using var chunks = KnowledgeChunkCollections.ForRetrieval(host.Services, "kb");
            Assert.Equal("kb", Assert.IsType<QdrantKnowledgeChunkCollection>(chunks).Name);
        }
    }

    [Theory]
    [InlineData("""{ "Rag": { "VectorStore": "mongo" } }""", "Rag:VectorStore = 'mongo': expected 'sqlite' or 'qdrant'")]
    [InlineData("""{ "Rag": { "VectorStore": "qdrant", "Qdrant": { "Url": "localhost:6333" } } }""", "Rag:Qdrant:Url = 'localhost:6333'")]
    [InlineData("""{ "Rag": { "VectorStore": "qdrant", "Qdrant": { "MaxRetries": -1 } } }""", "Rag:Qdrant:MaxRetries = -1")]
    public void Bad_vector_store_settings_are_reported_by_key(string settings, string message)
    {
        var e = Assert.Throws<GlmException>(() => Build(settings).Dispose());
        Assert.Contains(message, e.Message);
    }

    [SharedFileFact(Spec)]
    public async Task Ingested_knowledge_bases_are_mirrored_into_qdrant_and_retrieval_searches_there()
    {
        var server = new FakeQdrantServer();
        using var host = Build("""{ "Rag": { "VectorStore": "qdrant" } }""", services => services.AddSingleton(_ =>
            new QdrantKnowledgeVectorStore(new QdrantRestClient(new QdrantOptions(new Uri("http://qdrant.test:6333")), new HttpClient(server)), ownsClient: true)));
        var services = host.Services;
        using (var kb = services.GetRequiredService<KnowledgeBaseCatalog>().Open("kb"))
        {
            using (var file = new SqliteKnowledgeChunkCollection(kb)) await file.UpsertAsync(SqliteKnowledgeChunkCollectionTests.Corpus);
            var first = await KnowledgeChunkCollections.SyncToQdrantAsync(services, kb);
            Assert.Equal(new MirrorReport(SqliteKnowledgeChunkCollectionTests.Corpus.Length, 0), first);
            Assert.Equal(256, server.CreatedDimensions["kb"]); // the file's embedding dimensions
            Assert.Equal(SqliteKnowledgeChunkCollectionTests.Corpus.Select(c => QdrantPoint.KeyId(c.Key).ToString()).Order(StringComparer.Ordinal),
                server.Points("kb").Keys);

            using (var file = new SqliteKnowledgeChunkCollection(kb)) await file.DeleteAsync("/b.txt#1");
            var second = await KnowledgeChunkCollections.SyncToQdrantAsync(services, kb);
            Assert.Equal(new MirrorReport(SqliteKnowledgeChunkCollectionTests.Corpus.Length - 1, 1), second);
            Assert.False(server.Points("kb").ContainsKey(QdrantPoint.KeyId("/b.txt#1").ToString()));

            var retriever = AskVerb.CreateRetriever(services, kb);
            int before = server.Requests.Count;
            var hits = await retriever.SearchAsync("林黛玉", RetrievalMode.Keyword, 2);
            Assert.Equal(2, hits.Count);
            var query = Assert.Single(server.Requests.Skip(before));
            Assert.Equal("/collections/kb/points/query", query.Path);
        }
        Assert.False(await KnowledgeChunkCollections.EnsureInQdrantAsync(services, "kb")); // exists: nothing copied
        using (var other = services.GetRequiredService<KnowledgeBaseCatalog>().Open("other"))
        using (var file = new SqliteKnowledgeChunkCollection(other)) await file.UpsertAsync(SqliteKnowledgeChunkCollectionTests.Corpus[0]);
        Assert.True(await KnowledgeChunkCollections.EnsureInQdrantAsync(services, "other"));
        Assert.Single(server.Points("other"));
        Assert.Empty(server.SchemaErrors);
    }

    [Fact]
    public async Task An_unreachable_qdrant_fails_the_mirror_with_the_url()
    {
        using var host = Build("""{ "Rag": { "VectorStore": "qdrant", "Qdrant": { "Url": "http://127.0.0.1:9", "MaxRetries": 0 } } }""");
        using var kb = host.Services.GetRequiredService<KnowledgeBaseCatalog>().Open("kb");
        var e = await Assert.ThrowsAsync<GlmException>(() => KnowledgeChunkCollections.SyncToQdrantAsync(host.Services, kb));
        Assert.Contains("knowledge base 'kb' could not be copied to Qdrant", e.Message);
        Assert.Contains("Qdrant at http://127.0.0.1:9/ is unreachable", e.Message);
    }
}
