using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentHost.Rag.Stores.Qdrant;
using Glm.Engine;

namespace AgentHost.Tests.Rag.Qdrant;

/// <summary>Records each request and answers with a Qdrant-style envelope.</summary>
internal sealed class RecordingHandler(Func<HttpRequestMessage, string>? result = null) : HttpMessageHandler
{
    public List<(HttpMethod Method, string Path, string? Body)> Requests { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        string? body = request.Content is null ? null : await request.Content.ReadAsStringAsync(ct);
        Requests.Add((request.Method, request.RequestUri!.AbsolutePath, body));
        string json = $"{{\"result\":{result?.Invoke(request) ?? "true"},\"status\":\"ok\",\"time\":0.001}}";
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
    }
}

public class QdrantClientTests
{
    private const string Spec = "data/qdrant/openapi.json";
    private static readonly float[] Dense = HashingEmbeddingGenerator.Embed("长江是中国第一长河");

    private static async Task<List<(HttpMethod Method, string Path, string? Body)>> RunEveryOperation()
    {
        var handler = new RecordingHandler(r => r.RequestUri!.AbsolutePath.EndsWith("/query")
            ? """{"points":[{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","version":1,"score":0.9,"payload":{"source":"/a.txt"}}]}"""
            : r.RequestUri.AbsolutePath.EndsWith("/exists") ? """{"exists":true}""" : "true");
        using var client = new QdrantRestClient(new QdrantOptions(new Uri("http://qdrant.test:6333")), new HttpClient(handler));
        var point = new QdrantPoint(QdrantPoint.ChunkId("/a.txt", 0), Dense, AgentHost.Rag.Stores.Qdrant.SparseVector.FromText("长江是中国第一长河"),
            new Dictionary<string, object?> { ["source"] = "/a.txt", ["section"] = "第一章", ["ordinal"] = 0, ["text"] = "长江是中国第一长河。" });
        await client.CreateCollectionAsync("kb", Dense.Length);
        Assert.True(await client.CollectionExistsAsync("kb"));
        await client.UpsertAsync("kb", [point]);
        var hits = await client.QueryAsync("kb", Dense, 5, QdrantFilter.Match(("source", "/a.txt")));
        Assert.Equal("/a.txt", hits.Single().Payload!["source"]!.GetValue<string>());
        await client.HybridQueryAsync("kb", Dense, AgentHost.Rag.Stores.Qdrant.SparseVector.FromText("长河"), 5,
            QdrantFilter.Match(("section", new[] { "第一章", "第二章" })));
        await client.DeleteByFilterAsync("kb", QdrantFilter.Match(("source", "/a.txt")));
        await client.DeleteCollectionAsync("kb");
        return handler.Requests;
    }

    [SharedFileFact(Spec)]
    public async Task Every_request_body_matches_the_official_openapi_schema()
    {
        var validator = OpenApiSchemaValidator.Load(RagPaths.Shared(Spec));
        var requests = await RunEveryOperation();
        var withBody = requests.Where(r => r.Body is not null).ToList();
        Assert.Equal(5, withBody.Count); // create, upsert, query, hybrid query, delete-by-filter
        foreach (var (method, path, body) in withBody)
        {
            var errors = validator.ValidateRequestBody(method.Method, path, body!);
            Assert.True(errors.Count == 0, $"{method} {path}: {string.Join("\n", errors)}\nbody: {body}");
        }
        Assert.Contains(requests, r => r.Method == HttpMethod.Delete && r.Path == "/collections/kb");
        var hybrid = JsonNode.Parse(withBody[3].Body!)!;
        Assert.Equal("rrf", hybrid["query"]!["fusion"]!.GetValue<string>());
        Assert.Equal(["dense", "sparse"], hybrid["prefetch"]!.AsArray().Select(p => p!["using"]!.GetValue<string>()));
    }

    [SharedFileFact(Spec)]
    public async Task Record_level_request_bodies_match_the_official_openapi_schema()
    {
        var handler = new RecordingHandler(r => r.RequestUri!.AbsolutePath switch
        {
            var p when p.EndsWith("/scroll") => """{"points":[{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","payload":{"key":"/a.txt#0"},"vector":{"dense":[0.5,0.25]}}],"next_page_offset":"6c56c793-69f3-4fbf-87e6-c4bf54c28c26"}""",
            var p when p.EndsWith("/points") => """[{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","payload":{"key":"/a.txt#0"},"vector":{"dense":[0.5,0.25]}}]""",
            var p when p.EndsWith("/query") => """{"points":[]}""",
            "/collections" => """{"collections":[{"name":"kb"},{"name":"notes"}]}""",
            _ => """{"operation_id":1,"status":"completed"}""",
        });
        using var client = new QdrantRestClient(new QdrantOptions(new Uri("http://qdrant.test:6333")), new HttpClient(handler));
        var ids = new[] { QdrantPoint.KeyId("/a.txt#0"), QdrantPoint.KeyId("/a.txt#1") };
        var filter = QdrantFilter.Match(("source", new[] { "/a.txt" }), ("ordinal", new List<object> { 0, 1 }), ("section", new QdrantTextMatch("第一")));
        var records = await client.GetPointsAsync("kb", ids, withVector: true);
        Assert.Equal([0.5f, 0.25f], records.Single().Dense!);
        await client.DeleteByIdsAsync("kb", ids);
        var page = await client.ScrollAsync("kb", filter, 2, offset: System.Text.Json.Nodes.JsonValue.Create(ids[0].ToString()), withVector: true);
        Assert.Equal("6c56c793-69f3-4fbf-87e6-c4bf54c28c26", page.NextOffset!.GetValue<string>());
        await client.SparseQueryAsync("kb", AgentHost.Rag.Stores.Qdrant.SparseVector.FromText("长河"), 3, filter, new QdrantSearchOptions { Offset = 2, ScoreThreshold = 0.5 });
        await client.QueryAsync("kb", Dense, 3, filter, new QdrantSearchOptions { Offset = 1, WithVector = true });
        await client.HybridQueryAsync("kb", Dense, AgentHost.Rag.Stores.Qdrant.SparseVector.FromText("长河"), 3, null, new QdrantSearchOptions { WithVector = true });
        Assert.Equal(["kb", "notes"], await client.ListCollectionsAsync());

        var validator = OpenApiSchemaValidator.Load(RagPaths.Shared(Spec));
        var withBody = handler.Requests.Where(r => r.Body is not null).ToList();
        Assert.Equal(6, withBody.Count); // get, delete by ids, scroll, sparse query, dense query, hybrid query
        foreach (var (method, path, body) in withBody)
        {
            var errors = validator.ValidateRequestBody(method.Method, path, body!);
            Assert.True(errors.Count == 0, $"{method} {path}: {string.Join("\n", errors)}\nbody: {body}");
        }
        Assert.Equal(["/collections/kb/points", "/collections/kb/points/delete", "/collections/kb/points/scroll"], withBody.Take(3).Select(r => r.Path));
        Assert.Equal("""{"points":["{{A}}","{{B}}"]}""".Replace("{{A}}", ids[0].ToString()).Replace("{{B}}", ids[1].ToString()), withBody[1].Body);
        var scroll = JsonNode.Parse(withBody[2].Body!)!;
        Assert.Equal(ids[0].ToString(), scroll["offset"]!.GetValue<string>());
        Assert.Equal([0L, 1L], scroll["filter"]!["must"]![1]!["match"]!["any"]!.AsArray().Select(v => v!.GetValue<long>()));
        Assert.Equal("第一", scroll["filter"]!["must"]![2]!["match"]!["text"]!.GetValue<string>());
        Assert.Equal("sparse", JsonNode.Parse(withBody[3].Body!)!["using"]!.GetValue<string>());
        Assert.Equal(0.5, JsonNode.Parse(withBody[3].Body!)!["score_threshold"]!.GetValue<double>());
        Assert.Equal("""["dense"]""", JsonNode.Parse(withBody[5].Body!)!["with_vector"]!.ToJsonString());
        Assert.Contains(handler.Requests, r => r.Method == HttpMethod.Get && r.Path == "/collections");
    }

    [SharedFileFact(Spec)]
    public void Validator_rejects_bodies_that_do_not_match_the_schema()
    {
        var validator = OpenApiSchemaValidator.Load(RagPaths.Shared(Spec));
        Assert.Empty(validator.ValidateRequestBody("PUT", "/collections/kb", """{"vectors":{"size":4,"distance":"Cosine"}}"""));
        Assert.NotEmpty(validator.ValidateRequestBody("PUT", "/collections/kb", """{"vectors":{"size":4,"distance":"cosine"}}""")); // enum is case-sensitive
        Assert.NotEmpty(validator.ValidateRequestBody("PUT", "/collections/kb", """{"vectors":{"size":-4,"distance":"Cosine"}}""")); // uint64
        Assert.NotEmpty(validator.ValidateRequestBody("PUT", "/collections/kb/points", """{"points":[{"id":"not-a-uuid","vector":[1.0]}]}"""));
        Assert.NotEmpty(validator.ValidateRequestBody("PUT", "/collections/kb/points", """{"points":[{"id":1}]}""")); // vector required
        Assert.NotEmpty(validator.ValidateRequestBody("POST", "/collections/kb/points/query", """{"query":{"fusion":"rrf"},"limit":"ten"}"""));
        Assert.NotEmpty(validator.ValidateRequestBody("POST", "/collections/kb/points/query", """{"query":{"fusion":"rrf"},"limt":10}""")); // typo
        Assert.NotEmpty(validator.ValidateRequestBody("POST", "/collections/kb/points/query", """{"query":{"indices":[1,2],"valuez":[0.5,0.5]}}"""));
    }

    [Fact]
    public void Sparse_vectors_have_unique_sorted_indices_and_term_counts()
    {
        var v = AgentHost.Rag.Stores.Qdrant.SparseVector.FromText("长江长江");
        Assert.Equal(v.Indices.Distinct().Order(), v.Indices);
        Assert.Equal(v.Indices.Length, v.Values.Length);
        // Terms: 长 江 长 江 (unigrams) + 长江 江长 长江 (bigrams) → 长×2, 江×2, 长江×2, 江长×1.
        Assert.Equal(4, v.Indices.Length);
        Assert.Equal([1f, 2f, 2f, 2f], v.Values.Order());
    }

    [Fact]
    public void Chunk_point_ids_are_stable_uuids()
    {
        Assert.Equal(QdrantPoint.ChunkId("/a.txt", 3), QdrantPoint.ChunkId("/a.txt", 3));
        Assert.NotEqual(QdrantPoint.ChunkId("/a.txt", 3), QdrantPoint.ChunkId("/a.txt", 4));
        Assert.Equal('5', QdrantPoint.ChunkId("/a.txt", 3).ToString()[14]);
    }

    [Fact]
    public async Task Unreachable_qdrant_gives_a_clear_error_after_retries()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens on this port now
        using var client = new QdrantRestClient(new QdrantOptions(new Uri($"http://127.0.0.1:{port}"))
        {
            MaxRetries = 2, InitialBackoff = TimeSpan.FromMilliseconds(10),
        });
        var e = await Assert.ThrowsAsync<GlmException>(() => client.CreateCollectionAsync("kb", 4));
        Assert.Contains($"Qdrant at http://127.0.0.1:{port}/ is unreachable", e.Message);
        Assert.Contains("after 3 attempts", e.Message);
    }

    [Fact]
    public async Task Server_errors_are_retried_then_reported_with_qdrant_message()
    {
        int calls = 0;
        var handler = new StubStatusHandler(() => ++calls < 3 ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.BadRequest);
        using var client = new QdrantRestClient(new QdrantOptions(new Uri("http://q:6333")) { InitialBackoff = TimeSpan.FromMilliseconds(5) }, new HttpClient(handler));
        var e = await Assert.ThrowsAsync<GlmException>(() => client.CreateCollectionAsync("kb", 4));
        Assert.Equal(3, calls);
        Assert.Contains("HTTP 400: Wrong input: bad vector size", e.Message);
    }

    private sealed class StubStatusHandler(Func<HttpStatusCode> status) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) =>
            Task.FromResult(new HttpResponseMessage(status())
            {
                Content = new StringContent("""{"status":{"error":"Wrong input: bad vector size"},"time":0.0}""", Encoding.UTF8, "application/json"),
            });
    }
}
