using AgentHost.Rag.Answering;
using AgentHost.Rag.Stores.Qdrant;
using AgentHost.Rag.Stores.VectorData;
using AgentHost.Tests.Rag.VectorData;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Tests.Rag.Qdrant;

/// <summary>The VectorData collection against a real Qdrant 1.19.x when env QDRANT_URL is set (e.g. http://localhost:6333).</summary>
public class QdrantKnowledgeChunkCollectionIntegrationTests
{
    private static async Task<List<T>> List<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    [EnvFact("QDRANT_URL", "start Qdrant 1.19 and set QDRANT_URL=http://localhost:6333 to run the Qdrant VectorData integration test")]
    public async Task Upsert_get_filter_search_hybrid_delete_against_a_real_server()
    {
        var url = new Uri(Environment.GetEnvironmentVariable("QDRANT_URL")!);
        using var store = new QdrantKnowledgeVectorStore(new QdrantRestClient(new QdrantOptions(url) { ApiKey = Environment.GetEnvironmentVariable("QDRANT_API_KEY") }),
            new HashingEmbeddingGenerator(), ownsClient: true);
        string name = "glmsk_vd_test_" + Guid.NewGuid().ToString("N")[..8];
        using var collection = store.GetChunkCollection(name, dimensions: 256);
        await collection.EnsureCollectionExistsAsync();
        try
        {
            Assert.True(await store.CollectionExistsAsync(name));
            Assert.Contains(name, await List(store.ListCollectionNamesAsync()));
            var corpus = SqliteKnowledgeChunkCollectionTests.Corpus;
            await collection.UpsertAsync(corpus);

            var got = await collection.GetAsync("/c#1.txt#0", new RecordRetrievalOptions { IncludeVectors = true });
            Assert.Equal("/c#1.txt#0", got!.Key);
            Assert.Equal(corpus[4].Embedding!.Value.ToArray(), got.Embedding!.Value.ToArray());
            Assert.Equal(["/a.txt#1", "/b.txt#0"], (await List(collection.GetAsync(["/a.txt#1", "/nope#0", "/b.txt#0"]))).Select(r => r.Key));

            string[] sources = ["/a.txt"];
            Assert.Equal(["/a.txt#0", "/a.txt#1"], (await List(collection.GetAsync(r => sources.Contains(r.Source), 10))).Select(r => r.Key));
            Assert.Equal(["/b.txt#0"], (await List(collection.GetAsync(r => r.Section.Contains("总则") && r.Ordinal == 0, 10))).Select(r => r.Key));

            var dense = await List(collection.SearchAsync("贾宝玉摔玉", 2));
            Assert.Equal("/a.txt#1", dense[0].Record.Key);
            var filtered = await List(collection.SearchAsync("贾宝玉摔玉", 5, new VectorSearchOptions<KnowledgeChunk> { Filter = r => r.Source == "/b.txt" }));
            Assert.All(filtered, r => Assert.Equal("/b.txt", r.Record.Source));
            var keyword = await List(collection.HybridSearchAsync(ReadOnlyMemory<float>.Empty, ["混合检索"], 3));
            Assert.Equal("/b.txt#0", keyword[0].Record.Key);
            var retriever = new Retriever(collection, new HashingEmbeddingGenerator());
            Assert.Equal("/a.txt", (await retriever.SearchAsync("林黛玉进贾府", RetrievalMode.Hybrid, 3))[0].Source);

            await collection.DeleteAsync(["/a.txt#0", "/a.txt#1"]);
            Assert.Null(await collection.GetAsync("/a.txt#0"));
            Assert.Equal(corpus.Length - 2, (await List(collection.GetAsync(r => true, 100))).Count);
        }
        finally
        {
            await collection.EnsureCollectionDeletedAsync();
        }
        Assert.False(await collection.CollectionExistsAsync());
    }
}
