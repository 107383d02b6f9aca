namespace Glm.Engine.Generation;

/// <summary>
/// n-gram blocking as in HF's <c>no_repeat_ngram_size</c>: a token may not complete an n-gram that already occurs in the
/// generated tokens. Small models decoding greedily fall into loops ("御御御…", "仅仅仅"); blocking repeats of the last n−1
/// tokens' continuation breaks them while leaving every first occurrence (and copying from the source, which is not in the
/// generated tokens) free.
/// </summary>
public static class NoRepeatNgram
{
    /// <summary>
    /// Tokens that would complete an <paramref name="n"/>-gram already present in <paramref name="generated"/>: every token
    /// that followed an earlier occurrence of the last n−1 generated tokens (n = 1: every generated token). Empty when
    /// <paramref name="n"/> is 0 (off) or fewer than n−1 tokens exist.
    /// </summary>
    public static HashSet<int> Banned(IReadOnlyList<int> generated, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var banned = new HashSet<int>();
        if (n == 0 || generated.Count < n - 1) return banned;
        int prefix = n - 1, last = generated.Count - prefix; // the current (n−1)-token suffix starts at last
        for (int start = 0; start + prefix < generated.Count; start++) // an earlier n-gram: [start, start + prefix]
        {
            bool same = true;
            for (int j = 0; j < prefix && same; j++) same = generated[start + j] == generated[last + j];
            if (same) banned.Add(generated[start + prefix]);
        }
        return banned;
    }

    /// <summary>Sets the logits of <paramref name="banned"/> ids to −∞ (ids outside the vocabulary are ignored).</summary>
    public static void Apply(Span<float> logits, IEnumerable<int> banned)
    {
        foreach (int id in banned)
            if ((uint)id < (uint)logits.Length) logits[id] = float.NegativeInfinity;
    }
}
