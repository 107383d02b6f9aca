namespace Glm.Engine.Generation;

/// <summary>
/// Picks the next token from logits: repetition penalty, temperature, top-k, top-p, then a draw from a seeded generator.
/// Runs on a managed copy of one row of logits (≤ 152k floats), which costs far less than a forward pass.
/// </summary>
public sealed class TokenSampler
{
    private readonly GenerationOptions _options;
    private ulong _state;

    /// <summary>Creates a sampler; the seed defaults to a random one.</summary>
    public TokenSampler(GenerationOptions options)
    {
        _options = options;
        _state = options.Seed ?? (ulong)Random.Shared.NextInt64();
        if (_state == 0) _state = 0x9E3779B97F4A7C15UL;
    }

    /// <summary>True when the choice is a plain argmax (no penalty, no sampling), which can run on the device.</summary>
    public bool IsPlainGreedy => _options.Greedy && _options.RepetitionPenalty == 1f;

    /// <summary>Applies the HF repetition penalty in place to the ids in <paramref name="seen"/>.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IEnumerable<int> seen, float penalty)
    {
        if (penalty == 1f) return;
        foreach (int id in seen.Distinct())
        {
            if ((uint)id >= (uint)logits.Length) continue;
            logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
        }
    }

    /// <summary>Chooses a token id from <paramref name="logits"/> (modified in place).</summary>
    public int Sample(float[] logits, IEnumerable<int> seen)
    {
        ApplyRepetitionPenalty(logits, seen, _options.RepetitionPenalty);
        if (_options.Greedy) return ArgMax(logits);

        // Candidates sorted by logit, cut by top-k.
        int n = logits.Length;
        int k = _options.TopK > 0 ? Math.Min(_options.TopK, n) : n;
        var idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        Array.Sort(idx, (a, b) => logits[b].CompareTo(logits[a]));
        float inv = 1f / _options.Temperature;
        double max = logits[idx[0]] * inv;
        var probs = new double[k];
        double sum = 0;
        for (int i = 0; i < k; i++) { probs[i] = Math.Exp(logits[idx[i]] * inv - max); sum += probs[i]; }

        // Top-p: smallest prefix whose mass reaches p (always at least one token).
        int keep = k;
        if (_options.TopP < 1f)
        {
            double acc = 0;
            for (int i = 0; i < k; i++)
            {
                acc += probs[i] / sum;
                if (acc >= _options.TopP) { keep = i + 1; break; }
            }
        }
        double total = 0;
        for (int i = 0; i < keep; i++) total += probs[i];
        double r = NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            r -= probs[i];
            if (r <= 0) return idx[i];
        }
        return idx[keep - 1];
    }

    /// <summary>Index of the largest value (first on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    // xorshift64*: tiny, fast, identical on every runtime.
    private double NextDouble()
    {
        _state ^= _state >> 12; _state ^= _state << 25; _state ^= _state >> 27;
        return ((_state * 2685821657736338717UL) >> 11) * (1.0 / (1UL << 53));
    }
}
