namespace Glm.Engine;

/// <summary>How the weights of a model's linear layers are stored in memory.</summary>
public enum GlmQuantization
{
    /// <summary>In the compute dtype (no quantization).</summary>
    None,

    /// <summary>
    /// Weight-only int8: every linear layer (QKV, attention output, MLP, output head) holds int8 weights with one symmetric
    /// fp32 scale per output row (scale = max|w_row| / 127). Embeddings, norms and biases stay in the compute dtype.
    /// </summary>
    Int8,
}

/// <summary>Parsing and naming of <see cref="GlmQuantization"/> values.</summary>
public static class GlmQuantizationNames
{
    /// <summary>Parses "none"/"int8" (case-insensitive; null or empty = none); throws <see cref="GlmException"/> otherwise.</summary>
    public static GlmQuantization Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "none" => GlmQuantization.None,
        "int8" => GlmQuantization.Int8,
        _ => throw new GlmException($"quantization '{name}' is not supported; expected none or int8."),
    };

    /// <summary>The lower-case name used on the command line and in config.json.</summary>
    public static string Name(GlmQuantization q) => q == GlmQuantization.Int8 ? "int8" : "none";

    /// <summary>
    /// How int8 layers treat their inputs at decode on this machine now: "int16 activations" (AVX512_VNNI), "int8 activations"
    /// (AVX-VNNI) or "exact fp32 activations" (neither, or <c>GLM_INT8_EXACT_ACTIVATIONS=1</c>). Layers whose input length the
    /// quantized loops do not take use the next mode down; prefill always dequantizes.
    /// </summary>
    public static string DecodeActivations => Modeling.Kernels.CpuInt8Gemv.DecodeActivationsName;
}
