using System.Text;

namespace Glm.Engine.Tokenization.Tiktoken;

/// <summary>
/// tiktoken's byte-level BPE (<c>byte_pair_merge</c>): a piece that is itself a rank key is one token; otherwise start
/// from single bytes and repeatedly merge the adjacent pair whose concatenation has the lowest rank (leftmost on ties).
/// A heap with lazy invalidation replaces tiktoken's linear rescans, giving the same merges in O(n log n): a long
/// run of letters (Chinese without punctuation is one regex piece) would otherwise cost O(n²).
/// </summary>
internal static class TiktokenBpe
{
    /// <summary>Appends the ids of one pre-tokenized piece to <paramref name="ids"/>.</summary>
    public static void EncodePiece(TiktokenRanks ranks, string piece, List<int> ids)
    {
        string bytes = Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(piece));
        if (ranks.RankOf(bytes) is int whole)
        {
            ids.Add(whole);
            return;
        }
        int n = bytes.Length;
        // Tokens are identified by their start offset; next[s] is the end (exclusive) of the token starting at s.
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            next[i] = i + 1;
            prev[i] = i - 1;
            alive[i] = true;
        }
        var heap = new PriorityQueue<(int Left, int Right, int RightEnd), (int Rank, int Left)>();
        void Offer(int left, int right, int rightEnd)
        {
            if (ranks.RankOf(bytes[left..rightEnd]) is int rank) heap.Enqueue((left, right, rightEnd), (rank, left));
        }
        for (int i = 0; i + 1 < n; i++) Offer(i, i + 1, i + 2);

        while (heap.TryDequeue(out var pair, out _))
        {
            var (left, right, rightEnd) = pair;
            // Stale: one side was merged away or grew since this pair was queued.
            if (!alive[left] || !alive[right] || next[left] != right || next[right] != rightEnd) continue;
            next[left] = rightEnd;
            alive[right] = false;
            if (rightEnd < n) prev[rightEnd] = left;
            if (prev[left] >= 0) Offer(prev[left], left, rightEnd);
            if (rightEnd < n) Offer(left, rightEnd, next[rightEnd]);
        }

        for (int start = 0; start < n; start = next[start])
        {
            string token = bytes[start..next[start]];
            ids.Add(ranks.RankOf(token) ?? throw new GlmException(
                $"The tiktoken rank table has no entry for byte 0x{(int)token[0]:X2} (expected all 256 single bytes)."));
        }
    }
}
