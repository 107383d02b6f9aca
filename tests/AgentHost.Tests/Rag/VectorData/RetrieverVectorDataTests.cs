using System.Linq.Expressions;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Stores.VectorData;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Tests.Rag.VectorData;

/// <summary>The answering code retrieves through the VectorData abstraction, not the SQLite store directly.</summary>
public sealed class RetrieverVectorDataTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private async Task<(SqliteKnowledgeBase Kb, SpyCollection Spy)> Fixture()
    {
        var kb = new SqliteKnowledgeBase(_tmp.File("kb.db"), "kb");
        var inner = new SqliteKnowledgeChunkCollection(kb);
        await inner.UpsertAsync(SqliteKnowledgeChunkCollectionTests.Corpus);
        return (kb, new SpyCollection(inner));
    }

    [Fact]
    public async Task Hybrid_retrieval_calls_the_collections_hybrid_and_vector_search()
    {
        var (kb, spy) = await Fixture();
        using var _ = kb;
        const string query = "贾宝玉 检索";
        var retriever = new Retriever(spy, new HashingEmbeddingGenerator());

        var hits = await retriever.RetrieveRelevantAsync(query, RetrievalMode.Hybrid, 3, new RelevanceThresholds(0.25, 0.5));

        Assert.Equal((1, 1), (spy.HybridCalls, spy.SearchCalls)); // fused list from HybridSearchAsync, cosines from SearchAsync
        Assert.Equal(256, spy.LastHybridVectorLength);
        var expected = kb.HybridSearch(query, HashingEmbeddingGenerator.Embed(query), 3);
        Assert.Equal(expected.Select(h => (h.ChunkId, h.Score)), hits.Select(h => (h.Hit.ChunkId, h.Hit.Score)));
        var dense = kb.VectorSearch(HashingEmbeddingGenerator.Embed(query), 50).ToDictionary(h => h.ChunkId, h => h.Score);
        Assert.All(hits, h => Assert.Equal(dense.GetValueOrDefault(h.Hit.ChunkId), h.Cosine ?? 0, 9));
    }

    [Fact]
    public async Task Keyword_retrieval_without_an_embedder_passes_an_empty_vector_and_the_filter()
    {
        var (kb, spy) = await Fixture();
        using var _ = kb;
        var retriever = new Retriever(spy, null);

        var hits = await retriever.SearchAsync("玉", RetrievalMode.Hybrid, 5, new SearchFilter(Sources: ["/a.txt"]));

        Assert.Equal((1, 0, 0), (spy.HybridCalls, spy.SearchCalls, spy.LastHybridVectorLength));
        Assert.NotNull(spy.LastFilter);
        Assert.Equal(kb.KeywordSearch("玉", 5, new SearchFilter(Sources: ["/a.txt"])).Select(h => (h.ChunkId, h.Score)), hits.Select(h => (h.ChunkId, h.Score)));
        Assert.NotEmpty(hits);
    }

    [Fact]
    public async Task A_store_error_reaches_the_caller_as_the_stores_own_message()
    {
        var (kb, spy) = await Fixture();
        using var _ = kb;
        var retriever = new Retriever(spy, new HashingEmbeddingGenerator(dimensions: 8));
        var e = await Assert.ThrowsAsync<Glm.Engine.GlmException>(() => retriever.SearchAsync("检索", RetrievalMode.Dense, 3));
        Assert.Contains("query embedding has 8 dimensions but knowledge base 'kb' holds 256-dimension embeddings", e.Message);
    }

    /// <summary>Delegates to a real collection and records which search entry points the retriever used.</summary>
    private sealed class SpyCollection(SqliteKnowledgeChunkCollection inner) : VectorStoreCollection<string, KnowledgeChunk>, IKeywordHybridSearchable<KnowledgeChunk>
    {
        public int SearchCalls, HybridCalls;
        public int LastHybridVectorLength = -1;
        public Expression<Func<KnowledgeChunk, bool>>? LastFilter;

        public override string Name => inner.Name;
        public override Task<bool> CollectionExistsAsync(CancellationToken ct = default) => inner.CollectionExistsAsync(ct);
        public override Task EnsureCollectionExistsAsync(CancellationToken ct = default) => inner.EnsureCollectionExistsAsync(ct);
        public override Task EnsureCollectionDeletedAsync(CancellationToken ct = default) => inner.EnsureCollectionDeletedAsync(ct);
        public override Task<KnowledgeChunk?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken ct = default) => inner.GetAsync(key, options, ct);
        public override IAsyncEnumerable<KnowledgeChunk> GetAsync(Expression<Func<KnowledgeChunk, bool>> filter, int top,
            FilteredRecordRetrievalOptions<KnowledgeChunk>? options = null, CancellationToken ct = default) => inner.GetAsync(filter, top, options, ct);
        public override Task DeleteAsync(string key, CancellationToken ct = default) => inner.DeleteAsync(key, ct);
        public override Task UpsertAsync(KnowledgeChunk record, CancellationToken ct = default) => inner.UpsertAsync(record, ct);
        public override Task UpsertAsync(IEnumerable<KnowledgeChunk> records, CancellationToken ct = default) => inner.UpsertAsync(records, ct);
        public override object? GetService(Type serviceType, object? serviceKey = null) => inner.GetService(serviceType, serviceKey);

        public override IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> SearchAsync<TInput>(TInput searchValue, int top,
            VectorSearchOptions<KnowledgeChunk>? options = null, CancellationToken ct = default)
        {
            SearchCalls++;
            LastFilter = options?.Filter;
            return inner.SearchAsync(searchValue, top, options, ct);
        }

        public IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> HybridSearchAsync<TInput>(TInput searchValue, ICollection<string> keywords, int top,
            HybridSearchOptions<KnowledgeChunk>? options = null, CancellationToken ct = default) where TInput : notnull
        {
            HybridCalls++;
            LastFilter = options?.Filter;
            LastHybridVectorLength = searchValue is ReadOnlyMemory<float> v ? v.Length : -1;
            return inner.HybridSearchAsync(searchValue, keywords, top, options, ct);
        }
    }
}
