namespace Glm.Engine.Training.Data;

/// <summary>
/// Seeded xoshiro256** generator. Unlike <see cref="System.Random"/> its sequence is fixed by this code alone, so the
/// same seed gives the same masks on every runtime, and its state can be saved and restored for exact resume.
/// </summary>
public sealed class GlmRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Creates a generator whose state is derived from <paramref name="seed"/> with SplitMix64.</summary>
    public GlmRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private GlmRandom() { }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="exclusiveMax"/>) without modulo bias.</summary>
    public int NextInt(int exclusiveMax)
    {
        if (exclusiveMax <= 0) throw new ArgumentOutOfRangeException(nameof(exclusiveMax), exclusiveMax, "must be > 0");
        ulong bound = (ulong)exclusiveMax;
        ulong threshold = (0UL - bound) % bound; // rejection zone keeps every value equally likely
        while (true)
        {
            ulong r = NextUInt64();
            if (r >= threshold) return (int)(r % bound);
        }
    }

    /// <summary>Uniform integer in [<paramref name="min"/>, <paramref name="max"/>] (both inclusive, like Python randint).</summary>
    public int NextIntInclusive(int min, int max)
    {
        if (max < min) throw new ArgumentOutOfRangeException(nameof(max), max, $"must be >= min ({min})");
        return min + NextInt(max - min + 1);
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Index drawn with probability proportional to <paramref name="cumulativeWeights"/> increments.</summary>
    public int NextWeighted(IReadOnlyList<double> cumulativeWeights)
    {
        double u = NextDouble() * cumulativeWeights[^1];
        for (int i = 0; i < cumulativeWeights.Count; i++)
            if (u < cumulativeWeights[i]) return i;
        return cumulativeWeights.Count - 1;
    }

    /// <summary>The full generator state as text (four hex words); <see cref="FromState"/> restores it exactly.</summary>
    public string SaveState() => $"{_s0:x16}:{_s1:x16}:{_s2:x16}:{_s3:x16}";

    /// <summary>Restores a generator from <see cref="SaveState"/> output.</summary>
    /// <exception cref="GlmException">The text is not four colon-separated 16-digit hex words.</exception>
    public static GlmRandom FromState(string state)
    {
        var parts = state?.Split(':') ?? [];
        var words = new ulong[4];
        if (parts.Length != 4 || !parts.Select((p, i) => ulong.TryParse(p, System.Globalization.NumberStyles.HexNumber, null, out words[i])).All(ok => ok)
            || words.All(w => w == 0))
            throw new GlmException($"RNG state '{state}' is invalid: expected four colon-separated hex words, not all zero (as written by GlmRandom.SaveState).");
        return new GlmRandom { _s0 = words[0], _s1 = words[1], _s2 = words[2], _s3 = words[3] };
    }
}
