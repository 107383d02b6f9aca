using System.Diagnostics;
using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Diagnostics;

/// <summary>Measures the machine's limits in the same process as a benchmark, so results can be stated as fractions of them.</summary>
public static class MachineProbe
{
    /// <summary>
    /// Read bandwidth in GB/s: the best of several full reductions (<c>sum</c>) over a buffer much larger than the caches.
    /// </summary>
    public static double MeasureReadBandwidth(long bytes = 1L << 30, int repeats = 5, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        using var inference = torch.inference_mode();
        using var buffer = torch.ones(bytes / sizeof(float), dtype: ScalarType.Float32, device: device ?? torch.CPU);
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            using var s = buffer.sum();
            _ = s.item<float>();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return bytes / best / 1e9;
    }

    /// <summary>Matrix-multiply throughput in GFLOP/s for an [m, k] × [k, n] product in <paramref name="dtype"/> (best of a few).</summary>
    public static double MeasureGemm(int m, int k, int n, ScalarType dtype, double seconds = 1.0, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        using var inference = torch.inference_mode();
        using var a = torch.randn(m, k, dtype: ScalarType.Float32, device: device ?? torch.CPU).to(dtype);
        using var w = torch.randn(n, k, dtype: ScalarType.Float32, device: device ?? torch.CPU).to(dtype);
        using (var warm = nn.functional.linear(a, w)) { }
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            using var y = nn.functional.linear(a, w);
            using var first = y[0, 0];
            _ = first.ToSingle(); // any dtype
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        } while (total.Elapsed.TotalSeconds < seconds);
        return 2.0 * m * k * n / best / 1e9;
    }

    /// <summary>
    /// The CPU's bf16 multiply-add ceiling in GFLOP/s: <paramref name="threads"/> cores each running independent
    /// <c>vdpbf16ps</c> chains on registers at once (~0.1 s rounds), i.e. what no bf16 GEMM on these cores can
    /// exceed; NaN where the CPU has no AVX512_BF16. Cores that share a clock budget slow each other down, so this is measured
    /// with all of them busy, as a prefill keeps them; best of five rounds, because a VM sometimes takes a core away for part of one
    /// (a 2-vCPU run once read half the usual rate).
    /// </summary>
    public static double MeasureBf16Peak(int threads, double secondsPerRound = 0.1)
    {
        if (!Bf16DotKernel.RunPeakLoop(1)) return double.NaN;
        threads = Math.Max(1, threads);
        const long Calibration = 1L << 20; // ≈ 4 ms on a 3.5 GHz core
        var sw = Stopwatch.StartNew();
        Bf16DotKernel.RunPeakLoop(Calibration);
        long iterations = Math.Max(Calibration, (long)(Calibration / Math.Max(1e-6, sw.Elapsed.TotalSeconds) * secondsPerRound));
        double best = 0;
        for (int round = 0; round < 5; round++)
        {
            var elapsed = new double[threads];
            KernelWorkers.Run(threads, t =>
            {
                var own = Stopwatch.StartNew();
                Bf16DotKernel.RunPeakLoop(iterations);
                elapsed[t] = own.Elapsed.TotalSeconds;
            });
            best = Math.Max(best, threads * iterations * (double)Bf16DotKernel.PeakFlopsPerIteration / elapsed.Max() / 1e9);
        }
        return best;
    }
}
