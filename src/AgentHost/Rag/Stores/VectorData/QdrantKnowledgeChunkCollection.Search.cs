using System.Globalization;
using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentHost.Rag.Stores.Qdrant;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

public sealed partial class QdrantKnowledgeChunkCollection
{
    /// <summary>
    /// Dense cosine search on the server (score: cosine similarity, higher is better). <paramref name="searchValue"/>: a vector
    /// (ReadOnlyMemory&lt;float&gt;, float[], Embedding&lt;float&gt;) or a string embedded by the configured generator.
    /// Honours Filter, Skip (<c>offset</c>), IncludeVectors and ScoreThreshold (<c>score_threshold</c>: keeps scores ≥ it).
    /// </summary>
    public override async IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<KnowledgeChunk>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new();
        SqliteKnowledgeChunkCollection.CheckPaging(top, options.Skip);
        SqliteKnowledgeChunkCollection.CheckProperty(options.VectorProperty, nameof(KnowledgeChunk.Embedding), "VectorProperty");
        var vector = await SqliteKnowledgeChunkCollection.ToVectorAsync(searchValue, _generator, _queryOptions, Name, cancellationToken).ConfigureAwait(false)
            ?? throw new ArgumentNullException(nameof(searchValue), $"search value is null or empty; expected {SqliteKnowledgeChunkCollection.SupportedInputs}");
        var where = QdrantChunkFilterTranslator.Translate(options.Filter);
        if (where.MatchesNothing) yield break;
        var search = new QdrantSearchOptions { Offset = options.Skip, ScoreThreshold = options.ScoreThreshold, WithVector = options.IncludeVectors };
        var hits = await Run("Search", () => _client.QueryAsync(Name, vector, top, where.Filter, search, cancellationToken)).ConfigureAwait(false);
        foreach (var hit in hits) yield return new VectorSearchResult<KnowledgeChunk>(FromPoint(hit.Id, hit.Payload, hit.Dense), hit.Score);
    }

    /// <summary>
    /// Keyword search (the sparse term vector of the joined <paramref name="keywords"/>, IDF-weighted, over section + text) fused
    /// on the server by reciprocal rank with the dense search of <paramref name="searchValue"/> (Qdrant prefetch + <c>fusion: rrf</c>;
    /// score: RRF, higher is better). An empty vector (<c>ReadOnlyMemory&lt;float&gt;.Empty</c>) runs the keyword leg alone (score:
    /// sparse dot product). Unlike the SQLite store, a keyword in double quotes is not an exact-phrase query: its terms are matched.
    /// Honours Filter, Skip, IncludeVectors and ScoreThreshold.
    /// </summary>
    public async IAsyncEnumerable<VectorSearchResult<KnowledgeChunk>> HybridSearchAsync<TInput>(TInput searchValue, ICollection<string> keywords, int top,
        HybridSearchOptions<KnowledgeChunk>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TInput : notnull
    {
        ArgumentNullException.ThrowIfNull(keywords);
        options ??= new();
        SqliteKnowledgeChunkCollection.CheckPaging(top, options.Skip);
        SqliteKnowledgeChunkCollection.CheckProperty(options.VectorProperty, nameof(KnowledgeChunk.Embedding), "VectorProperty");
        SqliteKnowledgeChunkCollection.CheckProperty(options.AdditionalProperty, nameof(KnowledgeChunk.Text), "AdditionalProperty (the full-text property)");
        var vector = await SqliteKnowledgeChunkCollection.ToVectorAsync(searchValue, _generator, _queryOptions, Name, cancellationToken).ConfigureAwait(false);
        var sparse = SparseVector.FromText(string.Join(' ', keywords.Where(k => !string.IsNullOrWhiteSpace(k)).Select(k => k.Trim().Trim('"'))));
        var where = QdrantChunkFilterTranslator.Translate(options.Filter);
        if (where.MatchesNothing || (vector is null && sparse.Indices.Length == 0)) yield break;
        var search = new QdrantSearchOptions { Offset = options.Skip, ScoreThreshold = options.ScoreThreshold, WithVector = options.IncludeVectors };
        var hits = await Run("HybridSearch", () => vector is { } v
            ? _client.HybridQueryAsync(Name, v, sparse, top, where.Filter, search, cancellationToken)
            : _client.SparseQueryAsync(Name, sparse, top, where.Filter, search, cancellationToken)).ConfigureAwait(false);
        foreach (var hit in hits) yield return new VectorSearchResult<KnowledgeChunk>(FromPoint(hit.Id, hit.Payload, hit.Dense), hit.Score);
    }

    /// <summary>The point of a record: key-derived id, dense vector (when present), sparse vector of section + text, every field in the payload.</summary>
    internal static QdrantPoint ToPoint(KnowledgeChunk r)
    {
        var f = QdrantChunkFilterTranslator.PayloadFields;
        var payload = new Dictionary<string, object?>
        {
            [f[nameof(KnowledgeChunk.Key)]] = r.Key, [f[nameof(KnowledgeChunk.Source)]] = r.Source, [f[nameof(KnowledgeChunk.Ordinal)]] = r.Ordinal,
            [f[nameof(KnowledgeChunk.Section)]] = r.Section, [f[nameof(KnowledgeChunk.Text)]] = r.Text,
            [f[nameof(KnowledgeChunk.StartOffset)]] = r.StartOffset, [f[nameof(KnowledgeChunk.EndOffset)]] = r.EndOffset,
            [f[nameof(KnowledgeChunk.TokenCount)]] = r.TokenCount,
        };
        string terms = r.Section.Length > 0 ? r.Section + "\n" + r.Text : r.Text;
        return new QdrantPoint(QdrantPoint.KeyId(r.Key), r.Embedding ?? ReadOnlyMemory<float>.Empty, SparseVector.FromText(terms), payload);
    }

    /// <summary>The record of a returned point; <see cref="KnowledgeChunk.RowId"/> is derived from the point id (stable, unique per key).</summary>
    /// <exception cref="VectorStoreException">The payload lacks the fields this collection writes (a point stored by something else).</exception>
    internal KnowledgeChunk FromPoint(string id, JsonObject? payload, float[]? dense)
    {
        var f = QdrantChunkFilterTranslator.PayloadFields;
        try
        {
            if (payload is null) throw new FormatException("no payload");
            string Str(string field) => payload[f[field]]?.GetValue<string>() ?? throw new FormatException($"payload field '{f[field]}' is missing");
            int Int(string field) => payload[f[field]] is JsonValue v ? v.GetValue<int>() : throw new FormatException($"payload field '{f[field]}' is missing");
            return new KnowledgeChunk
            {
                Key = Str(nameof(KnowledgeChunk.Key)), Source = Str(nameof(KnowledgeChunk.Source)), Ordinal = Int(nameof(KnowledgeChunk.Ordinal)),
                Section = Str(nameof(KnowledgeChunk.Section)), Text = Str(nameof(KnowledgeChunk.Text)),
                StartOffset = Int(nameof(KnowledgeChunk.StartOffset)), EndOffset = Int(nameof(KnowledgeChunk.EndOffset)),
                TokenCount = Int(nameof(KnowledgeChunk.TokenCount)),
                Embedding = dense is null ? (ReadOnlyMemory<float>?)null : new ReadOnlyMemory<float>(dense),
                RowId = RowIdOf(id),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or JsonException)
        {
            throw new VectorStoreException($"Qdrant collection '{Name}': point {id} is not a knowledge chunk ({e.Message}); expected the payload fields "
                + string.Join(", ", f.Values), e) { VectorStoreSystemName = SystemName, CollectionName = Name, OperationName = "Read" };
        }
    }

    /// <summary>A non-negative 63-bit number from a point id (the first 8 bytes of a UUID, or a numeric id itself).</summary>
    internal static long RowIdOf(string pointId)
    {
        if (Guid.TryParse(pointId, out var guid))
        {
            Span<byte> bytes = stackalloc byte[16];
            guid.TryWriteBytes(bytes, bigEndian: true, out _);
            return BitConverter.ToInt64(bytes[..8]) & long.MaxValue;
        }
        return long.TryParse(pointId, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : pointId.GetHashCode() & int.MaxValue;
    }

    /// <summary>The order of filtered reads: the OrderBy sorts, then source and ordinal (the SQLite store's default order).</summary>
    private static Func<IEnumerable<KnowledgeChunk>, IEnumerable<KnowledgeChunk>> Ordering(
        Func<FilteredRecordRetrievalOptions<KnowledgeChunk>.OrderByDefinition, FilteredRecordRetrievalOptions<KnowledgeChunk>.OrderByDefinition>? orderBy)
    {
        var sorts = orderBy?.Invoke(new FilteredRecordRetrievalOptions<KnowledgeChunk>.OrderByDefinition()).Values ?? [];
        var keys = sorts.Select(s =>
        {
            var body = s.PropertySelector.Body is UnaryExpression { NodeType: ExpressionType.Convert } u ? u.Operand : s.PropertySelector.Body;
            string field = (body as MemberExpression)?.Member.Name ?? "";
            if (field == nameof(KnowledgeChunk.Key) || !QdrantChunkFilterTranslator.PayloadFields.ContainsKey(field))
                throw new NotSupportedException($"OrderBy '{s.PropertySelector}': expected a data field selector such as r => r.Ordinal");
            return (Key: s.PropertySelector.Compile(), s.Ascending);
        }).ToList();
        return records =>
        {
            IOrderedEnumerable<KnowledgeChunk>? ordered = null;
            foreach (var (key, ascending) in keys)
                ordered = ordered is null
                    ? (ascending ? records.OrderBy(key, Comparer<object?>.Default) : records.OrderByDescending(key, Comparer<object?>.Default))
                    : (ascending ? ordered.ThenBy(key, Comparer<object?>.Default) : ordered.ThenByDescending(key, Comparer<object?>.Default));
            return ordered is null
                ? records.OrderBy(r => r.Source, StringComparer.Ordinal).ThenBy(r => r.Ordinal)
                : ordered.ThenBy(r => r.Source, StringComparer.Ordinal).ThenBy(r => r.Ordinal);
        };
    }
}
