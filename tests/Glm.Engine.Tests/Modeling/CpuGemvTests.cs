using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Tests.Modeling;

public class CpuGemvTests
{
    [Theory]
    [InlineData(ScalarType.Float32, 1, 1e-5)]
    [InlineData(ScalarType.Float32, 3, 1e-5)]
    [InlineData(ScalarType.BFloat16, 1, 1e-2)]
    [InlineData(ScalarType.BFloat16, 2, 1e-2)]
    [InlineData(ScalarType.BFloat16, 4, 1e-2)]
    [InlineData(ScalarType.Float16, 1, 2e-3)]
    [InlineData(ScalarType.Float16, 4, 2e-3)]
    public void MatchesLibtorchLinear(ScalarType dtype, int rows, double tolerance)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!CpuGemv.Enabled) return; // no AVX-512: the kernel is never used
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(rows);
        var w = randn(300, 96).to(dtype);
        var b = randn(300).to(dtype);
        var x = randn(1, rows, 96).to(dtype);
        var expected = F.linear(x.to(ScalarType.Float32), w.to(ScalarType.Float32), b.to(ScalarType.Float32));
        var actual = CpuGemv.TryLinear(x, w, b);
        Assert.NotNull(actual);
        Assert.Equal(new long[] { 1, rows, 300 }, actual!.shape);
        Assert.Equal(dtype, actual.dtype);
        double err = (actual.to(ScalarType.Float32) - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(err < tolerance, $"relative error {err}");
    }

    [Fact]
    public void HalfPrefillRunsInFp32AndRoundsOnce()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(11);
        var w = randn(300, 96).to(ScalarType.Float16);
        var b = randn(300).to(ScalarType.Float16);
        var x = randn(2, 9, 96).to(ScalarType.Float16); // 18 rows: beyond the GEMV kernel, the prefill path
        using var layer = new Glm.Engine.Modeling.Weights(w, b); // takes over w and b: read them back from the layer
        (w, b) = (layer.Weight, layer.Bias!);
        var actual = layer.Linear(x);
        Assert.Equal(new long[] { 2, 9, 300 }, actual.shape);
        Assert.Equal(ScalarType.Float16, actual.dtype);
        // The exact product of the fp16 values, rounded once: at most half an fp16 step from it (fp32 summation aside).
        var exact = F.linear(x.to(ScalarType.Float64), w.to(ScalarType.Float64), b.to(ScalarType.Float64));
        var error = (actual.to(ScalarType.Float64) - exact).abs();
        var halfStep = exact.abs() * (1.0 / 2048) + 1e-7;
        Assert.True(error.le(halfStep * 1.01).all().item<bool>(), $"max error {error.max().item<double>()}");
    }

    [Fact]
    public void WidensSubnormalHalfWeightsExactly()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!CpuGemv.Enabled) return;
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(5);
        var w = ((rand(8, 64) - 0.5f) * 1.2e-4f).to(ScalarType.Float16); // |w| < 6.1e-5: all subnormal halves
        var x = randn(1, 64);
        var expected = F.linear(x, w.to(ScalarType.Float32)); // fp32 output: only the summation order differs
        var actual = CpuGemv.TryLinear(x, w, null);
        Assert.NotNull(actual);
        double err = (actual! - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(err < 1e-5, $"relative error {err}");
    }

    [Fact]
    public void DeclinesWhatItDoesNotHandle()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        var w = randn(64, 96);
        Assert.Null(CpuGemv.TryLinear(randn(CpuGemv.MaxRows + 1, 96), w, null)); // a GEMM: libtorch is faster
        Assert.Null(CpuGemv.TryLinear(randn(1, 96).to(ScalarType.Float64), w.to(ScalarType.Float64), null)); // fp64 stays on libtorch
        Assert.Null(CpuGemv.TryLinear(randn(1, 40), randn(64, 40), null)); // K not a multiple of 32
    }
}
