using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Modeling.Quantization;

/// <summary>
/// Per-output-channel symmetric int8 quantization of a linear weight [out, in]: scale[r] = max|W[r,:]| / 127 and
/// Q[r,c] = round(W[r,c] / scale[r]) clamped to [−127, 127], so W ≈ Q·scale with |W − Q·scale| ≤ scale/2 per element.
/// An all-zero row gets scale 0 and Q = 0. In a saved checkpoint the int8 tensor keeps the weight's name and the fp32 scale
/// vector [out] is stored as <c>&lt;name&gt;_scale</c> (e.g. <c>...dense.weight_scale</c>).
/// </summary>
public static class Int8Quantizer
{
    /// <summary>Suffix appended to a weight's name to name its scale tensor.</summary>
    public const string ScaleSuffix = "_scale";

    /// <summary>Largest quantized magnitude (symmetric range, −128 is never used).</summary>
    public const float QMax = 127f;

    /// <summary>Name of the scale tensor of weight <paramref name="weightName"/>: <c>x.weight</c> → <c>x.weight_scale</c>.</summary>
    public static string ScaleName(string weightName) => weightName + ScaleSuffix;

    /// <summary>
    /// Quantizes <paramref name="weight"/> [out, in] (any float dtype, computed in fp32). Returns int8 [out, in] and fp32
    /// scales [out] on the weight's device; the caller owns both.
    /// </summary>
    public static (Tensor Weight, Tensor Scale) Quantize(Tensor weight)
    {
        if (weight.dim() != 2) throw new GlmException($"int8 quantization needs a 2-D weight; got shape [{string.Join(", ", weight.shape)}].");
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32);
        var scale = w.abs().amax(new long[] { 1 }, keepdim: true).div_(QMax); // [out, 1]
        var divisor = torch.where(scale.eq(0), torch.ones_like(scale), scale);
        var q = (w / divisor).round_().clamp_(-QMax, QMax).to(ScalarType.Int8).contiguous();
        return (q.MoveToOuterDisposeScope(), scale.view(-1).contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>Q·scale as <paramref name="dtype"/> [out, in] (multiplied in fp32, rounded once); the caller owns it.</summary>
    public static Tensor Dequantize(Tensor q, Tensor scale, ScalarType dtype)
    {
        if (Kernels.CpuInt8Dequant.TryDequantize(q, scale, dtype) is { } fast) return fast; // one pass, same bits
        using var scope = NewDisposeScope();
        var w = q.to(ScalarType.Float32).mul_(scale.to(ScalarType.Float32).view(-1, 1));
        return (dtype == ScalarType.Float32 ? w : w.to(dtype)).MoveToOuterDisposeScope();
    }
}
