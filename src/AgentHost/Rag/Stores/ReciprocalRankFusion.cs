namespace AgentHost.Rag.Stores;

/// <summary>Reciprocal-rank fusion: score(d) = Σ over lists of 1 / (k + rank), rank starting at 1.</summary>
public static class ReciprocalRankFusion
{
    /// <summary>The usual constant from Cormack et al. (2009).</summary>
    public const int DefaultK = 60;

    /// <summary>Fuses ranked lists of hits (keyed by chunk id); ties keep the order of first appearance.</summary>
    public static IReadOnlyList<SearchHit> Fuse(IEnumerable<IReadOnlyList<SearchHit>> rankedLists, int top, int k = DefaultK)
    {
        var scores = new Dictionary<long, (SearchHit Hit, double Score, int FirstSeen)>();
        int seen = 0;
        foreach (var list in rankedLists)
            for (int rank = 0; rank < list.Count; rank++)
            {
                var hit = list[rank];
                double add = 1.0 / (k + rank + 1);
                scores[hit.ChunkId] = scores.TryGetValue(hit.ChunkId, out var cur)
                    ? (cur.Hit, cur.Score + add, cur.FirstSeen)
                    : (hit, add, seen++);
            }
        return scores.Values
            .OrderByDescending(v => v.Score).ThenBy(v => v.FirstSeen)
            .Take(top)
            .Select(v => v.Hit with { Score = v.Score })
            .ToList();
    }
}
