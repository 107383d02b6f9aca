namespace Glm.Engine.Training.Data;

/// <summary>
/// Settings of <see cref="BlankInfillingCollator"/>. Defaults follow the glm-large-chinese recipe (glm-formats §1.6):
/// span 0.4, sentence 0.3, document 0.3, λ = 3, ratio 0.15, gpt_min_ratio 0.25.
/// </summary>
public sealed record BlankInfillingOptions
{
    /// <summary>Probability that a batch uses [MASK] span infilling ("bert_prob").</summary>
    public double SpanProbability { get; init; } = 0.4;
    /// <summary>Probability that a batch uses [sMASK] sentence infilling ("gap_sentence_prob"); the rest is [gMASK].</summary>
    public double SentenceProbability { get; init; } = 0.3;
    /// <summary>Fraction of each sample's tokens masked in span mode ("bert_ratio").</summary>
    public double SpanMaskRatio { get; init; } = 0.15;
    /// <summary>Fraction masked in sentence mode ("gap_sentence_ratio").</summary>
    public double SentenceMaskRatio { get; init; } = 0.15;
    /// <summary>Poisson λ of span lengths ("avg_block_length").</summary>
    public double AverageSpanLength { get; init; } = 3;
    /// <summary>Exclusive upper bound of span lengths ("max_block_length"): lengths are 1..MaxSpanLength-1.</summary>
    public int MaxSpanLength { get; init; } = 40;
    /// <summary>Minimum generated fraction of the shortest sample in document mode ("gpt_min_ratio").</summary>
    public double GenerationMinRatio { get; init; } = 0.25;
    /// <summary>Probability of the prefix/suffix ("infill") layout in document mode ("gpt_infill_prob").</summary>
    public double GenerationInfillProbability { get; init; } = 0.5;
    /// <summary>Shuffle Part-B spans (the GLM default); false keeps text order.</summary>
    public bool ShuffleSpans { get; init; } = true;

    /// <summary>Throws <see cref="GlmException"/> naming the first out-of-range field.</summary>
    public void Validate()
    {
        static void Check(bool ok, string field, object value, string expected)
        {
            if (!ok) throw new GlmException($"BlankInfillingOptions.{field} = {value} is invalid: expected {expected}.");
        }
        Check(SpanProbability is >= 0 and <= 1, nameof(SpanProbability), SpanProbability, "a probability in [0, 1]");
        Check(SentenceProbability >= 0 && SpanProbability + SentenceProbability <= 1 + 1e-9, nameof(SentenceProbability), SentenceProbability, "≥ 0 with SpanProbability + SentenceProbability ≤ 1");
        Check(SpanMaskRatio is > 0 and < 1, nameof(SpanMaskRatio), SpanMaskRatio, "a ratio in (0, 1)");
        Check(SentenceMaskRatio is > 0 and < 1, nameof(SentenceMaskRatio), SentenceMaskRatio, "a ratio in (0, 1)");
        Check(AverageSpanLength > 0, nameof(AverageSpanLength), AverageSpanLength, "> 0");
        Check(MaxSpanLength >= 2, nameof(MaxSpanLength), MaxSpanLength, "≥ 2");
        Check(GenerationMinRatio is >= 0 and <= 1, nameof(GenerationMinRatio), GenerationMinRatio, "a ratio in [0, 1]");
        Check(GenerationInfillProbability is >= 0 and <= 1, nameof(GenerationInfillProbability), GenerationInfillProbability, "a probability in [0, 1]");
    }
}
