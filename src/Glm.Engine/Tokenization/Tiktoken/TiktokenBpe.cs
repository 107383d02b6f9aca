using System.Text;

namespace Glm.Engine.Tokenization.Tiktoken;

/// <summary>
/// tiktoken's byte-level BPE (<c>byte_pair_merge</c>): a piece that is itself a rank key is one token; otherwise start
/// from single bytes and repeatedly merge the adjacent pair whose concatenation has the lowest rank (leftmost on ties).
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
        // parts[i] = start of the i-th current token; the last entry is the end.
        var parts = new List<int>(bytes.Length + 1);
        for (int i = 0; i <= bytes.Length; i++) parts.Add(i);
        while (parts.Count > 2)
        {
            int bestRank = int.MaxValue, bestIndex = -1;
            for (int i = 0; i + 2 < parts.Count; i++)
            {
                int? rank = ranks.RankOf(bytes[parts[i]..parts[i + 2]]);
                if (rank is int r && r < bestRank)
                {
                    bestRank = r;
                    bestIndex = i;
                }
            }
            if (bestIndex < 0) break;
            parts.RemoveAt(bestIndex + 1);
        }
        for (int i = 0; i + 1 < parts.Count; i++)
        {
            string token = bytes[parts[i]..parts[i + 1]];
            ids.Add(ranks.RankOf(token) ?? throw new GlmException(
                $"The tiktoken rank table has no entry for byte 0x{(int)token[0]:X2} (expected all 256 single bytes)."));
        }
    }
}
