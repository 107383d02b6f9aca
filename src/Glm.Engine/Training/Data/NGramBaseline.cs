namespace Glm.Engine.Training.Data;

/// <summary>
/// Count-based token language models over tokenizer ids, as baselines for the neural model:
/// an additive-smoothed unigram and an interpolated Kneser–Ney bigram (absolute discount D; the continuation
/// distribution is itself discounted and interpolated with uniform, so every id has non-zero probability).
/// Negative log-likelihoods are in bits, so bits/character = NLL / characters of the scored text.
/// Each sequence's first token is predicted from a start context.
/// </summary>
public sealed class NGramBaseline
{
    private readonly long[] _unigram;
    private readonly long _tokenCount;
    private readonly long[] _contextCount;      // c(v •), index VocabSize = start context
    private readonly int[] _distinctFollowers;  // N1+(v •)
    private readonly int[] _distinctPredecessors; // N1+(• w)
    private readonly long _distinctBigrams;     // N1+(• •)
    private readonly int _typesWithPredecessor;
    private readonly Dictionary<int, (int[] Words, long[] Counts)> _followers;
    private readonly Dictionary<long, long> _bigram;
    private readonly double[] _continuation;

    /// <summary>Id range 0..VocabSize−1.</summary>
    public int VocabSize { get; }
    /// <summary>Kneser–Ney absolute discount.</summary>
    public double Discount { get; }
    /// <summary>Additive smoothing constant of the unigram model.</summary>
    public double UnigramAlpha { get; }

    private NGramBaseline(int vocabSize, double discount, double alpha, long[] unigram, Dictionary<long, long> bigram)
    {
        VocabSize = vocabSize; Discount = discount; UnigramAlpha = alpha;
        _unigram = unigram; _bigram = bigram;
        _tokenCount = unigram.Sum();
        _contextCount = new long[vocabSize + 1];
        _distinctFollowers = new int[vocabSize + 1];
        _distinctPredecessors = new int[vocabSize];
        var lists = new Dictionary<int, List<(int, long)>>();
        foreach (var (key, count) in bigram)
        {
            int v = (int)(key >> 32), w = (int)(key & 0xFFFFFFFF);
            _contextCount[v] += count;
            _distinctFollowers[v]++;
            _distinctPredecessors[w]++;
            (lists.TryGetValue(v, out var l) ? l : lists[v] = new()).Add((w, count));
        }
        _distinctBigrams = bigram.Count;
        _typesWithPredecessor = _distinctPredecessors.Count(n => n > 0);
        _followers = lists.ToDictionary(kv => kv.Key, kv => (kv.Value.Select(x => x.Item1).ToArray(), kv.Value.Select(x => x.Item2).ToArray()));
        _continuation = new double[vocabSize];
        for (int w = 0; w < vocabSize; w++) _continuation[w] = ContinuationProbability(w);
    }

    /// <summary>Counts unigrams and bigrams of <paramref name="sequences"/> (each a document or sample of ids).</summary>
    /// <exception cref="GlmException">An id is outside [0, vocabSize), or a parameter is out of range.</exception>
    public static NGramBaseline Train(IEnumerable<IReadOnlyList<int>> sequences, int vocabSize, double discount = 0.75, double unigramAlpha = 1.0)
    {
        if (vocabSize < 1) throw new GlmException($"NGramBaseline vocabSize = {vocabSize} is invalid: expected ≥ 1.");
        if (discount is <= 0 or >= 1) throw new GlmException($"NGramBaseline discount = {discount} is invalid: expected a value in (0, 1).");
        if (unigramAlpha <= 0) throw new GlmException($"NGramBaseline unigramAlpha = {unigramAlpha} is invalid: expected > 0.");
        var unigram = new long[vocabSize];
        var bigram = new Dictionary<long, long>(Glm.Engine.Tokenization.Training.PairKeyComparer.Instance);
        int seq = 0;
        foreach (var ids in sequences)
        {
            int previous = vocabSize; // start context
            for (int i = 0; i < ids.Count; i++)
            {
                int w = ids[i];
                if ((uint)w >= (uint)vocabSize) throw new GlmException($"NGramBaseline: sequence {seq} position {i} has id {w}; expected an id in [0, {vocabSize}).");
                unigram[w]++;
                long key = ((long)previous << 32) | (uint)w;
                bigram[key] = bigram.GetValueOrDefault(key) + 1;
                previous = w;
            }
            seq++;
        }
        return new NGramBaseline(vocabSize, discount, unigramAlpha, unigram, bigram);
    }

    /// <summary>(c(w) + α) / (N + α·V).</summary>
    public double UnigramProbability(int id) => (_unigram[id] + UnigramAlpha) / (_tokenCount + UnigramAlpha * VocabSize);

    /// <summary>Lower-order KN distribution: max(N1+(•w) − D, 0)/N1+(••) + D·|{w: N1+(•w) &gt; 0}|/N1+(••) · 1/V.</summary>
    public double ContinuationProbability(int id)
    {
        if (_distinctBigrams == 0) return 1.0 / VocabSize;
        return (Math.Max(_distinctPredecessors[id] - Discount, 0) + Discount * _typesWithPredecessor / VocabSize) / _distinctBigrams;
    }

    /// <summary>
    /// P(w | v) = max(c(v,w) − D, 0)/c(v) + D·N1+(v•)/c(v) · P_cont(w); P_cont(w) for an unseen context.
    /// <paramref name="previous"/> = −1 means the start of a sequence.
    /// </summary>
    public double BigramProbability(int previous, int id)
    {
        int v = previous < 0 ? VocabSize : previous;
        long cv = _contextCount[v];
        if (cv == 0) return _continuation[id];
        long cvw = _bigram.GetValueOrDefault(((long)v << 32) | (uint)id);
        return (Math.Max(cvw - Discount, 0) + Discount * _distinctFollowers[v] * _continuation[id]) / cv;
    }

    /// <summary>−Σ log2 P(w) under the unigram model.</summary>
    public double UnigramNllBits(IReadOnlyList<int> ids)
    {
        double bits = 0;
        foreach (int w in ids) bits -= Math.Log2(UnigramProbability(Check(w)));
        return bits;
    }

    /// <summary>−Σ log2 P(wᵢ | wᵢ₋₁) under the bigram model, the first token conditioned on the start context.</summary>
    public double BigramNllBits(IReadOnlyList<int> ids)
    {
        double bits = 0;
        int previous = -1;
        foreach (int w in ids) { bits -= Math.Log2(BigramProbability(previous, Check(w))); previous = w; }
        return bits;
    }

    /// <summary>
    /// Best <paramref name="length"/>-token filler between <paramref name="left"/> and <paramref name="right"/>, maximising
    /// P(span | last left token) · P(first right token | span) by beam search (every id scored at each step).
    /// </summary>
    public int[] PredictSpan(IReadOnlyList<int> left, IReadOnlyList<int> right, int length, int beamWidth = 8)
        => Search(left, right, length, beamWidth).Span;

    /// <summary>Best filler of 1..<paramref name="maxLength"/> tokens by the same score (raw probabilities, so shorter spans are favoured).</summary>
    public int[] PredictSpanAnyLength(IReadOnlyList<int> left, IReadOnlyList<int> right, int maxLength = 3, int beamWidth = 8)
    {
        var best = Search(left, right, 1, beamWidth);
        for (int k = 2; k <= maxLength; k++)
        {
            var candidate = Search(left, right, k, beamWidth);
            if (candidate.LogProb > best.LogProb) best = candidate;
        }
        return best.Span;
    }

    private (int[] Span, double LogProb) Search(IReadOnlyList<int> left, IReadOnlyList<int> right, int length, int beamWidth)
    {
        if (length < 1) throw new GlmException($"Span length {length} is invalid: expected ≥ 1.");
        if (beamWidth < 1) throw new GlmException($"Beam width {beamWidth} is invalid: expected ≥ 1.");
        int start = left.Count > 0 ? Check(left[^1]) : -1;
        int? next = right.Count > 0 ? Check(right[0]) : null;
        var beam = new List<(int[] Span, double LogProb)> { ([], 0) };
        var scores = new double[VocabSize];
        for (int step = 0; step < length; step++)
        {
            bool last = step == length - 1;
            var candidates = new PriorityQueue<(int[] Span, double LogProb), double>();
            foreach (var (span, logProb) in beam)
            {
                int v = span.Length == 0 ? start : span[^1];
                for (int w = 0; w < VocabSize; w++)
                {
                    double s = logProb + Math.Log(BigramProbability(v, w));
                    if (last && next is int r) s += Math.Log(BigramProbability(w, r));
                    scores[w] = s;
                }
                // Keep the beam's best extensions: a bounded min-heap over all candidates.
                for (int w = 0; w < VocabSize; w++)
                {
                    if (candidates.Count < beamWidth) candidates.Enqueue(([.. span, w], scores[w]), scores[w]);
                    else if (candidates.TryPeek(out _, out double worst) && scores[w] > worst)
                        candidates.DequeueEnqueue(([.. span, w], scores[w]), scores[w]);
                }
            }
            beam = new List<(int[], double)>();
            while (candidates.TryDequeue(out var c, out _)) beam.Add(c);
        }
        // Highest score, ties to the lexicographically smaller span for determinism.
        return beam.OrderByDescending(b => b.LogProb).ThenBy(b => string.Join(",", b.Span)).First();
    }

    private int Check(int id) =>
        (uint)id < (uint)VocabSize ? id : throw new GlmException($"NGramBaseline: id {id} is outside the vocabulary [0, {VocabSize}).");
}
