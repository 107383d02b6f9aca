namespace Glm.Engine.Diagnostics;

/// <summary>How far a quantized model's outputs are from the unquantized model's on the same tokens.</summary>
public sealed record QuantizationAccuracy
{
    /// <summary>Tokens whose logits were compared (one forward over the window, the prefill path).</summary>
    public required int LogitTokens { get; init; }
    /// <summary>Largest |logit − reference logit| over all compared positions and vocabulary entries.</summary>
    public required double MaxAbsLogitError { get; init; }
    /// <summary>Mean |logit − reference logit|.</summary>
    public required double MeanAbsLogitError { get; init; }
    /// <summary>Largest |reference logit|, to read the errors against.</summary>
    public required double MaxAbsReferenceLogit { get; init; }
    /// <summary>Fraction of positions whose arg-max token is the same.</summary>
    public required double ArgmaxAgreement { get; init; }
    /// <summary>Tokens compared one at a time through the KV cache (the decode path, where the int8 GEMV kernel runs).</summary>
    public required int DecodeTokens { get; init; }
    /// <summary>Largest |logit − reference logit| on the decode path.</summary>
    public required double DecodeMaxAbsLogitError { get; init; }
    /// <summary>Perplexity of the unquantized model.</summary>
    public required PerplexityResult Reference { get; init; }
    /// <summary>Perplexity of the quantized model.</summary>
    public required PerplexityResult Quantized { get; init; }
    /// <summary>Relative perplexity change: quantized / reference − 1.</summary>
    public double PerplexityChange => Quantized.Perplexity / Reference.Perplexity - 1;
}

/// <summary>Compares a quantized model with its unquantized original (<c>glm quantize --report</c>).</summary>
public static class QuantizationReport
{
    /// <summary>
    /// Logit errors on the first <paramref name="logitTokens"/> of <paramref name="ids"/> (full forward) and on the first
    /// <paramref name="decodeTokens"/> (incremental), and the perplexity of both models over all of <paramref name="ids"/> with a
    /// sliding window of <paramref name="context"/> tokens.
    /// </summary>
    public static QuantizationAccuracy Compare(GlmModel reference, GlmModel quantized, IReadOnlyList<int> ids, long characters,
        int logitTokens = 256, int decodeTokens = 16, int context = 512, CancellationToken ct = default)
    {
        if (reference.Config.VocabSize != quantized.Config.VocabSize)
            throw new GlmException($"the models differ in vocabulary ({reference.Config.VocabSize} vs {quantized.Config.VocabSize}); expected the same model twice.");
        var window = ids.Take(Math.Min(logitTokens, reference.MaxContext)).ToList();
        var a = reference.ComputeLogits(window);
        var b = quantized.ComputeLogits(window);
        var (max, mean, refMax, agree) = Stats(a, b);
        ct.ThrowIfCancellationRequested();
        var decodeWindow = window.Take(decodeTokens).ToList();
        var (decodeMax, _, _, _) = Stats(reference.ComputeLogits(decodeWindow, incremental: true), quantized.ComputeLogits(decodeWindow, incremental: true));
        ct.ThrowIfCancellationRequested();
        var pplRef = reference.ComputePerplexity(ids, characters, context, cancellationToken: ct);
        var pplQ = quantized.ComputePerplexity(ids, characters, context, cancellationToken: ct);
        return new QuantizationAccuracy
        {
            LogitTokens = window.Count, MaxAbsLogitError = max, MeanAbsLogitError = mean, MaxAbsReferenceLogit = refMax,
            ArgmaxAgreement = agree, DecodeTokens = decodeWindow.Count, DecodeMaxAbsLogitError = decodeMax,
            Reference = pplRef, Quantized = pplQ,
        };
    }

    private static (double Max, double Mean, double RefMax, double Agree) Stats(float[,] reference, float[,] other)
    {
        int n = reference.GetLength(0), v = reference.GetLength(1);
        double max = 0, sum = 0, refMax = 0;
        int same = 0;
        for (int i = 0; i < n; i++)
        {
            int argA = 0, argB = 0;
            for (int j = 0; j < v; j++)
            {
                double d = Math.Abs((double)reference[i, j] - other[i, j]);
                max = Math.Max(max, d);
                sum += d;
                refMax = Math.Max(refMax, Math.Abs(reference[i, j]));
                if (reference[i, j] > reference[i, argA]) argA = j;
                if (other[i, j] > other[i, argB]) argB = j;
            }
            if (argA == argB) same++;
        }
        return (max, sum / ((double)n * v), refMax, (double)same / n);
    }
}
