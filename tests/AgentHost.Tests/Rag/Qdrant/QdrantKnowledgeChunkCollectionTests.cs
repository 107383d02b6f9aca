using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Stores.Qdrant;
using AgentHost.Rag.Stores.VectorData;
using AgentHost.Tests.Rag.VectorData;
using Glm.Engine;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Tests.Rag.Qdrant;

public sealed class QdrantKnowledgeChunkCollectionTests : IDisposable
{
    private const string Spec = "data/qdrant/openapi.json";
    private readonly FakeQdrantServer _server;
    private readonly QdrantKnowledgeVectorStore _store;

    public QdrantKnowledgeChunkCollectionTests()
    {
        _server = new FakeQdrantServer(); // validates bodies against ../shared's OpenAPI schema: the tests using it are SharedFileFacts
        var client = new QdrantRestClient(new QdrantOptions(new Uri("http://qdrant.test:6333")) { InitialBackoff = TimeSpan.FromMilliseconds(1) },
            new HttpClient(_server));
        _store = new QdrantKnowledgeVectorStore(client, new HashingEmbeddingGenerator(), ownsClient: true);
    }

    public void Dispose()
    {
        _store.Dispose();
        Assert.True(_server.SchemaErrors.Count == 0, string.Join("\n", _server.SchemaErrors));
    }

    private static KnowledgeChunk[] Corpus => SqliteKnowledgeChunkCollectionTests.Corpus;

    private async Task<QdrantKnowledgeChunkCollection> Filled(string name = "kb")
    {
        var collection = _store.GetChunkCollection(name, dimensions: 256);
        await collection.EnsureCollectionExistsAsync();
        await collection.UpsertAsync(Corpus);
        return collection;
    }

    private static async Task<List<T>> List<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    private JsonNode LastBody(string pathEnd) => _server.Requests.Last(r => r.Path.EndsWith(pathEnd)).Body!;

    [SharedFileFact(Spec)]
    public async Task Collections_are_created_with_the_dimensions_listed_and_deleted()
    {
        var collection = _store.GetCollection<string, KnowledgeChunk>("notes", new VectorStoreCollectionDefinition
        {
            Properties = [new VectorStoreKeyProperty("Key", typeof(string)), new VectorStoreVectorProperty("Embedding", typeof(ReadOnlyMemory<float>?), 64)],
        });
        Assert.False(await collection.CollectionExistsAsync());
        await collection.EnsureCollectionExistsAsync();
        await collection.EnsureCollectionExistsAsync(); // exists: no second create
        Assert.Equal(64, _server.CreatedDimensions["notes"]);
        Assert.Single(_server.Requests, r => r.Method == HttpMethod.Put && r.Path == "/collections/notes");
        Assert.True(await _store.CollectionExistsAsync("notes"));
        Assert.Equal(["notes"], await List(_store.ListCollectionNamesAsync()));
        await collection.EnsureCollectionDeletedAsync();
        Assert.False(await collection.CollectionExistsAsync());
        await _store.EnsureCollectionDeletedAsync("notes"); // already gone: no error
        Assert.Throws<NotSupportedException>(() => _store.GetCollection<Guid, KnowledgeChunk>("notes"));
    }

    [SharedFileFact(Spec)]
    public async Task Upsert_writes_key_derived_ids_payload_and_both_vectors()
    {
        var collection = await Filled();
        var upsert = LastBody("/points").AsObject();
        var points = upsert["points"]!.AsArray();
        Assert.Equal(Corpus.Length, points.Count);
        var first = points[0]!;
        Assert.Equal(QdrantPoint.KeyId("/a.txt#0").ToString(), first["id"]!.GetValue<string>());
        Assert.Equal("/a.txt#0", first["payload"]!["key"]!.GetValue<string>());
        Assert.Equal("第一回", first["payload"]!["section"]!.GetValue<string>());
        Assert.Equal(0, first["payload"]!["start_offset"]!.GetValue<int>());
        Assert.Equal(256, first["vector"]!["dense"]!.AsArray().Count);
        Assert.NotEmpty(first["vector"]!["sparse"]!["indices"]!.AsArray());

        var keywordOnly = SqliteKnowledgeChunkCollectionTests.Chunk("/k.txt", 0, "", "只有关键词");
        keywordOnly.Embedding = null;
        await collection.UpsertAsync(keywordOnly);
        var stored = LastBody("/points")["points"]![0]!["vector"]!.AsObject();
        Assert.False(stored.ContainsKey("dense"));
        Assert.True(stored.ContainsKey("sparse"));

        var bad = SqliteKnowledgeChunkCollectionTests.Chunk("/a.txt", 0, "", "x");
        bad.Key = "/b.txt#0";
        await Assert.ThrowsAsync<ArgumentException>(() => collection.UpsertAsync(bad));
    }

    [SharedFileFact(Spec)]
    public async Task Get_returns_the_original_string_key_and_delete_removes_by_key()
    {
        var collection = await Filled();
        var record = await collection.GetAsync("/c#1.txt#0");
        Assert.NotNull(record);
        Assert.Equal("/c#1.txt#0", record.Key);
        Assert.Equal("/c#1.txt", record.Source);
        Assert.Equal(Corpus[4].Text, record.Text);
        Assert.Null(record.Embedding);
        Assert.Equal([QdrantPoint.KeyId("/c#1.txt#0").ToString()], LastBody("/points")["ids"]!.AsArray().Select(i => i!.GetValue<string>()));
        Assert.Equal(JsonValue.Create(false).ToJsonString(FakeQdrantServer.Readable), LastBody("/points")["with_vector"]!.ToJsonString(FakeQdrantServer.Readable));

        var withVector = await collection.GetAsync("/a.txt#1", new RecordRetrievalOptions { IncludeVectors = true });
        Assert.Equal(Corpus[1].Embedding!.Value.ToArray(), withVector!.Embedding!.Value.ToArray());
        Assert.Equal("""["dense"]""", LastBody("/points")["with_vector"]!.ToJsonString(FakeQdrantServer.Readable));
        Assert.Null(await collection.GetAsync("/nowhere.txt#0"));

        var many = await List(collection.GetAsync(["/b.txt#1", "/missing#0", "/a.txt#0"]));
        Assert.Equal(["/b.txt#1", "/a.txt#0"], many.Select(r => r.Key));

        await collection.DeleteAsync(["/a.txt#0", "/b.txt#1"]);
        Assert.Equal([QdrantPoint.KeyId("/a.txt#0").ToString(), QdrantPoint.KeyId("/b.txt#1").ToString()],
            LastBody("/points/delete")["points"]!.AsArray().Select(i => i!.GetValue<string>()));
        Assert.Null(await collection.GetAsync("/a.txt#0"));
        Assert.NotNull(await collection.GetAsync("/a.txt#1"));
        Assert.Equal(Corpus.Length - 2, _server.Points("kb").Count);
    }

    [SharedFileFact(Spec)]
    public async Task Filtered_get_scrolls_with_the_translated_filter_and_orders_by_source_and_ordinal()
    {
        var collection = await Filled();
        string[] sources = ["/b.txt", "/a.txt"];
        var records = await List(collection.GetAsync(r => sources.Contains(r.Source), 10));
        Assert.Equal(["/a.txt#0", "/a.txt#1", "/b.txt#0", "/b.txt#1"], records.Select(r => r.Key));
        var scroll = LastBody("/points/scroll");
        Assert.Equal("""{"must":[{"key":"source","match":{"any":["/b.txt","/a.txt"]}}]}""", scroll["filter"]!.ToJsonString(FakeQdrantServer.Readable));

        var page = await List(collection.GetAsync(r => true, 2, new FilteredRecordRetrievalOptions<KnowledgeChunk> { Skip = 1, OrderBy = o => o.Descending(r => r.Ordinal) }));
        Assert.Equal(["/b.txt#1", "/a.txt#0"], page.Select(r => r.Key)); // ordinal descending, then source and ordinal
        Assert.Null(LastBody("/points/scroll")["filter"]);
        string[] none = [];
        int before = _server.Requests.Count;
        Assert.Empty(await List(collection.GetAsync(r => none.Contains(r.Source), 5)));
        Assert.Equal(before, _server.Requests.Count); // nothing can match: no request
    }

    [SharedFileFact(Spec)]
    public async Task Search_sends_a_dense_query_with_filter_paging_threshold_and_vectors()
    {
        var collection = await Filled();
        var results = await List(collection.SearchAsync("贾宝玉", 2, new VectorSearchOptions<KnowledgeChunk>
        {
            Filter = r => r.Source == "/a.txt", Skip = 1, ScoreThreshold = 0.1, IncludeVectors = true,
        }));
        var query = LastBody("/points/query");
        Assert.Equal("dense", query["using"]!.GetValue<string>());
        Assert.Equal(HashingEmbeddingGenerator.Embed("贾宝玉"), query["query"]!.AsArray().Select(v => v!.GetValue<float>()));
        Assert.Equal(2, query["limit"]!.GetValue<int>());
        Assert.Equal(1, query["offset"]!.GetValue<int>());
        Assert.Equal(0.1, query["score_threshold"]!.GetValue<double>());
        Assert.Equal("""{"must":[{"key":"source","match":{"value":"/a.txt"}}]}""", query["filter"]!.ToJsonString(FakeQdrantServer.Readable));
        var hit = Assert.Single(results); // the fake server: two /a.txt points, offset 1
        Assert.Equal("/a.txt#1", hit.Record.Key);
        Assert.Equal(0.5, hit.Score);
        Assert.NotNull(hit.Record.Embedding);
        Assert.NotEqual(0, hit.Record.RowId);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await List(collection.SearchAsync(new float[] { 1f }, 0)));
        await Assert.ThrowsAsync<NotSupportedException>(async () => await List(collection.SearchAsync(42, 1)));
    }

    [SharedFileFact(Spec)]
    public async Task Hybrid_search_fuses_dense_and_sparse_on_the_server_or_runs_the_sparse_leg_alone()
    {
        var collection = await Filled();
        await List(collection.HybridSearchAsync(new ReadOnlyMemory<float>(HashingEmbeddingGenerator.Embed("混合检索")), ["混合检索"], 3,
            new HybridSearchOptions<KnowledgeChunk> { Filter = r => r.Section.Contains("总则") }));
        var hybrid = LastBody("/points/query");
        Assert.Equal("rrf", hybrid["query"]!["fusion"]!.GetValue<string>());
        Assert.Equal(["dense", "sparse"], hybrid["prefetch"]!.AsArray().Select(p => p!["using"]!.GetValue<string>()));
        Assert.Equal(SparseVector.FromText("混合检索").Indices, hybrid["prefetch"]![1]!["query"]!["indices"]!.AsArray().Select(i => i!.GetValue<uint>()));
        Assert.All(hybrid["prefetch"]!.AsArray(), p => Assert.Equal("""{"must":[{"key":"section","match":{"text":"总则"}}]}""", p!["filter"]!.ToJsonString(FakeQdrantServer.Readable)));

        var keywordOnly = await List(collection.HybridSearchAsync(ReadOnlyMemory<float>.Empty, ["林黛玉"], 3));
        var sparse = LastBody("/points/query");
        Assert.Equal("sparse", sparse["using"]!.GetValue<string>());
        Assert.Null(sparse["prefetch"]);
        Assert.Equal(SparseVector.FromText("林黛玉").Values, sparse["query"]!["values"]!.AsArray().Select(v => v!.GetValue<float>()));
        Assert.Equal(3, keywordOnly.Count);
    }

    [SharedFileFact(Spec)]
    public async Task Retriever_searches_through_the_qdrant_collection()
    {
        var collection = await Filled();
        _server.QueryResult = body => $$"""{"points":[{"id":"{{QdrantPoint.KeyId("/b.txt#0")}}","version":3,"score":0.75,"payload":{{_server.Points("kb")[QdrantPoint.KeyId("/b.txt#0").ToString()]["payload"]!.ToJsonString(FakeQdrantServer.Readable)}}}]}""";
        var retriever = new Retriever(collection, new HashingEmbeddingGenerator());
        var hits = await retriever.SearchAsync("混合检索", RetrievalMode.Keyword, 5);
        Assert.Equal("/b.txt", Assert.Single(hits).Source);
        Assert.Equal(0.75, hits[0].Score);
        Assert.Equal("sparse", LastBody("/points/query")["using"]!.GetValue<string>());
    }

    [SharedFileFact(Spec)]
    public async Task Server_errors_become_vector_store_exceptions_naming_collection_and_operation()
    {
        var collection = _store.GetChunkCollection("absent");
        var e = await Assert.ThrowsAsync<VectorStoreException>(() => collection.UpsertAsync(Corpus[0]));
        Assert.Equal("absent", e.CollectionName);
        Assert.Equal("Upsert", e.OperationName);
        Assert.Equal("qdrant", e.VectorStoreSystemName);
        Assert.IsType<GlmException>(e.InnerException);
        Assert.Contains("HTTP 404", e.Message);
        Assert.Contains("Collection `absent` doesn't exist", e.Message);
    }

    [Fact]
    public async Task An_unreachable_server_gives_a_clear_error()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var store = new QdrantKnowledgeVectorStore(new QdrantRestClient(new QdrantOptions(new Uri($"http://127.0.0.1:{port}"))
        {
            MaxRetries = 1, InitialBackoff = TimeSpan.FromMilliseconds(5),
        }), ownsClient: true);
        using var collection = store.GetChunkCollection("kb");
        var e = await Assert.ThrowsAsync<VectorStoreException>(() => collection.GetAsync("/a.txt#0"));
        Assert.Equal("Get", e.OperationName);
        Assert.Contains($"Qdrant at http://127.0.0.1:{port}/ is unreachable", e.Message);
        Assert.Contains("after 2 attempts", e.Message);
        Assert.IsType<GlmException>(e.InnerException);
    }
}
