using Glm.Engine.Diagnostics;
using Glm.Engine.Modeling;
using Glm.Engine.Modeling.Kernels;

namespace Glm.Engine.Tests.Diagnostics;

/// <summary>The figures <c>glm bench</c> reads prefill against: its FLOP count and the measured compute peak.</summary>
public class MachineProbeTests
{
    [Fact]
    public void PrefillFlopsCountEveryLinearWeightOnceAndTheHeadForTheLastPositionOnly()
    {
        var c = ModelPresets.Get("glm4-bench");
        long h = c.HiddenSize, qkv = (long)(c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim, f = c.FfnHiddenSize;
        long perLayer = h * qkv + qkv + h * h + h * 2 * f + f * h + 2 * h; // QKV (+ bias), dense, gate/up, down, two norms
        long body = c.NumLayers * perLayer + h;                             // + the final norm
        long head = (long)c.VocabSize * h;
        Assert.Equal(534_877_696, body); // the 585,209,344 read per token, less the 32768 × 1536 head
        Assert.Equal(2 * body + 2 * head / 128, DecodeBenchmark.PrefillFlopsPerToken(c, 128));
        Assert.Equal(2 * body + 2 * head, DecodeBenchmark.PrefillFlopsPerToken(c, 1)); // one token: a decode step's work
    }

    [Fact]
    public void TheGemmProbeRunsInTheDtypeThePrefillGemmsUse()
    {
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, DecodeBenchmark.PrefillGemmType(TorchSharp.torch.ScalarType.Float16)); // widened for the call
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, DecodeBenchmark.PrefillGemmType(TorchSharp.torch.ScalarType.BFloat16));
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, DecodeBenchmark.PrefillGemmType(TorchSharp.torch.ScalarType.Float32));
    }

    [Fact]
    public void Bf16PeakIsAPlausibleRateWhereTheCpuHasAvx512Bf16()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        double peak = MachineProbe.MeasureBf16Peak(threads: 1, secondsPerRound: 0.02);
        if (!Bf16DotKernel.IsSupported)
        {
            Assert.True(double.IsNaN(peak));
            return;
        }
        // One core: 32 products per instruction at ≥ 1 instruction per 4 cycles of a ≥ 1 GHz clock, at most 4 per cycle at 6 GHz.
        Assert.InRange(peak, 16, 32 * 2 * 4 * 6.0);
    }

    [Fact]
    public void Fp32PeakIsAPlausibleRateWithAvx512()
    {
        double peak = MachineProbe.MeasureFp32Peak(threads: 1, secondsPerRound: 0.02);
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            Assert.True(double.IsNaN(peak));
            return;
        }
        // One core: at most 16 lanes × 2 FLOPs per FMA, 2 FMAs per cycle at 6 GHz. The lower bound only rules out a broken
        // probe: a Debug build (CI's) compiles the managed loop without optimisation (7 GFLOP/s there against 115 in Release).
        Assert.InRange(peak, 1, 16 * 2 * 2 * 6.0);
    }
}
