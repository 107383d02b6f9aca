using System.Runtime.InteropServices;

namespace Glm.Engine.Tokenization.Training;

/// <summary>
/// Byte-level BPE merge learning over count-weighted words. Pair counts are updated incrementally at each merge
/// (only the words holding the merged pair are touched) and the best pair comes from a lazy max-heap, so the cost
/// per merge is proportional to the occurrences it rewrites rather than to the corpus.
/// Merges never cross a UTF-8 character boundary halfway: a new token is either part of one character or a run of
/// whole characters, so Chinese characters become tokens first and no token mixes a character tail with the next head.
/// </summary>
internal sealed class BpeMergeLearner
{
    private readonly int[][] _words;
    private readonly int[] _lengths;
    private readonly long[] _counts;
    private readonly int[] _seenStamp;
    private readonly Dictionary<long, long> _pairCounts = new(PairKeyComparer.Instance);
    private readonly Dictionary<long, List<int>> _pairWords = new(PairKeyComparer.Instance);
    private readonly PriorityQueue<long, (long Count, long Key)> _heap = new(Comparer<(long Count, long Key)>.Create(
        (x, y) => x.Count != y.Count ? y.Count.CompareTo(x.Count) : x.Key.CompareTo(y.Key)));
    private readonly HashSet<long> _changed = new(PairKeyComparer.Instance);
    private readonly List<byte[]> _tokens = new();
    private readonly List<sbyte> _room = new(); // ≥ 0: whole characters (0) / a character head missing that many bytes; -1: continuation bytes only

    private readonly Dictionary<string, int> _tokenIds = new(StringComparer.Ordinal);
    private int _stamp;

    /// <summary>Token byte strings by rank: 0..255 single bytes, then merge products in merge order.</summary>
    public IReadOnlyList<byte[]> Tokens => _tokens;

    public BpeMergeLearner(IReadOnlyList<(byte[] Bytes, long Count)> words)
    {
        for (int b = 0; b < 256; b++) AddToken([(byte)b]);
        _words = new int[words.Count][];
        _lengths = new int[words.Count];
        _counts = new long[words.Count];
        _seenStamp = new int[words.Count];
        for (int w = 0; w < words.Count; w++)
        {
            var bytes = words[w].Bytes;
            var symbols = new int[bytes.Length];
            for (int i = 0; i < bytes.Length; i++) symbols[i] = bytes[i];
            _words[w] = symbols;
            _lengths[w] = symbols.Length;
            _counts[w] = words[w].Count;
            for (int i = 0; i + 1 < symbols.Length; i++)
            {
                if (!CanMerge(symbols[i], symbols[i + 1])) continue;
                long key = Key(symbols[i], symbols[i + 1]);
                Add(key, words[w].Count);
                AddWord(key, w);
            }
        }
        foreach (var (key, count) in _pairCounts) _heap.Enqueue(key, (count, key));
    }

    /// <summary>Merges until <paramref name="targetTokens"/> ranks exist or the best pair is rarer than <paramref name="minFrequency"/>.</summary>
    public void Learn(int targetTokens, int minFrequency, Action<int, long>? onProgress = null)
    {
        int merges = 0;
        while (_tokens.Count < targetTokens && _heap.TryDequeue(out long key, out var priority))
        {
            if (!_pairCounts.TryGetValue(key, out long current) || current != priority.Count) continue; // stale entry
            if (current < minFrequency) break;
            int a = (int)(key >> 32), b = (int)(key & 0xFFFFFFFF);
            byte[] merged = [.. _tokens[a], .. _tokens[b]];
            int c = _tokenIds.TryGetValue(Latin1(merged), out int existing) ? existing : AddToken(merged);
            var holders = _pairWords[key];
            _pairWords.Remove(key);
            _stamp++;
            _changed.Clear();
            foreach (int w in holders)
            {
                if (_seenStamp[w] == _stamp) continue;
                _seenStamp[w] = _stamp;
                MergeInWord(w, a, b, c);
            }
            _pairCounts.Remove(key);
            foreach (long changed in _changed)
                if (changed != key && _pairCounts.TryGetValue(changed, out long n) && n > 0) _heap.Enqueue(changed, (n, changed));
            merges++;
            if (merges % 1000 == 0) onProgress?.Invoke(merges, current);
        }
    }

    private void MergeInWord(int w, int a, int b, int c)
    {
        int[] s = _words[w];
        int n = _lengths[w], read = 0, write = 0;
        long count = _counts[w];
        while (read < n)
        {
            if (read + 1 < n && s[read] == a && s[read + 1] == b)
            {
                if (write > 0)
                {
                    int prev = s[write - 1]; // already rewritten, so a preceding merge product is seen as c
                    if (CanMerge(prev, a)) Add(Key(prev, a), -count);
                    long k = Key(prev, c);
                    if (CanMerge(prev, c)) { Add(k, count); AddWord(k, w); }
                }
                if (read + 2 < n)
                {
                    int next = s[read + 2];
                    if (CanMerge(b, next)) Add(Key(b, next), -count);
                    long k = Key(c, next);
                    if (CanMerge(c, next)) { Add(k, count); AddWord(k, w); }
                }
                s[write++] = c;
                read += 2;
            }
            else s[write++] = s[read++];
        }
        _lengths[w] = write;
    }

    private void Add(long key, long delta)
    {
        ref long slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_pairCounts, key, out _);
        slot += delta;
        _changed.Add(key);
    }

    private void AddWord(long key, int w)
    {
        ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(_pairWords, key, out _);
        list ??= new List<int>();
        if (list.Count == 0 || list[^1] != w) list.Add(w);
    }

    /// <summary>True when a+b is a run of whole characters or stays inside one character.</summary>
    private bool CanMerge(int a, int b)
    {
        int ra = _room[a], rb = _room[b];
        if (ra == 0 && rb == 0) return true;
        return ra > 0 && rb == -1 && _tokens[b].Length <= ra;
    }

    private static sbyte Room(byte[] bytes)
    {
        int i = 0;
        if (bytes[0] is >= 0x80 and < 0xC0) return -1; // starts inside a character; single continuation bytes only merge into heads
        while (i < bytes.Length)
        {
            byte lead = bytes[i];
            int need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (i + need > bytes.Length) return (sbyte)(i + need - bytes.Length);
            i += need;
        }
        return 0;
    }

    private int AddToken(byte[] bytes)
    {
        _tokens.Add(bytes);
        _room.Add(Room(bytes));
        _tokenIds[Latin1(bytes)] = _tokens.Count - 1;
        return _tokens.Count - 1;
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    private static string Latin1(byte[] bytes) => System.Text.Encoding.Latin1.GetString(bytes);
}
