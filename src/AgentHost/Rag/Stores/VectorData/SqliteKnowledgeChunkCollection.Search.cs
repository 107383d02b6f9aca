using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

public sealed partial class SqliteKnowledgeChunkCollection
{
    internal const string SupportedInputs = "ReadOnlyMemory<float>, float[], Embedding<float>, or a string with an IEmbeddingGenerator<string, Embedding<float>> configured";

    /// <summary>
    /// Exact cosine-similarity search (score: cosine, higher is better). <paramref name="searchValue"/>: a vector
    /// (ReadOnlyMemory&lt;float&gt;, float[], Embedding&lt;float&gt;) or a string embedded by the configured generator.
    /// Honours Filter, Skip, IncludeVectors and ScoreThreshold (keeps scores ≥ it).
    /// </summary>
    public override async IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<KnowledgeChunk>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new();
        CheckPaging(top, options.Skip);
        CheckProperty(options.VectorProperty, nameof(KnowledgeChunk.Embedding), "VectorProperty");
        var vector = await ToVectorAsync(searchValue, cancellationToken).ConfigureAwait(false)
            ?? throw new ArgumentNullException(nameof(searchValue), $"search value is null or empty; expected {SupportedInputs}");
        var filter = ChunkFilterTranslator.Translate(options.Filter);
        var results = Run("Search", kb => Materialize(kb, kb.VectorSearch(vector, top + options.Skip, filter), options.Skip, options.ScoreThreshold, options.IncludeVectors));
        foreach (var r in results) yield return r;
    }

    /// <summary>
    /// Keyword search over <see cref="KnowledgeChunk.Text"/> (FTS5 BM25 of the joined <paramref name="keywords"/>; one keyword in
    /// double quotes is an exact substring) fused by reciprocal rank with the vector search of <paramref name="searchValue"/>
    /// (score: RRF, higher is better). An empty vector (<c>ReadOnlyMemory&lt;float&gt;.Empty</c>) runs the keyword leg alone
    /// (score: BM25), for knowledge bases without embeddings. Honours Filter, Skip, IncludeVectors and ScoreThreshold.
    /// </summary>
    public async IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> HybridSearchAsync<TInput>(TInput searchValue, ICollection<string> keywords, int top,
        HybridSearchOptions<KnowledgeChunk>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TInput : notnull
    {
        ArgumentNullException.ThrowIfNull(keywords);
        options ??= new();
        CheckPaging(top, options.Skip);
        CheckProperty(options.VectorProperty, nameof(KnowledgeChunk.Embedding), "VectorProperty");
        CheckProperty(options.AdditionalProperty, nameof(KnowledgeChunk.Text), "AdditionalProperty (the full-text property)");
        var vector = await ToVectorAsync(searchValue, cancellationToken).ConfigureAwait(false);
        string query = string.Join(' ', keywords.Where(k => !string.IsNullOrWhiteSpace(k)).Select(k => k.Trim()));
        var filter = ChunkFilterTranslator.Translate(options.Filter);
        int wanted = top + options.Skip;
        var results = Run("HybridSearch", kb => Materialize(kb,
            vector is { } v ? kb.HybridSearch(query, v, wanted, filter) : kb.KeywordSearch(query, wanted, filter),
            options.Skip, options.ScoreThreshold, options.IncludeVectors));
        foreach (var r in results) yield return r;
    }

    /// <summary>Full records for ranked hits, in rank order, after skip and threshold.</summary>
    private static List<VectorSearchResult<KnowledgeChunk>> Materialize(SqliteKnowledgeBase kb, IReadOnlyList<SearchHit> hits, int skip, double? threshold, bool includeVectors)
    {
        var kept = hits.Skip(skip).Where(h => threshold is not { } t || h.Score >= t).ToList();
        var rows = kb.ReadChunksById(kept.Select(h => h.ChunkId).ToList(), includeVectors).ToDictionary(r => r.Id);
        return kept.Where(h => rows.ContainsKey(h.ChunkId))
            .Select(h => new VectorSearchResult<KnowledgeChunk>(KnowledgeChunk.FromRow(rows[h.ChunkId]), h.Score)).ToList();
    }

    /// <summary>The query vector for a search value, or null for a null value or an empty vector.</summary>
    private Task<ReadOnlyMemory<float>?> ToVectorAsync<TInput>(TInput value, CancellationToken cancellationToken) =>
        ToVectorAsync(value, _generator, _queryOptions, Name, cancellationToken);

    /// <summary>The query vector for a search value of collection <paramref name="name"/> (also used by the Qdrant collection).</summary>
    internal static async Task<ReadOnlyMemory<float>?> ToVectorAsync<TInput>(TInput value, IEmbeddingGenerator<string, Embedding<float>>? generator,
        EmbeddingGenerationOptions? queryOptions, string name, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<float> vector;
        switch (value)
        {
            case null: return null;
            case ReadOnlyMemory<float> m: vector = m; break;
            case float[] a: vector = a; break;
            case Embedding<float> e: vector = e.Vector; break;
            case string s:
                if (generator is null)
                    throw new InvalidOperationException($"search value is a string but collection '{name}' has no IEmbeddingGenerator<string, Embedding<float>> "
                        + "(set VectorStoreCollectionOptions.EmbeddingGenerator, the definition's or its vector property's); or pass a ReadOnlyMemory<float>");
                vector = await generator.GenerateVectorAsync(s, queryOptions, cancellationToken).ConfigureAwait(false);
                break;
            default:
                throw new NotSupportedException($"search value of type {typeof(TInput).Name} is not supported by collection '{name}'; expected {SupportedInputs}");
        }
        if (vector.Length == 0) return null; // (not "? null :": null converts to an empty ReadOnlyMemory there)
        return vector;
    }

    internal static void CheckPaging(int top, int skip)
    {
        if (top < 1) throw new ArgumentOutOfRangeException(nameof(top), top, $"top = {top}; expected ≥ 1");
        if (skip < 0) throw new ArgumentOutOfRangeException(nameof(skip), skip, $"Skip = {skip}; expected ≥ 0");
    }

    /// <summary>Throws unless <paramref name="selector"/> is null or selects <paramref name="expected"/>.</summary>
    internal static void CheckProperty(Expression<Func<KnowledgeChunk, object?>>? selector, string expected, string option)
    {
        if (selector is null) return;
        var body = selector.Body is UnaryExpression { NodeType: ExpressionType.Convert } u ? u.Operand : selector.Body;
        string? name = (body as MemberExpression)?.Member.Name;
        if (name != expected)
            throw new NotSupportedException($"{option} '{selector}' is not supported; the only choice in {nameof(KnowledgeChunk)} is '{expected}'");
    }

    private static string? OrderBySql(Func<FilteredRecordRetrievalOptions<KnowledgeChunk>.OrderByDefinition, FilteredRecordRetrievalOptions<KnowledgeChunk>.OrderByDefinition>? orderBy)
    {
        if (orderBy is null) return null;
        var sorts = orderBy(new FilteredRecordRetrievalOptions<KnowledgeChunk>.OrderByDefinition()).Values;
        if (sorts.Count == 0) return null;
        return string.Join(", ", sorts.Select(s =>
        {
            var body = s.PropertySelector.Body is UnaryExpression { NodeType: ExpressionType.Convert } u ? u.Operand : s.PropertySelector.Body;
            string field = (body as MemberExpression)?.Member.Name ?? throw new NotSupportedException($"OrderBy '{s.PropertySelector}': expected a data field selector such as r => r.Ordinal");
            return ChunkFilterTranslator.ColumnOf(field) + (s.Ascending ? " ASC" : " DESC");
        })) + ", c.id";
    }

    /// <summary>Checks the options' definition against <see cref="KnowledgeChunk"/> and picks the embedding generator (vector property, then definition, then options).</summary>
    private static (IEmbeddingGenerator<string, Embedding<float>>?, EmbeddingGenerationOptions?) Configure(SqliteKnowledgeChunkCollectionOptions? options) =>
        Configure(options, options?.QueryEmbeddingOptions);

    /// <summary>Shared with the Qdrant collection: the definition check and generator choice for any <see cref="KnowledgeChunk"/> collection options.</summary>
    internal static (IEmbeddingGenerator<string, Embedding<float>>?, EmbeddingGenerationOptions?) Configure(VectorStoreCollectionOptions? options, EmbeddingGenerationOptions? queryOptions)
    {
        var definition = options?.Definition;
        foreach (var p in definition?.Properties ?? [])
        {
            bool ok = p switch
            {
                VectorStoreKeyProperty => p.Name == nameof(KnowledgeChunk.Key),
                VectorStoreVectorProperty => p.Name == nameof(KnowledgeChunk.Embedding),
                VectorStoreDataProperty => p.Name == nameof(KnowledgeChunk.Text) || p.Name == nameof(KnowledgeChunk.Source) || p.Name == nameof(KnowledgeChunk.Section)
                    || p.Name is nameof(KnowledgeChunk.Ordinal) or nameof(KnowledgeChunk.StartOffset) or nameof(KnowledgeChunk.EndOffset) or nameof(KnowledgeChunk.TokenCount),
                _ => false,
            };
            if (!ok) throw new ArgumentException($"definition property '{p.Name}' ({p.GetType().Name}) does not exist in {nameof(KnowledgeChunk)}; "
                + "expected key Key, vector Embedding, data Source/Ordinal/Section/Text/StartOffset/EndOffset/TokenCount", nameof(options));
        }
        var generator = definition?.Properties.OfType<VectorStoreVectorProperty>().FirstOrDefault()?.EmbeddingGenerator
            ?? definition?.EmbeddingGenerator ?? options?.EmbeddingGenerator;
        if (generator is not null and not IEmbeddingGenerator<string, Embedding<float>>)
            throw new ArgumentException($"embedding generator {generator.GetType().Name} is not an IEmbeddingGenerator<string, Embedding<float>>; expected one that embeds text as float vectors", nameof(options));
        return (generator as IEmbeddingGenerator<string, Embedding<float>>, queryOptions);
    }
}
