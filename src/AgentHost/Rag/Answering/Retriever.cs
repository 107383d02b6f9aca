using System.Linq.Expressions;
using System.Runtime.ExceptionServices;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Stores.VectorData;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Answering;

/// <summary>How chunks are retrieved.</summary>
public enum RetrievalMode
{
    /// <summary>BM25 over CJK bigrams and words.</summary>
    Keyword,
    /// <summary>Cosine similarity of embeddings (needs an embedding generator).</summary>
    Dense,
    /// <summary>Keyword and dense lists fused by reciprocal rank (keyword only when no embedder is configured).</summary>
    Hybrid,
}

/// <summary>A retrieved chunk and the relevance figures the no-answer gate judges by.</summary>
/// <param name="Hit">The chunk.</param>
/// <param name="TermCoverage">Fraction of the query's content terms found in the chunk (<see cref="Retriever.TermCoverage"/>).</param>
/// <param name="Cosine">Cosine similarity to the query embedding, when the chunk came from dense retrieval.</param>
public sealed record ScoredHit(SearchHit Hit, double TermCoverage, double? Cosine);

/// <summary>Thresholds below which a retrieved chunk is not considered relevant.</summary>
/// <param name="MinTermCoverage">Fraction of the query's terms a keyword hit must contain.</param>
/// <param name="MinCosine">Cosine similarity a dense hit must reach.</param>
public sealed record RelevanceThresholds(double MinTermCoverage, double MinCosine);

/// <summary>
/// Keyword, dense and hybrid retrieval over one knowledge base, with an optional relevance gate and an optional cross-encoder
/// reranker that reorders the top <c>rerankCandidates</c> fused candidates. Every search goes through the knowledge base's
/// Microsoft.Extensions.VectorData collection (<see cref="VectorStoreCollection{TKey, TRecord}.SearchAsync"/> and
/// <see cref="IKeywordHybridSearchable{TRecord}.HybridSearchAsync"/>); the query is embedded here, once, with the query options.
/// </summary>
public sealed class Retriever
{
    private readonly VectorStoreCollection<string, KnowledgeChunk> chunks;
    private readonly IKeywordHybridSearchable<KnowledgeChunk> hybrid;
    private readonly IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator;
    private readonly IPassageReranker? reranker;
    private readonly int rerankCandidates;

    /// <summary>A retriever over a VectorData collection of chunks that also supports keyword hybrid search.</summary>
    /// <exception cref="ArgumentException"><paramref name="chunks"/> does not implement <see cref="IKeywordHybridSearchable{TRecord}"/>.</exception>
    public Retriever(VectorStoreCollection<string, KnowledgeChunk> chunks, IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator,
        IPassageReranker? reranker = null, int rerankCandidates = DefaultRerankCandidates)
    {
        this.chunks = chunks;
        hybrid = chunks as IKeywordHybridSearchable<KnowledgeChunk> ?? throw new ArgumentException(
            $"collection '{chunks.Name}' ({chunks.GetType().Name}) does not implement IKeywordHybridSearchable<{nameof(KnowledgeChunk)}>; expected a keyword-hybrid collection", nameof(chunks));
        this.embeddingGenerator = embeddingGenerator;
        this.reranker = reranker;
        this.rerankCandidates = rerankCandidates;
    }

    /// <summary>A retriever over an open knowledge base, through a <see cref="SqliteKnowledgeChunkCollection"/> that shares its connection.</summary>
    public Retriever(SqliteKnowledgeBase knowledgeBase, IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator,
        IPassageReranker? reranker = null, int rerankCandidates = DefaultRerankCandidates)
        : this(new SqliteKnowledgeChunkCollection(knowledgeBase), embeddingGenerator, reranker, rerankCandidates) { }

    /// <summary>Fused candidates the reranker scores when none is configured.</summary>
    public const int DefaultRerankCandidates = 20;

    /// <summary>True when a reranker is configured.</summary>
    public bool HasReranker => reranker is not null;

    /// <summary>The reranker, or null.</summary>
    public IPassageReranker? Reranker => reranker;

    /// <summary>True when dense retrieval is possible.</summary>
    public bool HasEmbedder => embeddingGenerator is not null;

    /// <summary>The mode actually used for <paramref name="requested"/>: hybrid falls back to keyword without an embedder.</summary>
    public RetrievalMode Effective(RetrievalMode requested) => requested switch
    {
        RetrievalMode.Dense when !HasEmbedder => throw new GlmException("dense retrieval needs an embedding model; set Embedding:Provider (openai or hashing) in appsettings.json or GLM_Embedding__Provider"),
        RetrievalMode.Hybrid when !HasEmbedder => RetrievalMode.Keyword,
        _ => requested,
    };

    /// <summary>
    /// Ranked chunks without any relevance gate (what eval-rag measures). With <paramref name="rerank"/> (needs a reranker) the
    /// top <c>max(top, rerankCandidates)</c> chunks of the mode are reordered by the cross-encoder before the cut.
    /// </summary>
    public async Task<IReadOnlyList<SearchHit>> SearchAsync(string query, RetrievalMode mode, int top, SearchFilter? filter = null,
        CancellationToken cancellationToken = default, bool rerank = false)
    {
        if (rerank && reranker is null) throw new GlmException("reranking needs a cross-encoder; set Rag:Reranker:ModelDir (e.g. a bge-reranker-base folder)");
        int candidates = rerank ? Math.Max(top, rerankCandidates) : top;
        var where = ChunkFilterTranslator.FromSearchFilter(filter);
        IReadOnlyList<SearchHit> hits = Effective(mode) switch
        {
            RetrievalMode.Keyword => await HybridAsync(query, ReadOnlyMemory<float>.Empty, candidates, where, cancellationToken).ConfigureAwait(false),
            RetrievalMode.Dense => await DenseAsync(await EmbedAsync(query, cancellationToken).ConfigureAwait(false), candidates, where, cancellationToken).ConfigureAwait(false),
            _ => await HybridAsync(query, await EmbedAsync(query, cancellationToken).ConfigureAwait(false), candidates, where, cancellationToken).ConfigureAwait(false),
        };
        return rerank ? (await RerankAsync(query, hits, cancellationToken).ConfigureAwait(false)).Take(top).ToList() : hits;
    }

    /// <summary>
    /// <paramref name="hits"/> reordered by the reranker's scores (stable for ties); each hit's <see cref="SearchHit.Score"/> becomes
    /// the cross-encoder score. Unchanged without a reranker.
    /// </summary>
    public async Task<IReadOnlyList<SearchHit>> RerankAsync(string query, IReadOnlyList<SearchHit> hits, CancellationToken cancellationToken = default)
    {
        if (reranker is null || hits.Count == 0) return hits;
        var scores = await reranker.ScoreAsync(query, hits.Select(h => h.Section.Length > 0 ? h.Section + "\n" + h.Text : h.Text).ToList(), cancellationToken).ConfigureAwait(false);
        if (scores.Count != hits.Count) throw new GlmException($"the reranker {reranker.Name} returned {scores.Count} scores for {hits.Count} passages; expected one each");
        return hits.Select((h, i) => (Hit: h with { Score = scores[i] }, Index: i))
            .OrderByDescending(x => x.Hit.Score).ThenBy(x => x.Index).Select(x => x.Hit).ToList();
    }

    /// <summary>
    /// The top chunks (keyword and dense lists fused by reciprocal rank, then reordered by the reranker when one is configured), or none when not one of them is relevant: a chunk
    /// is relevant when it holds <see cref="RelevanceThresholds.MinTermCoverage"/> of the query's content terms or reaches
    /// <see cref="RelevanceThresholds.MinCosine"/>. An empty result means "the documents do not contain it".
    /// </summary>
    public async Task<IReadOnlyList<ScoredHit>> RetrieveRelevantAsync(string query, RetrievalMode mode, int top, RelevanceThresholds thresholds,
        SearchFilter? filter = null, CancellationToken cancellationToken = default)
    {
        var effective = Effective(mode);
        int candidates = Math.Max(top * 5, 50);
        int keep = reranker is null ? top : Math.Max(top, rerankCandidates);
        var where = ChunkFilterTranslator.FromSearchFilter(filter);
        var cosine = new Dictionary<long, double>();
        IReadOnlyList<SearchHit> fused;
        if (effective is RetrievalMode.Keyword)
            fused = await HybridAsync(query, ReadOnlyMemory<float>.Empty, keep, where, cancellationToken).ConfigureAwait(false);
        else
        {
            var vector = await EmbedAsync(query, cancellationToken).ConfigureAwait(false);
            var dense = await DenseAsync(vector, candidates, where, cancellationToken).ConfigureAwait(false);
            foreach (var hit in dense) cosine[hit.ChunkId] = hit.Score;
            fused = effective is RetrievalMode.Dense ? dense.Take(keep).ToList()
                : await HybridAsync(query, vector, keep, where, cancellationToken).ConfigureAwait(false); // the collection's keyword + vector RRF
        }
        if (reranker is not null) fused = (await RerankAsync(query, fused, cancellationToken).ConfigureAwait(false)).Take(top).ToList();
        var scored = fused.Select(h => new ScoredHit(h, TermCoverage(query, h), cosine.TryGetValue(h.ChunkId, out double c) ? c : null)).ToList();
        bool anyRelevant = scored.Any(s => s.TermCoverage >= thresholds.MinTermCoverage || s.Cosine >= thresholds.MinCosine);
        return anyRelevant ? scored : [];
    }

    /// <summary>Chars whose bigrams carry no topic (particles, interrogatives): such bigrams are left out of the coverage.</summary>
    private const string FunctionChars = "的了是吗呢吧啊么什哪谁怎";

    private static readonly HashSet<string> FunctionBigrams = ["什么", "多少", "如何", "为何", "为什", "几个", "哪些", "是否", "有没", "没有", "请问"];

    /// <summary>The query terms that carry its topic: CJK bigrams without particles/interrogatives, and words (all terms when none is left).</summary>
    public static IReadOnlyList<string> ContentTerms(string query)
    {
        var all = CjkTerms.ForQuery(query);
        var content = all.Where(t => !(t.Any(c => FunctionChars.Contains(c)) || FunctionBigrams.Contains(t))).ToList();
        return content.Count > 0 ? content : all;
    }

    /// <summary>Fraction of the query's <see cref="ContentTerms"/> that occur in the chunk or its section title.</summary>
    public static double TermCoverage(string query, SearchHit hit)
    {
        var terms = ContentTerms(query);
        if (terms.Count == 0) return 0;
        string text = (hit.Section + "\n" + hit.Text).ToLowerInvariant();
        return terms.Count(t => text.Contains(t, StringComparison.Ordinal)) / (double)terms.Count;
    }

    private Task<List<SearchHit>> DenseAsync(ReadOnlyMemory<float> vector, int top, Expression<Func<KnowledgeChunk, bool>>? where, CancellationToken cancellationToken) =>
        CollectAsync(chunks.SearchAsync(vector, top, new VectorSearchOptions<KnowledgeChunk> { Filter = where }, cancellationToken));

    /// <summary>Keyword leg fused with the vector leg by reciprocal rank; an empty <paramref name="vector"/> runs the keyword leg alone (BM25 scores).</summary>
    private Task<List<SearchHit>> HybridAsync(string query, ReadOnlyMemory<float> vector, int top, Expression<Func<KnowledgeChunk, bool>>? where, CancellationToken cancellationToken) =>
        CollectAsync(hybrid.HybridSearchAsync(vector, [query], top, new HybridSearchOptions<KnowledgeChunk> { Filter = where }, cancellationToken));

    /// <summary>The results as search hits; a store error that carries a <see cref="GlmException"/> is rethrown as that (the CLI reports those plainly).</summary>
    private static async Task<List<SearchHit>> CollectAsync(IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> results)
    {
        var hits = new List<SearchHit>();
        try
        {
            await foreach (var r in results.ConfigureAwait(false)) hits.Add(r.Record.ToSearchHit(r.Score ?? 0));
        }
        catch (VectorStoreException e) when (e.InnerException is GlmException inner)
        {
            ExceptionDispatchInfo.Throw(inner);
        }
        return hits;
    }

    private async Task<ReadOnlyMemory<float>> EmbedAsync(string query, CancellationToken cancellationToken)
    {
        var embeddings = await embeddingGenerator!.GenerateAsync([query], Glm.Connector.EncoderEmbeddingGenerator.ForQueries(), cancellationToken).ConfigureAwait(false);
        if (embeddings.Count != 1) throw new GlmException($"the embedding model returned {embeddings.Count} vectors for one query; expected 1");
        return embeddings[0].Vector;
    }
}
