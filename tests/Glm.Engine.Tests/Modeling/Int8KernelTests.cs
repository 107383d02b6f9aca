using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Modeling.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>Per-row int8 quantization and the int8 GEMV kernel against a float64 matmul of the dequantized weights.</summary>
[Collection("CpuInt8Gemv")] // tests flip the kernel's static switches
public class Int8KernelTests
{
    [Fact]
    public void RoundTripErrorIsAtMostHalfAStepPerRow()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var w = randn(37, 70) * rand(37, 1) * 3; // rows of very different magnitude
        w[5] = zeros(70);                         // an all-zero row
        var (q, scale) = Int8Quantizer.Quantize(w);
        Assert.Equal(ScalarType.Int8, q.dtype);
        Assert.Equal(new long[] { 37 }, scale.shape);
        Assert.Equal(0f, scale[5].item<float>());
        var deq = Int8Quantizer.Dequantize(q, scale, ScalarType.Float32);
        var rowError = (w - deq).abs().amax(new long[] { 1 });
        // |w − q·s| ≤ s/2 (round to nearest), plus fp32 rounding of the product.
        var bound = scale * 0.5f + w.abs().amax(new long[] { 1 }) * 1e-6f;
        Assert.True(rowError.le(bound).all().item<bool>(), $"worst excess {(rowError - bound).max().item<float>()}");
        var qmax = q.to(ScalarType.Float32).abs().amax(new long[] { 1 });
        Assert.True(qmax.le(127).all().item<bool>());
        Assert.Equal(127f, qmax[0].item<float>()); // the largest entry of each non-zero row maps to ±127
        Assert.Equal(0f, deq[5].abs().sum().item<float>());
    }

    [Theory]
    [InlineData(1, 64, 300, true)]
    [InlineData(1, 70, 257, true)]   // one input row, an uneven split over threads, a column tail
    [InlineData(2, 70, 300, true)]   // 70 = 2·32 + a 6-column tail
    [InlineData(3, 129, 257, true)]  // 257 rows: split over threads with an uneven last chunk
    [InlineData(4, 1536, 33, true)]
    [InlineData(4, 17, 5, true)]     // shorter than one AVX-512 block
    [InlineData(1, 70, 300, false)]  // the portable loop
    [InlineData(4, 129, 257, false)]
    public void KernelEqualsMatmulOfDequantizedWeights(int rows, int k, int n, bool avx512)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(rows * 1000 + k);
        var (q, scale) = Int8Quantizer.Quantize(randn(n, k));
        var bias = randn(n);
        var x = randn(1, rows, k);
        var expected = x.to(ScalarType.Float64).matmul(Int8Quantizer.Dequantize(q, scale, ScalarType.Float64).t()) + bias.to(ScalarType.Float64);
        bool saved = CpuInt8Gemv.UseAvx512;
        try
        {
            CpuInt8Gemv.UseAvx512 = avx512;
            var actual = CpuInt8Gemv.TryLinear(x, q, scale, bias);
            Assert.NotNull(actual);
            Assert.Equal(new long[] { 1, rows, n }, actual!.shape);
            Assert.Equal(ScalarType.Float32, actual.dtype);
            double err = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
            double tol = 1e-5 * Math.Max(1, expected.abs().max().item<double>());
            Assert.True(err < tol, $"max |error| {err} (tolerance {tol})");
        }
        finally { CpuInt8Gemv.UseAvx512 = saved; }
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void OnePassDequantizationIsBitIdenticalToTorch(ScalarType dtype)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        var (q, scale) = Int8Quantizer.Quantize(randn(300, 301) * 5); // 301 = 18·16 + a 13-column tail; 90k elements: threaded
        var fast = CpuInt8Dequant.TryDequantize(q, scale, dtype);
        if (fast is null) return; // no AVX-512 here: Dequantize uses the torch expression itself
        var expected = (q.to(ScalarType.Float32) * scale.view(-1, 1)).to(dtype);
        Assert.Equal(dtype, fast.dtype);
        Assert.True(fast.to(ScalarType.Float32).eq(expected.to(ScalarType.Float32)).all().item<bool>(), $"max |difference| {(fast.to(ScalarType.Float32) - expected.to(ScalarType.Float32)).abs().max().item<float>()}");
    }

    [Fact]
    public void Bf16ActivationsComeBackInBf16()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        var (q, scale) = Int8Quantizer.Quantize(randn(96, 64));
        var x = randn(2, 64).to(ScalarType.BFloat16);
        var expected = x.to(ScalarType.Float32).matmul(Int8Quantizer.Dequantize(q, scale, ScalarType.Float32).t());
        var actual = CpuInt8Gemv.TryLinear(x, q, scale, null)!;
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        double rel = (actual.to(ScalarType.Float32) - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(rel < 1e-2, $"relative error {rel}"); // bf16 output rounding
    }

    [Fact]
    public void DeclinesGemmSizesAndOtherTypes()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        var (q, scale) = Int8Quantizer.Quantize(randn(64, 96));
        Assert.Null(CpuInt8Gemv.TryLinear(randn(CpuInt8Gemv.MaxRows + 1, 96), q, scale, null)); // prefill: dequantize + GEMM
        Assert.Null(CpuInt8Gemv.TryLinear(randn(1, 96), q.to(ScalarType.Float32), scale, null)); // not int8
        Assert.Null(CpuInt8Gemv.TryLinear(randn(1, 95), q, scale, null));                        // wrong K
    }
}
