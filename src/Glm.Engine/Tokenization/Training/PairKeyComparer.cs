namespace Glm.Engine.Tokenization.Training;

/// <summary>
/// Hashing for (id, id) pairs packed into a long. The default <see cref="long.GetHashCode"/> XORs the two halves,
/// which maps all pairs of a 16k vocabulary onto ~16k buckets; a multiplicative mix spreads them.
/// </summary>
internal sealed class PairKeyComparer : IEqualityComparer<long>
{
    public static PairKeyComparer Instance { get; } = new();

    public bool Equals(long x, long y) => x == y;

    public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
}
