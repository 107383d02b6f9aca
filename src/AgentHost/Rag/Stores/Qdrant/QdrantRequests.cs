using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace AgentHost.Rag.Stores.Qdrant;

/// <summary>A sparse vector: unique indices with weights (Qdrant <c>SparseVector</c>).</summary>
public sealed record SparseVector(uint[] Indices, float[] Values)
{
    /// <summary>
    /// Term-frequency sparse vector of a text's CJK bigram/unigram and word terms, hashed (FNV-1a) into uint32 indices.
    /// Used with a sparse vector configured with <c>modifier: idf</c>, Qdrant scores it like BM25.
    /// </summary>
    public static SparseVector FromText(string text)
    {
        var counts = new SortedDictionary<uint, float>();
        foreach (var term in CjkTerms.ForIndex(text).Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            uint h = 2166136261;
            foreach (byte b in Encoding.UTF8.GetBytes(term)) h = (h ^ b) * 16777619;
            counts[h] = counts.GetValueOrDefault(h) + 1;
        }
        return new SparseVector(counts.Keys.ToArray(), counts.Values.ToArray());
    }
}

/// <summary>One point to upsert: id, dense and optional sparse vector, payload.</summary>
public sealed record QdrantPoint(Guid Id, ReadOnlyMemory<float> Dense, SparseVector? Sparse, IReadOnlyDictionary<string, object?> Payload)
{
    /// <summary>Deterministic UUID for a chunk (Qdrant ids must be uint64 or UUID), so re-upserting replaces the same point.</summary>
    public static Guid ChunkId(string source, int ordinal)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{source}\n{ordinal}"));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50); // RFC 4122 version 5 layout
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }

    /// <summary>Namespace of <see cref="KeyId"/>: the UUIDv5 namespace of GlmSK record keys.</summary>
    public static readonly Guid KeyNamespace = new("6f1c5f0e-8a43-5b7e-9d2c-3a1b4c5d6e7f");

    /// <summary>
    /// The point id of a string record key: an RFC 4122 version-5 UUID (SHA-1 of <paramref name="ns"/> and the UTF-8 key),
    /// deterministic, so the same key always addresses the same point. Qdrant ids must be uint64 or UUID.
    /// </summary>
    public static Guid KeyId(string key, Guid? ns = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<byte> name = stackalloc byte[16];
        (ns ?? KeyNamespace).TryWriteBytes(name, bigEndian: true, out _);
        var hash = SHA1.HashData([.. name, .. Encoding.UTF8.GetBytes(key)]);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }
}

/// <summary>A substring condition on a string payload field (Qdrant <c>MatchText</c>: an exact substring match when the field has no full-text index).</summary>
public sealed record QdrantTextMatch(string Text);

/// <summary>
/// Payload filter conditions combined with AND (Qdrant <c>Filter.must</c>). A value is matched exactly (<c>match.value</c>), a
/// collection (other than a string) matches any of its values (<c>match.any</c>), a <see cref="QdrantTextMatch"/> a substring (<c>match.text</c>).
/// </summary>
public sealed record QdrantFilter(IReadOnlyList<(string Key, object Value)> MustMatch)
{
    /// <summary>Filter on exact payload values, e.g. <c>("source", "/a.txt")</c>.</summary>
    public static QdrantFilter Match(params (string Key, object Value)[] conditions) => new(conditions);

    /// <summary>The JSON body of the filter.</summary>
    public JsonObject ToJson() => new()
    {
        ["must"] = new JsonArray(MustMatch.Select(c => (JsonNode)new JsonObject
        {
            ["key"] = c.Key,
            ["match"] = c.Value switch
            {
                QdrantTextMatch t => new JsonObject { ["text"] = t.Text },
                System.Collections.IEnumerable any and not string =>
                    new JsonObject { ["any"] = new JsonArray(any.Cast<object>().Select(v => (JsonNode)Scalar(v)).ToArray()) },
                var v => new JsonObject { ["value"] = Scalar(v) },
            },
        }).ToArray()),
    };

    private static JsonValue Scalar(object value) => value switch
    {
        string s => JsonValue.Create(s),
        int i => JsonValue.Create((long)i),
        long l => JsonValue.Create(l),
        bool b => JsonValue.Create(b),
        _ => throw new NotSupportedException($"payload match on a {value.GetType().Name} value ({value}); Qdrant matches strings, integers and booleans"),
    };
}

/// <summary>Paging and result options of a query.</summary>
public sealed record QdrantSearchOptions
{
    /// <summary>Results skipped before the first returned (<c>offset</c>).</summary>
    public int Offset { get; init; }
    /// <summary>Keep only results scoring at least this (<c>score_threshold</c>; for cosine: similarity ≥ it).</summary>
    public double? ScoreThreshold { get; init; }
    /// <summary>Return the dense vector of each result.</summary>
    public bool WithVector { get; init; }
}

/// <summary>Builds the JSON request bodies of the Qdrant REST API (v1.19 OpenAPI schema names in the comments).</summary>
public static class QdrantRequests
{
    /// <summary>Name of the dense vector in collections created by this client.</summary>
    public const string DenseVector = "dense";

    /// <summary>Name of the sparse (term) vector.</summary>
    public const string SparseVectorName = "sparse";

    /// <summary><c>CreateCollection</c>: named cosine dense vector plus an IDF-weighted sparse vector.</summary>
    public static JsonObject CreateCollection(int dimensions, string distance = "Cosine", bool withSparse = true)
    {
        var body = new JsonObject
        {
            ["vectors"] = new JsonObject { [DenseVector] = new JsonObject { ["size"] = dimensions, ["distance"] = distance } },
        };
        if (withSparse) body["sparse_vectors"] = new JsonObject { [SparseVectorName] = new JsonObject { ["modifier"] = "idf" } };
        return body;
    }

    /// <summary><c>PointsList</c> for <c>PUT /collections/{name}/points</c>; a point with an empty dense vector and a sparse one gets only the sparse vector.</summary>
    public static JsonObject Upsert(IEnumerable<QdrantPoint> points) => new()
    {
        ["points"] = new JsonArray(points.Select(p =>
        {
            var vector = new JsonObject();
            if (!p.Dense.IsEmpty || p.Sparse is null) vector[DenseVector] = FloatArray(p.Dense.Span); // keyword-only point: sparse vector alone
            if (p.Sparse is { } s) vector[SparseVectorName] = Sparse(s);
            var payload = new JsonObject();
            foreach (var (k, v) in p.Payload) payload[k] = v is null ? null : JsonValue.Create(v);
            return (JsonNode)new JsonObject { ["id"] = p.Id.ToString(), ["vector"] = vector, ["payload"] = payload };
        }).ToArray()),
    };

    /// <summary><c>FilterSelector</c> for <c>POST /collections/{name}/points/delete</c>.</summary>
    public static JsonObject DeleteByFilter(QdrantFilter filter) => new() { ["filter"] = filter.ToJson() };

    /// <summary><c>QueryRequest</c>: nearest dense vectors, optionally filtered.</summary>
    public static JsonObject Query(ReadOnlySpan<float> dense, int limit, QdrantFilter? filter = null, QdrantSearchOptions? options = null)
    {
        var body = new JsonObject { ["query"] = FloatArray(dense), ["using"] = DenseVector, ["limit"] = limit, ["with_payload"] = true };
        if (filter is not null) body["filter"] = filter.ToJson();
        return AddOptions(body, options);
    }

    /// <summary><c>QueryRequest</c>: the sparse (term) vector alone, scored by IDF-weighted term overlap (BM25-like).</summary>
    public static JsonObject SparseQuery(SparseVector sparse, int limit, QdrantFilter? filter = null, QdrantSearchOptions? options = null)
    {
        var body = new JsonObject { ["query"] = Sparse(sparse), ["using"] = SparseVectorName, ["limit"] = limit, ["with_payload"] = true };
        if (filter is not null) body["filter"] = filter.ToJson();
        return AddOptions(body, options);
    }

    /// <summary><c>PointRequest</c> for <c>POST /collections/{name}/points</c>: points by id, with payload and optionally the dense vector.</summary>
    public static JsonObject GetPoints(IEnumerable<Guid> ids, bool withVector) => new()
    {
        ["ids"] = new JsonArray(ids.Select(id => (JsonNode)JsonValue.Create(id.ToString())).ToArray()),
        ["with_payload"] = true,
        ["with_vector"] = WithVector(withVector),
    };

    /// <summary><c>PointIdsList</c> for <c>POST /collections/{name}/points/delete</c>.</summary>
    public static JsonObject DeleteByIds(IEnumerable<Guid> ids) => new()
    {
        ["points"] = new JsonArray(ids.Select(id => (JsonNode)JsonValue.Create(id.ToString())).ToArray()),
    };

    /// <summary><c>ScrollRequest</c>: a page of points matching <paramref name="filter"/>, from <paramref name="offset"/> (a point id) on.</summary>
    public static JsonObject Scroll(QdrantFilter? filter, int limit, JsonNode? offset, bool withVector)
    {
        var body = new JsonObject { ["limit"] = limit, ["with_payload"] = true, ["with_vector"] = WithVector(withVector) };
        if (filter is not null) body["filter"] = filter.ToJson();
        if (offset is not null) body["offset"] = offset.DeepClone();
        return body;
    }

    private static JsonNode WithVector(bool withVector) => withVector ? new JsonArray(DenseVector) : JsonValue.Create(false);

    private static JsonObject AddOptions(JsonObject body, QdrantSearchOptions? options)
    {
        if (options is null) return body;
        if (options.Offset > 0) body["offset"] = options.Offset;
        if (options.ScoreThreshold is { } t) body["score_threshold"] = t;
        if (options.WithVector) body["with_vector"] = WithVector(true);
        return body;
    }

    /// <summary><c>QueryRequest</c>: dense and sparse prefetches fused server-side with reciprocal-rank fusion.</summary>
    public static JsonObject HybridQuery(ReadOnlySpan<float> dense, SparseVector sparse, int limit, QdrantFilter? filter = null, int? prefetchLimit = null,
        QdrantSearchOptions? options = null)
    {
        int candidates = prefetchLimit ?? Math.Max((limit + (options?.Offset ?? 0)) * 5, 50);
        JsonObject Prefetch(JsonNode query, string vectorName)
        {
            var p = new JsonObject { ["query"] = query, ["using"] = vectorName, ["limit"] = candidates };
            if (filter is not null) p["filter"] = filter.ToJson();
            return p;
        }
        return AddOptions(new JsonObject
        {
            ["prefetch"] = new JsonArray(Prefetch(FloatArray(dense), DenseVector), Prefetch(Sparse(sparse), SparseVectorName)),
            ["query"] = new JsonObject { ["fusion"] = "rrf" },
            ["limit"] = limit,
            ["with_payload"] = true,
        }, options);
    }

    private static JsonArray FloatArray(ReadOnlySpan<float> values)
    {
        var array = new JsonArray();
        foreach (float v in values) array.Add(v);
        return array;
    }

    private static JsonObject Sparse(SparseVector s) => new()
    {
        ["indices"] = new JsonArray(s.Indices.Select(i => (JsonNode)JsonValue.Create(i)).ToArray()),
        ["values"] = new JsonArray(s.Values.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
    };
}
