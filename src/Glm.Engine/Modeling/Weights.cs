using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Modeling.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Modeling;

/// <summary>
/// A leaf module holding a weight and an optional bias, named like a torch Linear/Embedding/Norm. A weight-only int8 layer
/// holds an int8 <see cref="Weight"/> [out, in] and fp32 per-row scales registered as <c>weight_scale</c> [out], so the
/// state dict (and a saved checkpoint) names them <c>x.weight</c> and <c>x.weight_scale</c>.
/// </summary>
internal sealed class Weights : nn.Module
{
    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    /// <summary>fp32 per-output-row scales of an int8 <see cref="Weight"/>; null for a plain layer.</summary>
    public Parameter? WeightScale { get; }

    /// <summary>True when <see cref="Weight"/> is int8 with <see cref="WeightScale"/>.</summary>
    public bool IsQuantized => WeightScale is not null;

    public Weights(Tensor weight, Tensor? bias = null, Tensor? weightScale = null) : base("weights")
    {
        if (weightScale is not null && (weight.dtype != ScalarType.Int8 || weightScale.dtype != ScalarType.Float32))
            throw new ArgumentException($"a quantized layer needs int8 weights and fp32 scales; got {weight.dtype} and {weightScale.dtype}.");
        Weight = new Parameter(weight, requires_grad: false);
        register_parameter("weight", Weight);
        if (bias is not null)
        {
            Bias = new Parameter(bias, requires_grad: false);
            register_parameter("bias", Bias);
        }
        if (weightScale is not null)
        {
            WeightScale = new Parameter(weightScale, requires_grad: false);
            register_parameter("weight_scale", WeightScale);
        }
    }

    /// <summary>A layer from (weight, scale) as <see cref="WeightReader.ReadLinear"/> returns it.</summary>
    public Weights((Tensor Weight, Tensor? Scale) linear, Tensor? bias = null) : this(linear.Weight, bias, linear.Scale) { }

    /// <summary>An int8 copy of <paramref name="weight"/> (e.g. a tied output head quantized from the embedding table).</summary>
    public static Weights Quantized(Tensor weight)
    {
        var (q, scale) = Int8Quantizer.Quantize(weight);
        return new Weights(q, null, scale);
    }

    /// <summary>An optional low-rank term added to <see cref="Linear"/>'s output (LoRA); not a registered submodule.</summary>
    public ILinearAdapter? Adapter { get; set; }

    public Tensor Linear(Tensor x) => Adapter is null ? BaseLinear(x) : BaseLinear(x) + Adapter.Delta(x);

    /// <summary>
    /// <paramref name="residual"/> + <see cref="Linear"/>(x) in one pass where the prompt GEMM takes this layer (the residual
    /// added in its epilogue, with the separate add's roundings); null otherwise, and the caller adds.
    /// </summary>
    public Tensor? TryLinearAddTo(Tensor x, Tensor residual) => TryFusedLinear(x, GemmEpilogue.AddTo(residual));

    /// <summary>
    /// silu(gate) · up of this fused gate/up layer's output ([..., 2·ffn] → [..., ffn]) in one pass where the prompt GEMM takes
    /// it (bit for bit what <see cref="CpuDecodeOps.TrySwiGlu"/> makes of <see cref="Linear"/>'s output); null otherwise.
    /// </summary>
    public Tensor? TryLinearSwiGlu(Tensor x, long ffn) => TryFusedLinear(x, GemmEpilogue.SwiGlu(ffn));

    private Tensor? TryFusedLinear(Tensor x, GemmEpilogue epilogue)
    {
        if (Adapter is not null) return null; // the adapter's term belongs between the product and the epilogue's op
        return IsQuantized ? CpuGemm.TryQuantizedLinear(x, Weight, WeightScale!, Bias, epilogue) : CpuGemm.TryLinear(x, Weight, Bias, epilogue);
    }

    private Tensor BaseLinear(Tensor x)
    {
        if (IsQuantized) return QuantizedLinear(x);
        if (CpuGemv.TryLinear(x, Weight, Bias) is { } y) return y;
        if (CpuGemm.TryLinear(x, Weight, Bias) is { } product) return product;
        if (WidenedHalfLinear(x) is { } widened) return widened;
        if (x.dim() <= 2) return F.linear(x, Weight, Bias);
        // libtorch picks a much slower fp16 GEMV kernel for 3-D inputs than for the same rows as a 2-D matrix.
        return FlatLinear(x, Weight, Bias);
    }

    /// <summary>F.linear on <paramref name="x"/> [..., in] flattened to 2-D rows, viewed back as [..., out].</summary>
    private static Tensor FlatLinear(Tensor x, Tensor weight, Tensor? bias)
    {
        var shape = x.shape.ToArray();
        var flat = F.linear(x.reshape(-1, shape[^1]), weight, bias);
        shape[^1] = flat.shape[1];
        return flat.view(shape);
    }

    /// <summary>
    /// fp16 layers on the CPU beyond decode sizes (prefill, scoring): libtorch has no fast fp16 GEMM on CPUs without AVX512-FP16
    /// (glm4-bench fp16 prefill ran ≈ 50 tok/s against 400 in bf16), so the weights are widened to fp32 for this call — exact —
    /// and oneDNN's fp32 GEMM runs with fp32 accumulation, rounding the result to fp16 once, as an fp16 GEMM does. The fp32
    /// copy lives only for this call. Null when not applicable.
    /// </summary>
    private Tensor? WidenedHalfLinear(Tensor x)
    {
        if (Weight.dtype != ScalarType.Float16 || x.dtype != ScalarType.Float16 || x.device_type != DeviceType.CPU ||
            x.requires_grad || Weight.requires_grad || x.NumberOfElements / x.shape[^1] <= CpuGemv.MaxRows)
            return null;
        using var scope = NewDisposeScope();
        return FlatLinear(x.to(ScalarType.Float32), Weight.to(ScalarType.Float32), Bias?.to(ScalarType.Float32))
            .to(ScalarType.Float16).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Decode sizes go to <see cref="CpuInt8Gemv"/>, bf16 prompts to <see cref="CpuGemm"/> (dequantizing 12 rows at a time).
    /// Other larger inputs (prefill, scoring) dequantize the whole matrix to x's dtype
    /// for this call and run libtorch's GEMM: the O(out·in) dequantization is amortised over many rows and the GEMM stays
    /// oneDNN's; the temporary lives only for this call, so resident weights stay int8.
    /// </summary>
    private Tensor QuantizedLinear(Tensor x)
    {
        if (CpuInt8Gemv.TryLinear(x, Weight, WeightScale!, Bias) is { } y) return y;
        if (CpuGemm.TryQuantizedLinear(x, Weight, WeightScale!, Bias) is { } product) return product;
        using var scope = NewDisposeScope();
        var w = Int8Quantizer.Dequantize(Weight, WeightScale!, x.dtype);
        var b = Bias is null ? null : Bias.dtype == x.dtype ? Bias : Bias.to(x.dtype);
        return FlatLinear(x, w, b).MoveToOuterDisposeScope();
    }
}
