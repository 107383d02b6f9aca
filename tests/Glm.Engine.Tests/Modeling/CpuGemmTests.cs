using Glm.Engine.Modeling;
using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

[Collection("KernelSwitches")] // flips CpuGemm.Enabled
public unsafe class CpuGemmTests
{
    [Fact]
    public void Transpose16MovesEveryLaneToItsMirror()
    {
        var source = new float[20 * 16]; // rows 20 floats apart
        var result = new float[16 * 24]; // rows 24 floats apart
        for (int i = 0; i < source.Length; i++) source[i] = i;
        fixed (float* src = source) fixed (float* dst = result) CpuGemm.Transpose16(src, 20, dst, 24);
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) Assert.Equal(c * 20 + r, result[r * 24 + c]);
    }

    [Theory]
    [InlineData(17, 12, 32, 1, "none")]
    [InlineData(45, 50, 96, 2, "f32")] // a partial tile of weight rows and of input rows, a partial 16-column block
    [InlineData(130, 100, 64, 2, "bf16")] // two input chunks (128 + 2)
    [InlineData(64, 97, 4608, 2, "bf16")] // GLM-4's dense_4h_to_h width
    public void ProductsEqualTheExactSumsRoundedOnce(int rows, int n, int k, int threads, string biasKind)
    {
        if (!Bf16GemmKernel.IsSupported) return; // no AVX512_BF16: TryLinear never calls it
        var rng = new Random(rows * 1000 + n);
        ushort[] x = RandomBf16(rng, rows * k, 4), w = RandomBf16(rng, n * k, 1);
        float[] biasF32 = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        ushort[] biasBf16 = biasF32.Select(KernelSupport.FloatToBf16).ToArray();
        var y = new ushort[rows * n];
        fixed (ushort* xp = x) fixed (ushort* wp = w) fixed (ushort* yp = y) fixed (float* bf = biasF32) fixed (ushort* bb = biasBf16)
        {
            byte* bias = biasKind switch { "f32" => (byte*)bf, "bf16" => (byte*)bb, _ => null };
            var type = biasKind == "f32" ? ScalarType.Float32 : ScalarType.BFloat16;
            CpuGemm.Multiply(xp, rows, k, wp, n, bias, type, yp, threads);
        }
        for (int m = 0; m < rows; m++)
            for (int j = 0; j < n; j++)
            {
                double exact = biasKind switch { "f32" => biasF32[j], "bf16" => KernelSupport.Bf16ToFloat(biasBf16[j]), _ => 0 };
                double magnitude = Math.Abs(exact);
                for (int i = 0; i < k; i++)
                {
                    double p = (double)KernelSupport.Bf16ToFloat(x[m * k + i]) * KernelSupport.Bf16ToFloat(w[j * k + i]);
                    exact += p;
                    magnitude += Math.Abs(p);
                }
                float got = KernelSupport.Bf16ToFloat(y[m * n + j]);
                // One bf16 rounding (half an ulp: 2⁻⁹ relative) plus fp32 summation error.
                double allowed = Math.Abs(exact) / 256 + 1e-5 * magnitude;
                Assert.True(Math.Abs(got - exact) <= allowed, $"[{m}, {j}]: {got} vs {exact}");
            }
    }

    [Fact]
    public void LinearAgreesWithLibtorchAndLeavesOtherShapesToIt()
    {
        if (!Bf16GemmKernel.IsSupported) return;
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = randn(2, 40, 256).to(ScalarType.BFloat16);
        var w = (randn(72, 256) * 0.1).to(ScalarType.BFloat16);
        var b = randn(72).to(ScalarType.BFloat16);
        bool before = CpuGemm.Enabled;
        try
        {
            CpuGemm.Enabled = true;
            using var ours = CpuGemm.TryLinear(x, w, b);
            Assert.NotNull(ours);
            Assert.Equal(new long[] { 2, 40, 72 }, ours!.shape);
            var reference = nn.functional.linear(x.to(ScalarType.Float32), w.to(ScalarType.Float32), b.to(ScalarType.Float32));
            var error = (ours.to(ScalarType.Float32) - reference).abs().max().item<float>();
            var scale = reference.abs().max().item<float>();
            Assert.True(error <= scale / 128, $"max error {error} at scale {scale}");

            Assert.Null(CpuGemm.TryLinear(x[.., ..8], w, b)); // 16 rows: the decode kernels' size
            Assert.Null(CpuGemm.TryLinear(x.to(ScalarType.Float32), w, null)); // input and weights of different dtypes
            Assert.Null(CpuGemm.TryLinear(x[.., .., ..240], w[.., ..240].contiguous(), null)); // k not a multiple of 32
            CpuGemm.Enabled = false;
            Assert.Null(CpuGemm.TryLinear(x, w, b));
        }
        finally { CpuGemm.Enabled = before; }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 40, 64, 96)]
    [InlineData(ScalarType.Float16, 45, 50, 96)] // partial tiles of both operands
    [InlineData(ScalarType.Float32, 130, 25, 4608)] // two input chunks, GLM-4's dense_4h_to_h width
    public void Fp32AndFp16ProductsEqualTheExactSumsRoundedOnce(ScalarType dtype, int rows, int n, int k)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        using var scope = NewDisposeScope();
        manual_seed(rows + n);
        var x = randn(rows, k).to(dtype);
        var w = (randn(n, k) * 0.1).to(dtype);
        var b = randn(n).to(dtype);
        bool before = CpuGemm.Enabled;
        try
        {
            CpuGemm.Enabled = true;
            using var ours = CpuGemm.TryLinear(x, w, b);
            Assert.NotNull(ours);
            Assert.Equal(dtype, ours!.dtype);
            var x64 = x.to(ScalarType.Float64);
            var w64 = w.to(ScalarType.Float64);
            var exact = x64.matmul(w64.t()) + b.to(ScalarType.Float64);
            var magnitude = x64.abs().matmul(w64.abs().t()) + b.to(ScalarType.Float64).abs();
            // fp32: summation error only; fp16: plus one rounding of the result (half an ulp, 2⁻¹¹ relative).
            var allowed = magnitude * 1e-6 + (dtype == ScalarType.Float16 ? exact.abs() / 2048 : zeros_like(exact));
            var error = (ours.to(ScalarType.Float64) - exact).abs();
            Assert.True((error <= allowed).all().item<bool>(), $"max error {error.max().item<double>()}");
        }
        finally { CpuGemm.Enabled = before; }
    }

    [Fact]
    public void Int8LayersGiveTheBitsOfTheirDequantizedMatrix()
    {
        if (!Bf16GemmKernel.IsSupported) return;
        using var scope = NewDisposeScope();
        manual_seed(4);
        var x = randn(1, 50, 128).to(ScalarType.BFloat16);
        var (q, scale) = Glm.Engine.Modeling.Quantization.Int8Quantizer.Quantize(randn(61, 128) * 0.1); // 61 rows: a partial tile
        var b = randn(61).to(ScalarType.BFloat16);
        var dequantized = Glm.Engine.Modeling.Quantization.Int8Quantizer.Dequantize(q, scale, ScalarType.BFloat16);
        using var fused = CpuGemm.TryQuantizedLinear(x, q, scale, b);
        using var reference = CpuGemm.TryLinear(x, dequantized, b);
        Assert.NotNull(fused);
        Assert.True(fused!.eq(reference!).all().item<bool>(), "the fused int8 path differs from multiplying the dequantized matrix");
        Assert.Null(CpuGemm.TryQuantizedLinear(x[.., ..16], q, scale, b)); // decode sizes: the int8 GEMV
    }

    [Theory]
    [InlineData("glm4", "fp32", 1e-5)] // (at k ≤ 128 libtorch also sums in input order, so these often agree to the bit)
    [InlineData("glm4", "bf16", 0.05)]
    [InlineData("glm4", "fp16", 0.01)]
    [InlineData("glm", "fp32", 1e-5)] // the original GLM layout's layers go through the same GEMM
    public void PromptLogitsMatchTheLibtorchPath(string layout, string dtype, double tolerance)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        int[] prompt = Enumerable.Range(0, 40).Select(i => 8 + i * 7 % 60).ToArray(); // 40 rows: the prompt GEMM's size
        using var model = layout == "glm"
            ? GlmModel.FromWeights(GlmBlockTestSupport.TinyConfig(), new InMemoryWeights(GlmBlockTestSupport.RandomTensors(GlmBlockTestSupport.TinyConfig(), 5)),
                null, new GlmLoadOptions { DType = dtype, Device = "cpu" }, "test")
            : GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = dtype, Seed = 5, Device = "cpu" });
        bool before = CpuGemm.Enabled;
        try
        {
            CpuGemm.Enabled = true;
            long before0 = CpuGemm.ProductsRun;
            var ours = model.ComputeLogits(prompt);
            Assert.True(CpuGemm.ProductsRun - before0 >= 4 * model.Config.NumLayers, "the prompt's linear layers did not run here");
            CpuGemm.Enabled = false;
            long before1 = CpuGemm.ProductsRun;
            var reference = model.ComputeLogits(prompt);
            Assert.Equal(before1, CpuGemm.ProductsRun);
            double difference = ChatGlmModelTests.MaxRelativeDifference(ours, reference);
            Assert.True(difference <= tolerance, $"max relative difference {difference}");
        }
        finally { CpuGemm.Enabled = before; }
    }

    private static ushort[] RandomBf16(Random rng, int count, double range) =>
        Enumerable.Range(0, count).Select(_ => KernelSupport.FloatToBf16((float)((rng.NextDouble() * 2 - 1) * range))).ToArray();
}
