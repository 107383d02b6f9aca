using System.Numerics.Tensors;

namespace AgentHost.Rag.Stores;

/// <summary>
/// In-memory copy of a knowledge base's embeddings, L2-normalised so cosine = dot product (TensorPrimitives SIMD).
/// Brute force: ~100k × 256-dim chunks scan in milliseconds, which is the scale this store targets.
/// </summary>
internal sealed class VectorIndex
{
    private readonly long[] _ids;
    private readonly string[] _sources;
    private readonly string[] _sections;
    private readonly float[] _vectors;

    public int Dimensions { get; }
    public int Count => _ids.Length;

    public VectorIndex(int dimensions, List<(long Id, string Source, string Section, float[] Vector)> rows)
    {
        Dimensions = dimensions;
        _ids = new long[rows.Count];
        _sources = new string[rows.Count];
        _sections = new string[rows.Count];
        _vectors = new float[(long)rows.Count * dimensions];
        for (int i = 0; i < rows.Count; i++)
        {
            _ids[i] = rows[i].Id;
            _sources[i] = rows[i].Source;
            _sections[i] = rows[i].Section;
            var target = _vectors.AsSpan(i * dimensions, dimensions);
            rows[i].Vector.CopyTo(target);
            Normalize(target);
        }
    }

    /// <summary>Scales a vector to unit length in place (a zero vector stays zero).</summary>
    public static void Normalize(Span<float> v)
    {
        float norm = TensorPrimitives.Norm(v);
        if (norm > 0) TensorPrimitives.Divide(v, norm, v);
    }

    /// <summary>Top-<paramref name="top"/> (chunk id, cosine) pairs, best first; only ids in <paramref name="allowed"/> when given.</summary>
    public List<(long Id, double Score)> Search(ReadOnlySpan<float> query, int top, SearchFilter? filter, IReadOnlySet<long>? allowed = null)
    {
        var q = query.ToArray();
        Normalize(q);
        var heap = new PriorityQueue<long, float>(top + 1);
        var best = new Dictionary<long, float>();
        for (int i = 0; i < _ids.Length; i++)
        {
            if (filter is not null && !filter.Matches(_sources[i], _sections[i])) continue;
            if (allowed is not null && !allowed.Contains(_ids[i])) continue;
            float score = TensorPrimitives.Dot(q, _vectors.AsSpan(i * Dimensions, Dimensions));
            if (heap.Count < top) { heap.Enqueue(_ids[i], score); best[_ids[i]] = score; }
            else if (heap.TryPeek(out _, out float worst) && score > worst)
            {
                best.Remove(heap.Dequeue());
                heap.Enqueue(_ids[i], score);
                best[_ids[i]] = score;
            }
        }
        return best.OrderByDescending(kv => kv.Value).Select(kv => (kv.Key, (double)kv.Value)).ToList();
    }
}
