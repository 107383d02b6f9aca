using Glm.Engine.Modeling.Kernels;

namespace Glm.Engine.Diagnostics;

/// <summary>
/// The quantized model on the decode path (tokens fed one at a time through the KV cache, where the int8 GEMV kernel runs) in
/// one activation mode of <see cref="CpuInt8Gemv"/>, against the unquantized model on the same path.
/// </summary>
public sealed record DecodeAccuracy
{
    /// <summary>True: quantized activations (<see cref="CpuInt8Gemv.DecodeActivationsName"/>); false: exact fp32 activations.</summary>
    public required bool Int8Activations { get; init; }
    /// <summary>The mode in words: "exact fp32 activations", "int16 activations" (AVX512_VNNI) or "int8 activations" (AVX-VNNI).</summary>
    public required string Activations { get; init; }
    /// <summary>Largest |logit − reference logit|.</summary>
    public required double MaxAbsLogitError { get; init; }
    /// <summary>Mean |logit − reference logit|.</summary>
    public required double MeanAbsLogitError { get; init; }
    /// <summary>Fraction of positions whose arg-max token is the same as the reference's.</summary>
    public required double ArgmaxAgreement { get; init; }
    /// <summary>Perplexity of the decode window's next-token predictions (positions 1..n−1).</summary>
    public required double Perplexity { get; init; }
}

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
    /// <summary>Largest |logit − reference logit| on the decode path, in the activation mode the engine runs by default.</summary>
    public required double DecodeMaxAbsLogitError { get; init; }
    /// <summary>Perplexity of the unquantized model's decode-path next-token predictions over the decode window.</summary>
    public required double DecodeReferencePerplexity { get; init; }
    /// <summary>The decode path with exact fp32 activations in the int8 GEMV (weight-only quantization error).</summary>
    public required DecodeAccuracy DecodeExactActivations { get; init; }
    /// <summary>The decode path with quantized activations (int16 with AVX512_VNNI, int8 with AVX-VNNI); null where the CPU has
    /// neither.</summary>
    public DecodeAccuracy? DecodeInt8Activations { get; init; }
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
    /// <paramref name="decodeTokens"/> (incremental, once with exact and once with int8 activations in the int8 GEMV — prefill
    /// and the sliding-window perplexity do not use that kernel), and the perplexity of both models over all of
    /// <paramref name="ids"/> with a sliding window of <paramref name="context"/> tokens. Flips the process-wide
    /// <see cref="CpuInt8Gemv.Int8Activations"/> while it runs (restored after): run nothing else on the models meanwhile.
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
        var decodeWindow = ids.Take(Math.Min(decodeTokens, reference.MaxContext)).ToList();
        var decodeReference = reference.ComputeLogits(decodeWindow, incremental: true);
        bool defaultMode = CpuInt8Gemv.Int8Activations;
        DecodeAccuracy exact;
        DecodeAccuracy? int8 = null;
        try
        {
            exact = Decode(decodeReference, quantized, decodeWindow, int8Activations: false);
            ct.ThrowIfCancellationRequested();
            if (CpuInt8Gemv.HasInt8ActivationLoops) int8 = Decode(decodeReference, quantized, decodeWindow, int8Activations: true);
        }
        finally { CpuInt8Gemv.Int8Activations = defaultMode; }
        ct.ThrowIfCancellationRequested();
        var pplRef = reference.ComputePerplexity(ids, characters, context, cancellationToken: ct);
        var pplQ = quantized.ComputePerplexity(ids, characters, context, cancellationToken: ct);
        return new QuantizationAccuracy
        {
            LogitTokens = window.Count, MaxAbsLogitError = max, MeanAbsLogitError = mean, MaxAbsReferenceLogit = refMax,
            ArgmaxAgreement = agree, DecodeTokens = decodeWindow.Count,
            DecodeMaxAbsLogitError = (defaultMode && int8 is not null ? int8 : exact).MaxAbsLogitError,
            DecodeReferencePerplexity = Perplexity(decodeReference, decodeWindow), DecodeExactActivations = exact, DecodeInt8Activations = int8,
            Reference = pplRef, Quantized = pplQ,
        };
    }

    private static DecodeAccuracy Decode(float[,] reference, GlmModel quantized, List<int> window, bool int8Activations)
    {
        CpuInt8Gemv.Int8Activations = int8Activations;
        var logits = quantized.ComputeLogits(window, incremental: true);
        var (max, mean, _, agree) = Stats(reference, logits);
        return new DecodeAccuracy
        {
            Int8Activations = int8Activations,
            Activations = CpuInt8Gemv.DecodeActivationsName, MaxAbsLogitError = max, MeanAbsLogitError = mean, ArgmaxAgreement = agree,
            Perplexity = Perplexity(logits, window),
        };
    }

    /// <summary>exp of the mean −log softmax(logits[i])[ids[i + 1]] over i &lt; n − 1 (NaN for a single token).</summary>
    private static double Perplexity(float[,] logits, IReadOnlyList<int> ids)
    {
        int n = logits.GetLength(0);
        double nll = 0;
        for (int i = 0; i + 1 < n; i++) nll += GlmModel.TokenNll(logits, i, ids[i + 1]);
        return n > 1 ? Math.Exp(nll / (n - 1)) : double.NaN;
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
