using Glm.Engine.Generation;
using Glm.Engine.Tokenization;
using Glm.Engine.Training.Data;

namespace Glm.Engine.Training;

/// <summary>What a pretrained GLM scores on held-out text next to n-gram baselines on the same tokens.</summary>
public sealed record PretrainingReport
{
    /// <summary>Scored windows.</summary>
    public required int Windows { get; init; }
    /// <summary>Target tokens scored in all windows.</summary>
    public required long TargetTokens { get; init; }
    /// <summary>Characters of those tokens.</summary>
    public required long TargetCharacters { get; init; }
    /// <summary>Model bits per character (left-to-right through [gMASK] / Part B).</summary>
    public required double ModelBitsPerCharacter { get; init; }
    /// <summary>Unigram baseline bits per character.</summary>
    public required double UnigramBitsPerCharacter { get; init; }
    /// <summary>Interpolated Kneser–Ney bigram baseline bits per character.</summary>
    public required double BigramBitsPerCharacter { get; init; }
    /// <summary>Masked spans of 1–3 tokens tried.</summary>
    public required int Spans { get; init; }
    /// <summary>Share of spans the model filled exactly (greedy).</summary>
    public required double ModelSpanExactMatch { get; init; }
    /// <summary>Share of spans the model filled exactly with <see cref="GlmModel.BestBlankFill"/> (beam search over 1–3 token fills).</summary>
    public required double ModelSpanExactMatchSearch { get; init; }
    /// <summary>Share of spans the model filled exactly with <see cref="GlmModel.BestBlankFillLeftToRight"/> (left-to-right posterior search, the bigram's kind of search).</summary>
    public required double ModelSpanExactMatchLeftToRight { get; init; }
    /// <summary>Share of spans the bigram filler got exactly.</summary>
    public required double BigramSpanExactMatch { get; init; }
}

/// <summary>
/// Held-out evaluation of a from-scratch GLM for its model card. Bits per character: each window's first
/// <c>context</c> tokens form Part A (<c>[CLS] context [gMASK]</c>) and the next <c>target</c> tokens are scored as Part B,
/// the way GLM generates; the baselines score exactly the same target tokens (the bigram sees the last context token).
/// Blank filling: a 1–3 token span inside a window is replaced by one [MASK]; the model fills it greedily and, with the same
/// search as the bigram (beam 8 over 1–3 token fills), by P(span, eop | Part A); the bigram by beam search over
/// P(span | left)·P(right | span); a fill counts when it equals the original tokens exactly.
/// </summary>
public static class PretrainingEvaluation
{
    /// <summary>Evaluates <paramref name="model"/> on <paramref name="validation"/> against baselines trained on <paramref name="train"/>.</summary>
    public static PretrainingReport Run(GlmModel model, IReadOnlyList<int[]> train, IReadOnlyList<int[]> validation,
        int windows = 200, int context = 64, int target = 64, int spans = 200, ulong seed = 7, IProgress<string>? progress = null,
        CancellationToken ct = default)
    {
        var tokenizer = model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer; evaluation needs one to count characters.");
        var special = GlmSpecialTokens.FromTokenizer(tokenizer);
        progress?.Report("training n-gram baselines");
        var ngram = NGramBaseline.Train(train, model.Config.VocabSize);
        var rng = new GlmRandom(seed);
        var candidates = validation.Where(d => d.Length >= context + target + 2).ToArray();
        if (candidates.Length == 0) throw new GlmException($"no validation document has {context + target + 2} tokens; lower --context/--target.");

        double modelBits = 0, uniBits = 0, biBits = 0;
        long tokens = 0, chars = 0;
        for (int w = 0; w < windows; w++)
        {
            ct.ThrowIfCancellationRequested();
            var doc = candidates[rng.NextInt(candidates.Length)];
            int start = rng.NextInt(doc.Length - context - target + 1);
            var ctx = doc.AsSpan(start, context).ToArray();
            var tgt = doc.AsSpan(start + context, target).ToArray();
            var ids = new List<int> { special.Cls };
            ids.AddRange(ctx);
            ids.Add(special.GenerationMask);
            ids.Add(special.Sop);
            int firstTarget = ids.Count;
            ids.AddRange(tgt);
            var logits = model.ComputeLogits(ids);
            for (int i = 0; i < tgt.Length; i++) modelBits += NllBits(logits, firstTarget - 1 + i, tgt[i]);
            uniBits += ngram.UnigramNllBits(tgt);
            int prev = ctx[^1];
            foreach (int t in tgt) { biBits -= Math.Log2(ngram.BigramProbability(prev, t)); prev = t; }
            tokens += tgt.Length;
            chars += tokenizer.Decode(tgt, skipSpecialTokens: true).EnumerateRunes().Count();
            if ((w + 1) % 50 == 0) progress?.Report($"scored {w + 1}/{windows} windows");
        }

        int modelHits = 0, searchHits = 0, leftToRightHits = 0, bigramHits = 0;
        var greedy = new GenerationOptions { MaxNewTokens = 5 };
        for (int s = 0; s < spans; s++)
        {
            ct.ThrowIfCancellationRequested();
            var doc = candidates[rng.NextInt(candidates.Length)];
            int length = 1 + rng.NextInt(3);
            int start = rng.NextInt(doc.Length - context - target + 1);
            var window = doc.AsSpan(start, context + target).ToArray();
            int at = 8 + rng.NextInt(window.Length - 16 - length);
            var left = window[..at];
            var truth = window[at..(at + length)];
            var right = window[(at + length)..];
            var partA = new List<int> { special.Cls };
            partA.AddRange(left);
            partA.Add(special.Mask);
            partA.AddRange(right);
            partA.Add(special.Eos);
            if (model.GenerateBlank(partA, greedy).SequenceEqual(truth)) modelHits++;
            if (model.BestBlankFill(partA, maxTokens: 3).SequenceEqual(truth)) searchHits++;
            if (model.BestBlankFillLeftToRight(partA, maxTokens: 3).SequenceEqual(truth)) leftToRightHits++;
            if (ngram.PredictSpanAnyLength(left, right, 3).SequenceEqual(truth)) bigramHits++;
            if ((s + 1) % 50 == 0) progress?.Report($"filled {s + 1}/{spans} blanks");
        }

        return new PretrainingReport
        {
            Windows = windows, TargetTokens = tokens, TargetCharacters = chars,
            ModelBitsPerCharacter = modelBits / chars, UnigramBitsPerCharacter = uniBits / chars, BigramBitsPerCharacter = biBits / chars,
            Spans = spans, ModelSpanExactMatch = (double)modelHits / spans,
            ModelSpanExactMatchSearch = (double)searchHits / spans, ModelSpanExactMatchLeftToRight = (double)leftToRightHits / spans,
            BigramSpanExactMatch = (double)bigramHits / spans,
        };
    }

    private static double NllBits(float[,] logits, int row, int id) => GlmModel.TokenNll(logits, row, id) / Math.Log(2);
}
