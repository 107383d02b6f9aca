using AgentHost.Rag.Stores;
using Glm.Engine;
using Microsoft.Extensions.AI;

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

/// <summary>A retrieved chunk and the relevance figure the no-answer gate judged it by.</summary>
/// <param name="Hit">The chunk.</param>
/// <param name="Relevance">Term coverage (keyword) or cosine (dense), whichever was higher for this chunk.</param>
public sealed record ScoredHit(SearchHit Hit, double Relevance);

/// <summary>Thresholds below which a retrieved chunk is not considered relevant.</summary>
/// <param name="MinTermCoverage">Fraction of the query's terms a keyword hit must contain.</param>
/// <param name="MinCosine">Cosine similarity a dense hit must reach.</param>
public sealed record RelevanceThresholds(double MinTermCoverage, double MinCosine);

/// <summary>Keyword, dense and hybrid retrieval over one knowledge base, with an optional relevance gate.</summary>
public sealed class Retriever(IKnowledgeBase knowledgeBase, IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator)
{
    /// <summary>True when dense retrieval is possible.</summary>
    public bool HasEmbedder => embeddingGenerator is not null;

    /// <summary>The mode actually used for <paramref name="requested"/>: hybrid falls back to keyword without an embedder.</summary>
    public RetrievalMode Effective(RetrievalMode requested) => requested switch
    {
        RetrievalMode.Dense when !HasEmbedder => throw new GlmException("dense retrieval needs an embedding model; set Embedding:Provider (openai or hashing) in appsettings.json or GLM_Embedding__Provider"),
        RetrievalMode.Hybrid when !HasEmbedder => RetrievalMode.Keyword,
        _ => requested,
    };

    /// <summary>Ranked chunks without any relevance gate (what eval-rag measures).</summary>
    public async Task<IReadOnlyList<SearchHit>> SearchAsync(string query, RetrievalMode mode, int top, SearchFilter? filter = null,
        CancellationToken cancellationToken = default)
    {
        switch (Effective(mode))
        {
            case RetrievalMode.Keyword:
                return knowledgeBase.KeywordSearch(query, top, filter);
            case RetrievalMode.Dense:
                return knowledgeBase.VectorSearch(await EmbedAsync(query, cancellationToken).ConfigureAwait(false), top, filter);
            default:
                return knowledgeBase.HybridSearch(query, await EmbedAsync(query, cancellationToken).ConfigureAwait(false), top, filter);
        }
    }

    /// <summary>
    /// Ranked chunks that pass the relevance gate: keyword candidates need <see cref="RelevanceThresholds.MinTermCoverage"/>,
    /// dense candidates <see cref="RelevanceThresholds.MinCosine"/>; survivors of both lists are fused by reciprocal rank.
    /// An empty result means "the documents do not contain it".
    /// </summary>
    public async Task<IReadOnlyList<ScoredHit>> RetrieveRelevantAsync(string query, RetrievalMode mode, int top, RelevanceThresholds thresholds,
        SearchFilter? filter = null, CancellationToken cancellationToken = default)
    {
        var effective = Effective(mode);
        int candidates = Math.Max(top * 5, 50);
        var relevance = new Dictionary<long, double>();
        var lists = new List<IReadOnlyList<SearchHit>>();
        if (effective is RetrievalMode.Keyword or RetrievalMode.Hybrid)
        {
            var kept = new List<SearchHit>();
            foreach (var hit in knowledgeBase.KeywordSearch(query, candidates, filter))
            {
                double coverage = TermCoverage(query, hit);
                if (coverage < thresholds.MinTermCoverage) continue;
                kept.Add(hit);
                relevance[hit.ChunkId] = coverage;
            }
            lists.Add(kept);
        }
        if (effective is RetrievalMode.Dense or RetrievalMode.Hybrid)
        {
            var vector = await EmbedAsync(query, cancellationToken).ConfigureAwait(false);
            var kept = knowledgeBase.VectorSearch(vector, candidates, filter).Where(h => h.Score >= thresholds.MinCosine).ToList();
            foreach (var hit in kept) relevance[hit.ChunkId] = Math.Max(relevance.GetValueOrDefault(hit.ChunkId), hit.Score);
            lists.Add(kept);
        }
        var fused = lists.Count == 1 ? lists[0].Take(top).ToList() : ReciprocalRankFusion.Fuse(lists, top);
        return fused.Select(h => new ScoredHit(h, relevance[h.ChunkId])).ToList();
    }

    /// <summary>Fraction of the query's distinct terms (CJK bigrams, lower-case words) that occur in the chunk or its section title.</summary>
    public static double TermCoverage(string query, SearchHit hit)
    {
        var terms = CjkTerms.ForQuery(query);
        if (terms.Count == 0) return 0;
        string text = (hit.Section + "\n" + hit.Text).ToLowerInvariant();
        return terms.Count(t => text.Contains(t, StringComparison.Ordinal)) / (double)terms.Count;
    }

    private async Task<ReadOnlyMemory<float>> EmbedAsync(string query, CancellationToken cancellationToken)
    {
        var embeddings = await embeddingGenerator!.GenerateAsync([query], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (embeddings.Count != 1) throw new GlmException($"the embedding model returned {embeddings.Count} vectors for one query; expected 1");
        return embeddings[0].Vector;
    }
}
