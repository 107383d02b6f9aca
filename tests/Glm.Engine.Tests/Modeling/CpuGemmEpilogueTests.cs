using Glm.Engine.Modeling;
using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Modeling.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>The prompt GEMM's fused epilogues give the bits of the separate ops, and two workers those of one.</summary>
[Collection("KernelSwitches")] // flips CpuGemm.Enabled / FuseEpilogues
public unsafe class CpuGemmEpilogueTests
{
    [Theory]
    [InlineData("bf16", 40, 48, 64, true)] // whole 24-output units
    [InlineData("bf16", 130, 32, 96, true)] // a last unit of 8 outputs (staged stores, the zero-padded tail block), two chunks
    [InlineData("fp32", 45, 80, 64, true)] // 80 = 3 × 24 + 8
    [InlineData("fp16", 33, 64, 96, false)] // 64 = 2 × 24 + 16
    [InlineData("int8", 50, 48, 128, true)] // int8 weights, bf16 input
    public void SwiGluEpilogueGivesTheBitsOfTheSeparateOp(string kind, int rows, int ffn, int k, bool withBias)
    {
        if (!KernelsRun(kind)) return;
        using var scope = NewDisposeScope();
        manual_seed(rows + ffn);
        var (x, linear) = Layer(kind, rows, 2 * ffn, k, withBias);
        using var fused = linear(GemmEpilogue.SwiGlu(ffn));
        Assert.NotNull(fused);
        Assert.Equal(new long[] { 1, rows, ffn }, fused!.shape);
        using var product = linear(default);
        using var separate = CpuDecodeOps.TrySwiGlu(product!, ffn);
        AssertSameBits(separate!, fused);
        Assert.Null(linear(GemmEpilogue.SwiGlu(ffn - 8))); // ffn must halve the weight rows
    }

    [Fact]
    public void SwiGluEpilogueLeavesWidthsOffTheVectorLanesToTheSeparateOp()
    {
        if (!KernelsRun("bf16")) return;
        using var scope = NewDisposeScope();
        var (_, linear) = Layer("bf16", 20, 80, 64, true); // ffn 40: the separate op's scalar tail rounds exp differently
        Assert.Null(linear(GemmEpilogue.SwiGlu(40)));
    }

    [Theory]
    [InlineData("bf16", 40, 96, 64, true)]
    [InlineData("bf16", 130, 50, 96, false)] // a partial 16-output group (scalar stores), two chunks
    [InlineData("fp32", 45, 50, 64, true)]
    [InlineData("fp16", 33, 64, 96, true)]
    [InlineData("int8", 50, 61, 128, true)]
    public void ResidualEpilogueGivesTheBitsOfTheSeparateAdd(string kind, int rows, int n, int k, bool withBias)
    {
        if (!KernelsRun(kind)) return;
        using var scope = NewDisposeScope();
        manual_seed(rows * 3 + n);
        var (x, linear) = Layer(kind, rows, n, k, withBias);
        var residual = randn(1, rows, n).to(x.dtype);
        using var fused = linear(GemmEpilogue.AddTo(residual));
        Assert.NotNull(fused);
        using var product = linear(default);
        using var separate = CpuDecodeOps.TryAdd(residual, product!);
        AssertSameBits(separate!, fused!);
        Assert.Null(linear(GemmEpilogue.AddTo(randn(1, rows, n + 1).to(x.dtype)))); // a residual of another shape
        Assert.Null(linear(GemmEpilogue.AddTo(residual.to(ScalarType.Float64)))); // or dtype
    }

    [Fact]
    public void TwoWorkersGiveTheBitsOfOne()
    {
        // Three 48-row units of 4 blocks: the worker with one unit finishes first and runs blocks of the other's second unit
        // (their sums land in the owner's scratch), so the blocks of that unit are split between the workers.
        if (!Bf16GemmKernel.IsSupported) return;
        const int rows = 128, n = 144, k = 1536;
        long helped = CpuGemm.BlocksRunForOthers;
        var rng = new Random(9);
        ushort[] x = Bf16(rng, rows * k), w = Bf16(rng, n * k);
        var single = new ushort[rows * n];
        var pair = new ushort[rows * n];
        fixed (ushort* xp = x) fixed (ushort* wp = w) fixed (ushort* sp = single) fixed (ushort* pp = pair)
        {
            CpuGemm.Multiply(xp, rows, k, wp, n, null, ScalarType.BFloat16, sp, 1);
            for (int call = 0; call < 200; call++)
            {
                Array.Clear(pair);
                CpuGemm.Multiply(xp, rows, k, wp, n, null, ScalarType.BFloat16, pp, 2);
                Assert.True(single.AsSpan().SequenceEqual(pair),
                    $"call {call}: two workers differ from one ({CpuGemm.BlocksRunForOthers - helped} blocks run for the other worker so far)");
            }
        }
    }

    [Theory]
    [InlineData("bf16", false)]
    [InlineData("fp32", false)]
    [InlineData("bf16", true)] // sandwich norms: only SwiGLU fuses (the residual adds a normed output)
    public void PromptLogitsAreTheSameWithFusedEpilogues(string dtype, bool hfLayout)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        int[] prompt = Enumerable.Range(0, 40).Select(i => 8 + i * 7 % 60).ToArray();
        var config = ModelPresets.Get("glm4-tiny");
        if (hfLayout) config = config with { Layout = GlmLayout.HfGlm4 };
        using var model = GlmModel.CreateRandom(config, new GlmLoadOptions { DType = dtype, Seed = 6, Device = "cpu" });
        bool enabled = CpuGemm.Enabled, fuse = CpuGemm.FuseEpilogues;
        try
        {
            CpuGemm.Enabled = true;
            CpuGemm.FuseEpilogues = true;
            long before = CpuGemm.FusedEpiloguesRun;
            var fused = model.ComputeLogits(prompt);
            Assert.Equal((hfLayout ? 1 : 3) * config.NumLayers, CpuGemm.FusedEpiloguesRun - before);
            CpuGemm.FuseEpilogues = false;
            before = CpuGemm.FusedEpiloguesRun;
            var separate = model.ComputeLogits(prompt);
            Assert.Equal(before, CpuGemm.FusedEpiloguesRun);
            Assert.Equal(0, ChatGlmModelTests.MaxRelativeDifference(fused, separate));
        }
        finally
        {
            CpuGemm.Enabled = enabled;
            CpuGemm.FuseEpilogues = fuse;
        }
    }

    private static bool KernelsRun(string kind) =>
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported && (kind is "fp32" or "fp16" || Bf16GemmKernel.IsSupported);

    /// <summary>A random input [1, rows, k] and the engine GEMM of a random layer [n, k] applied to it with an epilogue.</summary>
    private static (Tensor X, Func<GemmEpilogue, Tensor?> Linear) Layer(string kind, int rows, int n, int k, bool withBias)
    {
        var dtype = kind switch { "fp32" => ScalarType.Float32, "fp16" => ScalarType.Float16, _ => ScalarType.BFloat16 };
        var x = randn(1, rows, k).to(dtype);
        var weight = randn(n, k) * 0.1;
        var bias = withBias ? randn(n).to(dtype) : null;
        if (kind == "int8")
        {
            var (q, scale) = Int8Quantizer.Quantize(weight);
            return (x, e => CpuGemm.TryQuantizedLinear(x, q, scale, bias, e));
        }
        var w = weight.to(dtype);
        return (x, e => CpuGemm.TryLinear(x, w, bias, e));
    }

    private static void AssertSameBits(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(expected.dtype, actual.dtype);
        // Bit patterns, so equal NaNs or signed zeros cannot hide a difference.
        byte[] a = expected.contiguous().bytes.ToArray(), b = actual.contiguous().bytes.ToArray();
        int differing = 0, size = (int)expected.ElementSize;
        for (int i = 0; i < a.Length; i += size) if (!a.AsSpan(i, size).SequenceEqual(b.AsSpan(i, size))) differing++;
        Assert.True(differing == 0, $"{differing} of {expected.NumberOfElements} outputs differ");
    }

    private static ushort[] Bf16(Random rng, int count) =>
        Enumerable.Range(0, count).Select(_ => KernelSupport.FloatToBf16((float)(rng.NextDouble() * 2 - 1))).ToArray();
}
