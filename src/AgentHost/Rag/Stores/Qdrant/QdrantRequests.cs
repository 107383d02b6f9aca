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
}

/// <summary>Payload filter conditions combined with AND (Qdrant <c>Filter.must</c>).</summary>
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
            ["match"] = c.Value is IEnumerable<string> any && c.Value is not string
                ? new JsonObject { ["any"] = new JsonArray(any.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray()) }
                : new JsonObject { ["value"] = JsonValue.Create(c.Value) },
        }).ToArray()),
    };
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

    /// <summary><c>PointsList</c> for <c>PUT /collections/{name}/points</c>.</summary>
    public static JsonObject Upsert(IEnumerable<QdrantPoint> points) => new()
    {
        ["points"] = new JsonArray(points.Select(p =>
        {
            var vector = new JsonObject { [DenseVector] = FloatArray(p.Dense.Span) };
            if (p.Sparse is { } s) vector[SparseVectorName] = Sparse(s);
            var payload = new JsonObject();
            foreach (var (k, v) in p.Payload) payload[k] = v is null ? null : JsonValue.Create(v);
            return (JsonNode)new JsonObject { ["id"] = p.Id.ToString(), ["vector"] = vector, ["payload"] = payload };
        }).ToArray()),
    };

    /// <summary><c>FilterSelector</c> for <c>POST /collections/{name}/points/delete</c>.</summary>
    public static JsonObject DeleteByFilter(QdrantFilter filter) => new() { ["filter"] = filter.ToJson() };

    /// <summary><c>QueryRequest</c>: nearest dense vectors, optionally filtered.</summary>
    public static JsonObject Query(ReadOnlySpan<float> dense, int limit, QdrantFilter? filter = null)
    {
        var body = new JsonObject { ["query"] = FloatArray(dense), ["using"] = DenseVector, ["limit"] = limit, ["with_payload"] = true };
        if (filter is not null) body["filter"] = filter.ToJson();
        return body;
    }

    /// <summary><c>QueryRequest</c>: dense and sparse prefetches fused server-side with reciprocal-rank fusion.</summary>
    public static JsonObject HybridQuery(ReadOnlySpan<float> dense, SparseVector sparse, int limit, QdrantFilter? filter = null, int? prefetchLimit = null)
    {
        int candidates = prefetchLimit ?? Math.Max(limit * 5, 50);
        JsonObject Prefetch(JsonNode query, string vectorName)
        {
            var p = new JsonObject { ["query"] = query, ["using"] = vectorName, ["limit"] = candidates };
            if (filter is not null) p["filter"] = filter.ToJson();
            return p;
        }
        return new JsonObject
        {
            ["prefetch"] = new JsonArray(Prefetch(FloatArray(dense), DenseVector), Prefetch(Sparse(sparse), SparseVectorName)),
            ["query"] = new JsonObject { ["fusion"] = "rrf" },
            ["limit"] = limit,
            ["with_payload"] = true,
        };
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
