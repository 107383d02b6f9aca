using Glm.Engine.Tokenization;

namespace Glm.Engine.Training.Data;

/// <summary>
/// Turns plain token samples (each starting with [CLS]) into GLM autoregressive blank-infilling batches, following
/// THUDM/GLM <c>ConstructBlockStrategy</c> (glm-formats §1.6): one mode per batch (span [MASK], sentence [sMASK],
/// document [gMASK]), Part A with one mask token per blank, Part B <c>sop+span</c> → <c>span+eop</c>, 2-row positions.
/// Deterministic for a given seed; <see cref="SaveState"/>/<see cref="RestoreState"/> give exact resume.
/// Not implemented from the reference: short_seq_prob splitting, block_mask_prob, sentinel tokens, encoder-decoder.
/// Where the reference drops a sample whose spans do not all fit, this keeps the spans that fit.
/// </summary>
public sealed class BlankInfillingCollator
{
    private static readonly char[] SentenceEndChars = ['.', '?', '!', ';', ':', '。', '？', '！', '；', '…', '\n'];

    private readonly GlmSpecialTokens _tokens;
    private readonly BlankInfillingOptions _options;
    private readonly IReadOnlySet<int> _sentenceEnds;
    private readonly double[] _cumulativeSpanWeights;
    private GlmRandom _rng;

    /// <summary>Creates a collator.</summary>
    /// <param name="specialTokens">Control-token ids of the tokenizer in use.</param>
    /// <param name="options">Mode probabilities and ratios; null = GLM Chinese defaults.</param>
    /// <param name="seed">RNG seed.</param>
    /// <param name="sentenceEndTokenIds">Ids of tokens that end a sentence (see <see cref="FindSentenceEndTokenIds"/>);
    /// required when sentence mode can be chosen.</param>
    public BlankInfillingCollator(GlmSpecialTokens specialTokens, BlankInfillingOptions? options = null, ulong seed = 0,
        IReadOnlySet<int>? sentenceEndTokenIds = null)
    {
        _tokens = specialTokens ?? throw new ArgumentNullException(nameof(specialTokens));
        _options = options ?? new BlankInfillingOptions();
        _options.Validate();
        if (_options.SentenceProbability > 0 && sentenceEndTokenIds is null)
            throw new GlmException("BlankInfillingCollator: SentenceProbability > 0 but no sentence-end token ids were given; pass FindSentenceEndTokenIds(tokenizer) or set SentenceProbability = 0.");
        _sentenceEnds = sentenceEndTokenIds ?? new HashSet<int>();
        _rng = new GlmRandom(seed);
        // Poisson pmf for k = 1..MaxSpanLength-1, unnormalised like rng.choices(weights=...).
        _cumulativeSpanWeights = new double[_options.MaxSpanLength - 1];
        double sum = 0;
        for (int k = 1; k < _options.MaxSpanLength; k++)
        {
            sum += PoissonPmf(k, _options.AverageSpanLength);
            _cumulativeSpanWeights[k - 1] = sum;
        }
    }

    /// <summary>Mean span length of the truncated Poisson distribution actually sampled (k = 1..MaxSpanLength-1).</summary>
    public double ExpectedSpanLength
    {
        get
        {
            double num = 0, den = 0;
            for (int k = 1; k < _options.MaxSpanLength; k++) { double p = PoissonPmf(k, _options.AverageSpanLength); num += k * p; den += p; }
            return num / den;
        }
    }

    /// <summary>RNG state to store in a checkpoint.</summary>
    public string SaveState() => _rng.SaveState();

    /// <summary>Restores the RNG from <see cref="SaveState"/> output; the next batches equal those of the saved run.</summary>
    public void RestoreState(string state) => _rng = GlmRandom.FromState(state);

    /// <summary>Ids whose decoded text contains a sentence end (. ? ! ; : 。 ？ ！ ； … newline), scanning the whole vocabulary.</summary>
    public static HashSet<int> FindSentenceEndTokenIds(IGlmTokenizer tokenizer)
    {
        var ids = new HashSet<int>();
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            if (tokenizer.IsSpecial(id)) continue;
            if (tokenizer.Decode([id]).IndexOfAny(SentenceEndChars) >= 0) ids.Add(id);
        }
        return ids;
    }

    /// <summary>Builds one batch, choosing the mode with the configured probabilities.</summary>
    /// <exception cref="GlmException">A sample is empty, too short, or does not start with [CLS].</exception>
    public BlankInfillingBatch Collate(IReadOnlyList<int[]> samples)
    {
        double r = _rng.NextDouble();
        var mode = r < _options.SpanProbability ? BlankInfillingMode.Span
            : r < _options.SpanProbability + _options.SentenceProbability ? BlankInfillingMode.Sentence
            : BlankInfillingMode.Document;
        return Collate(samples, mode);
    }

    /// <summary>Builds one batch in a given mode.</summary>
    public BlankInfillingBatch Collate(IReadOnlyList<int[]> samples, BlankInfillingMode mode)
    {
        if (samples.Count == 0) throw new GlmException("BlankInfillingCollator: the batch has no samples.");
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            if (s is null || s.Length < 3)
                throw new GlmException($"Sample {i} has {s?.Length ?? 0} tokens; expected at least 3 ([CLS] and two text tokens).");
            if (s[0] != _tokens.Cls)
                throw new GlmException($"Sample {i} starts with id {s[0]}; expected [CLS] (id {_tokens.Cls}).");
        }
        var built = mode switch
        {
            BlankInfillingMode.Span => samples.Select(BuildSpanSample).ToList(),
            BlankInfillingMode.Sentence => samples.Select(BuildSentenceSample).ToList(),
            _ => BuildDocumentSamples(samples),
        };
        return BlankInfillingBatch.FromSamples(built, mode);
    }

    private BlankInfillingSample BuildSpanSample(int[] tokens)
    {
        var lengths = DrawSpanLengths(tokens.Length);
        var spans = SampleSpansInDocuments(tokens, lengths);
        return MakeBlockData(tokens, ShuffledIfEnabled(spans), _tokens.Mask);
    }

    /// <summary>Span lengths from the truncated Poisson until their sum reaches int(ratio · length).</summary>
    internal List<int> DrawSpanLengths(int sampleLength)
    {
        var lengths = new List<int>();
        int budget = (int)(_options.SpanMaskRatio * sampleLength), total = 0;
        while (total < budget)
        {
            int k = _rng.NextWeighted(_cumulativeSpanWeights) + 1;
            lengths.Add(k);
            total += k;
        }
        return lengths;
    }

    /// <summary>
    /// Places shuffled span lengths into the documents of a sample (split at eos; a [CLS] after a boundary and the
    /// sample's final token are never masked). Smaller documents take spans up to int(ratio · length); the largest
    /// takes all the rest that fit. Returned spans are [start, end) and never overlap or touch.
    /// </summary>
    internal List<(int Start, int End)> SampleSpansInDocuments(int[] tokens, List<int> lengths)
    {
        _rng.Shuffle(lengths);
        var documents = new List<(int Offset, int Length)>();
        int lastIndex = tokens.Length;
        var boundaries = new List<int> { -1 };
        for (int i = 0; i < tokens.Length; i++) if (tokens[i] == _tokens.Eos) boundaries.Add(i);
        for (int b = boundaries.Count - 1; b >= 0; b--)
        {
            int start = boundaries[b];
            if (start + 1 < tokens.Length && tokens[start + 1] == _tokens.Cls) start++;
            int length = lastIndex - start - 1;
            if (lastIndex == tokens.Length && length > 0) length--;
            documents.Add((start + 1, Math.Max(0, length)));
            lastIndex = boundaries[b];
        }
        documents = documents.OrderBy(d => d.Length).ToList(); // stable, like Python's sort
        var spans = new List<(int, int)>();
        int next = 0;
        for (int d = 0; d < documents.Count; d++)
        {
            var (offset, length) = documents[d];
            bool largest = d == documents.Count - 1;
            int budget = largest ? length : (int)(length * _options.SpanMaskRatio);
            int masked = 0, count = 0;
            while (next + count < lengths.Count)
            {
                int k = lengths[next + count];
                bool fits = k + masked + count <= length && (largest || k + masked <= budget);
                if (!fits) break;
                masked += k;
                count++;
            }
            if (count > 0) spans.AddRange(PlaceSpans(lengths.GetRange(next, count), length, offset, _rng));
            next += count;
        }
        return spans;
    }

    /// <summary>Uniform placement of spans in [offset, offset+totalLength) with ≥ 1 unmasked token between spans.</summary>
    internal static List<(int Start, int End)> PlaceSpans(IReadOnlyList<int> lengths, int totalLength, int offset, GlmRandom rng)
    {
        int free = totalLength - lengths.Sum() - lengths.Count + 1;
        if (free < 0) throw new ArgumentException($"spans of total length {lengths.Sum()} do not fit in {totalLength} tokens");
        var places = new int[lengths.Count];
        for (int i = 0; i < places.Length; i++) places[i] = rng.NextInt(free + 1);
        Array.Sort(places);
        var spans = new List<(int, int)>(lengths.Count);
        for (int i = 0; i < places.Length; i++)
        {
            int start = offset + places[i];
            spans.Add((start, start + lengths[i]));
            offset += lengths[i] + 1;
        }
        return spans;
    }

    private BlankInfillingSample BuildSentenceSample(int[] tokens)
    {
        var sentences = new List<(int, int)>();
        int last = 1; // tokens[0] is [CLS]
        for (int i = 0; i < tokens.Length; i++)
        {
            if (_sentenceEnds.Contains(tokens[i]))
            {
                if (last < i + 1) sentences.Add((last, i + 1));
                last = i + 1;
            }
            else if (tokens[i] == _tokens.Eos) last = i + 1;
        }
        if (last < tokens.Length) sentences.Add((last, tokens.Length));
        _rng.Shuffle(sentences);
        var chosen = new List<(int, int)>();
        int masked = 0, budget = (int)(_options.SentenceMaskRatio * tokens.Length);
        foreach (var (start, end) in sentences)
        {
            chosen.Add((start, end));
            masked += end - start;
            if (masked >= budget) break;
        }
        return MakeBlockData(tokens, ShuffledIfEnabled(chosen), _tokens.SentenceMask);
    }

    private List<BlankInfillingSample> BuildDocumentSamples(IReadOnlyList<int[]> samples)
    {
        int minLen = samples.Min(s => s.Length), maxLen = samples.Max(s => s.Length);
        int low = (int)(_options.GenerationMinRatio * minLen);
        int maxGen = _rng.NextIntInclusive(Math.Min(low, maxLen - 2), maxLen - 2);
        var result = new List<BlankInfillingSample>(samples.Count);
        foreach (var tokens in samples)
        {
            int gen = Math.Max(1, Math.Min(maxGen, tokens.Length - 2));
            int firstEos = Array.IndexOf(tokens, _tokens.Eos);
            bool multipleDocuments = firstEos != -1 && firstEos != tokens.Length - 1;
            if (multipleDocuments || _rng.NextDouble() < _options.GenerationInfillProbability)
                result.Add(MakePrefixSuffixData(tokens, gen));
            else
            {
                var spans = SampleSpansInDocuments(tokens, [gen]);
                result.Add(MakeBlockData(tokens, spans, _tokens.GenerationMask));
            }
        }
        return result;
    }

    /// <summary>Prefix-LM layout: source ++ [gMASK, sop] ++ target[..^1] → source ++ [gMASK] ++ target.</summary>
    internal BlankInfillingSample MakePrefixSuffixData(int[] tokens, int generationLength)
    {
        int division = tokens.Length - generationLength;
        int n = tokens.Length + 1;
        var input = new int[n]; var target = new int[n]; var pos = new int[n]; var block = new int[n]; var loss = new float[n];
        for (int i = 0; i < division; i++) { input[i] = target[i] = tokens[i]; pos[i] = i; }
        input[division] = _tokens.GenerationMask; target[division] = _tokens.GenerationMask; pos[division] = division;
        input[division + 1] = _tokens.Sop;
        for (int j = 0; j < generationLength; j++)
        {
            if (j < generationLength - 1) input[division + 2 + j] = tokens[division + j];
            target[division + 1 + j] = tokens[division + j];
        }
        for (int i = division + 1; i < n; i++) { pos[i] = division; block[i] = i - division; loss[i] = 1f; }
        return new BlankInfillingSample { InputIds = input, TargetIds = target, PositionIds = pos, BlockPositionIds = block, LossMask = loss, Sep = division + 1 };
    }

    private List<(int Start, int End)> ShuffledIfEnabled(List<(int Start, int End)> spans)
    {
        if (_options.ShuffleSpans) _rng.Shuffle(spans);
        else spans.Sort();
        return spans;
    }

    /// <summary>
    /// Part A / Part B construction from explicit spans. <paramref name="spansInPartBOrder"/> are [start, end) token
    /// ranges of <paramref name="tokens"/>, listed in the order their Part-B segments appear.
    /// </summary>
    internal BlankInfillingSample MakeBlockData(int[] tokens, IReadOnlyList<(int Start, int End)> spansInPartBOrder, int maskId)
    {
        var sorted = spansInPartBOrder.OrderBy(s => s.Start).ToList();
        for (int i = 0; i < sorted.Count; i++)
        {
            var (s, e) = sorted[i];
            if (s < 0 || e > tokens.Length || e <= s || (i > 0 && s < sorted[i - 1].End))
                throw new ArgumentException($"span [{s}, {e}) is empty, out of range or overlaps another", nameof(spansInPartBOrder));
        }
        // Text positions: every span collapses onto its first token's position.
        var textPos = new int[tokens.Length];
        var step = new int[tokens.Length];
        Array.Fill(step, 1);
        foreach (var (s, e) in sorted) for (int i = s + 1; i < e; i++) step[i] = 0;
        for (int i = 0, acc = 0; i < tokens.Length; i++) { acc += step[i]; textPos[i] = acc - 1; }

        var input = new List<int>(); var target = new List<int>(); var pos = new List<int>(); var block = new List<int>();
        int last = 0;
        foreach (var (s, e) in sorted)
        {
            for (int i = last; i < s; i++) { input.Add(tokens[i]); pos.Add(textPos[i]); }
            input.Add(maskId); pos.Add(textPos[s]);
            last = e;
        }
        for (int i = last; i < tokens.Length; i++) { input.Add(tokens[i]); pos.Add(textPos[i]); }
        int sep = input.Count;
        target.AddRange(input);
        block.AddRange(new int[sep]);
        foreach (var (s, e) in spansInPartBOrder)
        {
            input.Add(_tokens.Sop);
            for (int i = s; i < e; i++) { input.Add(tokens[i]); target.Add(tokens[i]); }
            target.Add(_tokens.Eop);
            for (int k = 0; k <= e - s; k++) { pos.Add(textPos[s]); block.Add(k + 1); }
        }
        var loss = new float[input.Count];
        for (int i = sep; i < loss.Length; i++) loss[i] = 1f;
        return new BlankInfillingSample
        {
            InputIds = input.ToArray(), TargetIds = target.ToArray(), PositionIds = pos.ToArray(),
            BlockPositionIds = block.ToArray(), LossMask = loss, Sep = sep,
        };
    }

    private static double PoissonPmf(int k, double lambda)
    {
        double logP = k * Math.Log(lambda) - lambda;
        for (int i = 2; i <= k; i++) logP -= Math.Log(i);
        return Math.Exp(logP);
    }
}
