using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Modeling.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>Per-row int8 quantization and the int8 GEMV kernel against a float64 matmul of the dequantized weights.</summary>
[Collection("KernelSwitches")] // tests flip the kernel's static switches
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
        bool saved = CpuInt8Gemv.UseAvx512, savedActivations = CpuInt8Gemv.Int8Activations;
        try
        {
            CpuInt8Gemv.UseAvx512 = avx512;
            CpuInt8Gemv.Int8Activations = false; // the exact fp32-activation loops
            var actual = CpuInt8Gemv.TryLinear(x, q, scale, bias);
            Assert.NotNull(actual);
            Assert.Equal(new long[] { 1, rows, n }, actual!.shape);
            Assert.Equal(ScalarType.Float32, actual.dtype);
            double err = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
            double tol = 1e-5 * Math.Max(1, expected.abs().max().item<double>());
            Assert.True(err < tol, $"max |error| {err} (tolerance {tol})");
        }
        finally { CpuInt8Gemv.UseAvx512 = saved; CpuInt8Gemv.Int8Activations = savedActivations; }
    }

    /// <summary>
    /// The int8-activation (VNNI) kernel against a scalar float64 evaluation of the same math: each input row quantized per
    /// 32-column block (d = max|x|/127, xq = round-to-even(x·(127/max|x|))), integer dot products per block times d, summed,
    /// the fp32 tail columns added exactly, times the row scale, plus bias. Tolerance: fp32 summation order (1e-5 of the sum of
    /// the terms' magnitudes), plus one bf16 rounding step of the result for bf16 outputs. A kernel that skipped the activation
    /// rounding, or rounded differently, misses by ≈ 1e-3 of that magnitude.
    /// </summary>
    [Theory]
    [InlineData(1, 1536, 300, true, ScalarType.Float32)]
    [InlineData(1, 1536, 300, false, ScalarType.BFloat16)]
    [InlineData(1, 96, 257, false, ScalarType.Float32)]     // odd block count: the single-row loop's unpaired last block
    [InlineData(2, 70, 300, true, ScalarType.Float32)]      // 70 = 2·32 + a 6-column fp32 tail
    [InlineData(2, 64, 300, false, ScalarType.BFloat16)]
    [InlineData(3, 129, 257, false, ScalarType.Float32)]    // a 1-column tail; uneven split over threads
    [InlineData(3, 4608, 65, true, ScalarType.BFloat16)]
    [InlineData(4, 1536, 33, true, ScalarType.BFloat16)]
    [InlineData(4, 300, 129, false, ScalarType.Float32)]
    [InlineData(1, 17, 5, true, ScalarType.Float32)]        // shorter than one block: all tail
    [InlineData(4, 17, 5, false, ScalarType.BFloat16)]
    [InlineData(7, 300, 129, true, ScalarType.BFloat16)]    // continuous batching: chunks of 4 + 3 rows
    [InlineData(16, 1536, 200, false, ScalarType.Float32)]  // 16 streams; weight rows cross the 64-row L2 blocks
    [InlineData(13, 70, 300, true, ScalarType.Float32)]
    public void Int8ActivationKernelEqualsScalarReference(int rows, int k, int n, bool withBias, ScalarType dtype)
    {
        if (!CpuInt8VnniGemv.IsSupported) return; // no AVX-VNNI: the switch is ignored and the exact path runs
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(rows * 7919 + k + n);
        var (q, scale) = Int8Quantizer.Quantize(randn(n, k));
        var x = RealisticActivations(rows, k).to(dtype);
        var bias = withBias ? randn(n).to(dtype) : null;
        var expected = ScalarInt8ActivationReference(x, q, scale, bias, out var magnitude);
        bool saved = CpuInt8Gemv.Int8Activations;
        try
        {
            CpuInt8Gemv.Int8Activations = true;
            CpuInt8Gemv.UseInt8DotKernel = false; // the AVX-VNNI loops; Int8DotKernelTests covers the AVX512_VNNI machine code
            var actual = CpuInt8Gemv.TryLinear(x.view(1, rows, k), q, scale, bias);
            Assert.NotNull(actual);
            Assert.Equal(new long[] { 1, rows, n }, actual!.shape);
            Assert.Equal(dtype, actual.dtype);
            var got = actual.to(ScalarType.Float64).view(rows, n).data<double>().ToArray();
            for (int i = 0; i < got.Length; i++)
            {
                double tol = 1e-5 * magnitude[i] + (dtype == ScalarType.BFloat16 ? Math.Abs(expected[i]) / 256 : 0) + 1e-30;
                Assert.True(Math.Abs(got[i] - expected[i]) <= tol, $"output {i}: {got[i]} vs reference {expected[i]} (tolerance {tol})");
            }
        }
        finally { CpuInt8Gemv.Int8Activations = saved; CpuInt8Gemv.UseInt8DotKernel = true; }
    }

    /// <summary>
    /// With int8 activations a row's output is bit for bit the same whether it is computed alone or with up to three other rows
    /// (each row is quantized on its own and accumulated in the same order), so a stream's tokens do not depend on its batch.
    /// </summary>
    [Theory]
    [InlineData(1536)]
    [InlineData(100)] // 3 blocks (one unpaired) and a 4-column tail
    public void Int8ActivationRowsDoNotDependOnTheirBatch(int k)
    {
        if (!CpuInt8VnniGemv.IsSupported) return;
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(k);
        var (q, scale) = Int8Quantizer.Quantize(randn(300, k));
        var x = RealisticActivations(4, k);
        var bias = randn(300);
        bool saved = CpuInt8Gemv.Int8Activations;
        try
        {
            CpuInt8Gemv.Int8Activations = true;
            CpuInt8Gemv.UseInt8DotKernel = false; // the AVX-VNNI loops; Int8DotKernelTests covers the AVX512_VNNI machine code
            var alone = Enumerable.Range(0, 4).Select(m => CpuInt8Gemv.TryLinear(x[m].unsqueeze(0), q, scale, bias)!).ToArray();
            for (int rows = 2; rows <= 4; rows++)
            {
                var together = CpuInt8Gemv.TryLinear(x[TensorIndex.Slice(0, rows)], q, scale, bias)!;
                for (int m = 0; m < rows; m++)
                    Assert.True(together[m].eq(alone[m][0]).all().item<bool>(), $"{rows} rows, row {m}: max |difference| {(together[m] - alone[m][0]).abs().max().item<float>()}");
            }
        }
        finally { CpuInt8Gemv.Int8Activations = saved; CpuInt8Gemv.UseInt8DotKernel = true; }
    }

    /// <summary>
    /// Stated bound of the int8-activation kernel against the exact product with the dequantized weights: per block
    /// |x − d·xq| ≤ d/2 = max|x_b|/254, so the rounding error e has ‖e‖² ≤ Σ_b 32·max|x_b|²/254² ≤ ‖x‖²·8/127², and by
    /// Cauchy–Schwarz |error| ≤ (√8/127)·‖x‖·‖w_row‖ ≈ 0.0223·‖x‖·‖w_row‖ (w_row dequantized). Random signs make the typical
    /// error ≈ √k times smaller; the test also asserts the error is not zero (the int8 path really ran).
    /// </summary>
    [Theory]
    [InlineData(1, 1536)]
    [InlineData(4, 4608)]
    [InlineData(2, 70)]
    public void Int8ActivationErrorIsWithinTheStatedBound(int rows, int k)
    {
        if (!CpuInt8VnniGemv.IsSupported) return;
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(k + rows);
        var (worst, largest) = QuantizedActivationError(RealisticActivations(rows, k), k, dotKernel: false);
        Assert.True(worst <= Math.Sqrt(8) / 127 * (1 + 1e-4), $"max |error| / (‖x‖·‖w‖) = {worst}");
        Assert.True(largest > 0, "int8 activations should change the result a little");
    }

    /// <summary>
    /// The worst |error| / (‖x_m‖·‖w_r‖) and the largest |error| of <see cref="CpuInt8Gemv.TryLinear"/> with quantized
    /// activations against the float64 product with the dequantized weights, for 512 random weight rows of <paramref name="k"/>
    /// (<paramref name="dotKernel"/>: the AVX512_VNNI machine code, else the AVX-VNNI loops). The caller holds a dispose scope.
    /// </summary>
    internal static (double Worst, double Largest) QuantizedActivationError(Tensor x, int k, bool dotKernel)
    {
        var (q, scale) = Int8Quantizer.Quantize(randn(512, k));
        var w = Int8Quantizer.Dequantize(q, scale, ScalarType.Float64);
        var exact = x.to(ScalarType.Float64).matmul(w.t());
        bool saved = CpuInt8Gemv.Int8Activations;
        try
        {
            CpuInt8Gemv.Int8Activations = true;
            CpuInt8Gemv.UseInt8DotKernel = dotKernel;
            var error = (CpuInt8Gemv.TryLinear(x, q, scale, null)!.to(ScalarType.Float64) - exact).abs();
            var norms = x.to(ScalarType.Float64).norm(1, keepdim: true) * w.norm(1).view(1, -1); // ‖x_m‖·‖w_r‖
            return ((error / norms).max().item<double>(), error.max().item<double>());
        }
        finally { CpuInt8Gemv.Int8Activations = saved; CpuInt8Gemv.UseInt8DotKernel = true; }
    }

    /// <summary>Activations [rows, k] with what real ones have: an outlier column (a block with a large scale), an all-zero
    /// block (d = 0) and a block of tiny values.</summary>
    private static Tensor RealisticActivations(int rows, int k)
    {
        var x = randn(rows, k);
        x[TensorIndex.Colon, 3] = x[TensorIndex.Colon, 3] * 40;
        if (k >= 64) x[TensorIndex.Colon, TensorIndex.Slice(32, 64)] = 0;
        if (k >= 96) x[TensorIndex.Colon, TensorIndex.Slice(64, 96)] = x[TensorIndex.Colon, TensorIndex.Slice(64, 96)] * 1e-3f;
        return x;
    }

    /// <summary>The int8-activation product evaluated one element at a time (see <see cref="Int8ActivationKernelEqualsScalarReference"/>);
    /// <paramref name="magnitude"/> is the sum of the absolute terms of each output.</summary>
    private static double[] ScalarInt8ActivationReference(Tensor x, Tensor q, Tensor scale, Tensor? bias, out double[] magnitude)
    {
        int rows = (int)x.shape[0], k = (int)x.shape[1], n = (int)q.shape[0], nb = k / 32;
        var xs = x.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var qs = q.contiguous().data<sbyte>().ToArray();
        var ss = scale.data<float>().ToArray();
        var bs = bias?.to(ScalarType.Float32).data<float>().ToArray();
        var result = new double[rows * n];
        magnitude = new double[rows * n];
        for (int m = 0; m < rows; m++)
        {
            var xq = new int[nb * 32];
            var d = new float[nb];
            for (int b = 0; b < nb; b++)
            {
                float amax = 0;
                for (int i = b * 32; i < b * 32 + 32; i++) amax = Math.Max(amax, Math.Abs(xs[m * k + i]));
                d[b] = amax / 127f;
                float inv = amax > 0 ? 127f / amax : 0f;
                for (int i = b * 32; i < b * 32 + 32; i++) xq[i] = (int)MathF.Round(xs[m * k + i] * inv, MidpointRounding.ToEven);
            }
            for (int r = 0; r < n; r++)
            {
                double sum = 0, mag = 0;
                for (int b = 0; b < nb; b++)
                {
                    int dot = 0;
                    for (int i = b * 32; i < b * 32 + 32; i++) dot += qs[r * k + i] * xq[i];
                    sum += (double)d[b] * dot;
                    mag += Math.Abs((double)d[b] * dot);
                }
                for (int i = nb * 32; i < k; i++)
                {
                    sum += (double)qs[r * k + i] * xs[m * k + i];
                    mag += Math.Abs((double)qs[r * k + i] * xs[m * k + i]);
                }
                double b0 = bs is null ? 0 : bs[r];
                result[m * n + r] = sum * ss[r] + b0;
                magnitude[m * n + r] = mag * ss[r] + Math.Abs(b0);
            }
        }
        return result;
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
        int most = CpuInt8Gemv.MaxRowsFor(96);
        Assert.NotNull(CpuInt8Gemv.TryLinear(randn(most, 96), q, scale, null));
        Assert.Null(CpuInt8Gemv.TryLinear(randn(most + 1, 96), q, scale, null)); // prefill: dequantize + GEMM
        Assert.Null(CpuInt8Gemv.TryLinear(randn(1, 96), q.to(ScalarType.Float32), scale, null)); // not int8
        Assert.Null(CpuInt8Gemv.TryLinear(randn(1, 95), q, scale, null));                        // wrong K
    }
}
