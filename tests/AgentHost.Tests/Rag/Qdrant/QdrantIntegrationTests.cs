using AgentHost.Rag.Stores.Qdrant;

namespace AgentHost.Tests.Rag.Qdrant;

/// <summary>Runs against a real Qdrant 1.19.x when env QDRANT_URL is set (e.g. http://localhost:6333).</summary>
public class QdrantIntegrationTests
{
    [EnvFact("QDRANT_URL", "start Qdrant 1.19 and set QDRANT_URL=http://localhost:6333 to run the Qdrant integration test")]
    public async Task Create_upsert_query_hybrid_delete_against_a_real_server()
    {
        var url = new Uri(Environment.GetEnvironmentVariable("QDRANT_URL")!);
        using var client = new QdrantRestClient(new QdrantOptions(url) { ApiKey = Environment.GetEnvironmentVariable("QDRANT_API_KEY") });
        string collection = "glmsk_test_" + Guid.NewGuid().ToString("N")[..8];
        string[] texts = ["长江是中国第一长河。", "黄河是中华民族的母亲河。", "泰山位于山东省。"];
        await client.CreateCollectionAsync(collection, 256);
        try
        {
            Assert.True(await client.CollectionExistsAsync(collection));
            await client.UpsertAsync(collection, texts.Select((t, i) => new QdrantPoint(QdrantPoint.ChunkId($"/{i}.txt", 0),
                HashingEmbeddingGenerator.Embed(t), SparseVector.FromText(t),
                new Dictionary<string, object?> { ["source"] = $"/{i}.txt", ["text"] = t })));

            var dense = await client.QueryAsync(collection, HashingEmbeddingGenerator.Embed("黄河母亲河"), 3);
            Assert.Equal("/1.txt", dense[0].Payload!["source"]!.GetValue<string>());
            var hybrid = await client.HybridQueryAsync(collection, HashingEmbeddingGenerator.Embed("泰山"), SparseVector.FromText("泰山"), 3);
            Assert.Equal("/2.txt", hybrid[0].Payload!["source"]!.GetValue<string>());
            var filtered = await client.QueryAsync(collection, HashingEmbeddingGenerator.Embed("黄河"), 3, QdrantFilter.Match(("source", "/0.txt")));
            Assert.Equal("/0.txt", filtered.Single().Payload!["source"]!.GetValue<string>());

            await client.DeleteByFilterAsync(collection, QdrantFilter.Match(("source", "/1.txt")));
            var after = await client.QueryAsync(collection, HashingEmbeddingGenerator.Embed("黄河母亲河"), 3);
            Assert.DoesNotContain(after, h => h.Payload!["source"]!.GetValue<string>() == "/1.txt");
        }
        finally
        {
            await client.DeleteCollectionAsync(collection);
        }
        Assert.False(await client.CollectionExistsAsync(collection));
    }
}
