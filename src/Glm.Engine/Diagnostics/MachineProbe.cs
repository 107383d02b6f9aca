using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
        return MeasureReadBandwidth(buffer, repeats);
    }

    /// <summary><see cref="MeasureReadBandwidth(long, int, Device?)"/> over a buffer the caller keeps: a benchmark probes several
    /// times, on a buffer moved onto 2 MiB pages (<see cref="HugePages"/>) when the weights are, which takes seconds per GiB.</summary>
    public static double MeasureReadBandwidth(Tensor buffer, int repeats = 5)
    {
        using var inference = torch.inference_mode();
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            using var s = buffer.sum();
            _ = s.item<float>();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return buffer.NumberOfElements * buffer.ElementSize / best / 1e9;
    }

    /// <summary>
    /// Matrix-multiply throughput in GFLOP/s for an [m, k] × [k, n] product in <paramref name="dtype"/> (best of a few):
    /// libtorch's <c>F.linear</c>, or with <paramref name="engine"/> the path the model's linear layers take
    /// (<see cref="Modeling.Kernels.CpuGemm"/> for prompts, the decode kernels for ≤ 16 rows, libtorch otherwise).
    /// </summary>
    public static double MeasureGemm(int m, int k, int n, ScalarType dtype, double seconds = 1.0, Device? device = null, bool engine = false)
    {
        TorchRuntime.EnsureInitialized();
        using var inference = torch.inference_mode();
        using var a = torch.randn(m, k, dtype: ScalarType.Float32, device: device ?? torch.CPU).to(dtype);
        // The layer takes over the weight tensor (a Parameter), so both paths read it through the layer.
        using var layer = new Modeling.Weights(torch.randn(n, k, dtype: ScalarType.Float32, device: device ?? torch.CPU).to(dtype));
        Func<Tensor> product = engine ? () => layer.Linear(a) : () => nn.functional.linear(a, layer.Weight);
        using (var warm = product()) { }
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            using var y = product();
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
    public static double MeasureBf16Peak(int threads, double secondsPerRound = 0.1) =>
        Bf16DotKernel.RunPeakLoop(1) ? MeasurePeak(threads, secondsPerRound, n => Bf16DotKernel.RunPeakLoop(n), Bf16DotKernel.PeakFlopsPerIteration) : double.NaN;

    /// <summary>
    /// The fp32 multiply-add ceiling in GFLOP/s (what the fp32 and fp16 prefill GEMMs run on): 12 independent 512-bit FMA
    /// chains per thread, measured as <see cref="MeasureBf16Peak"/>; NaN without AVX-512.
    /// </summary>
    public static double MeasureFp32Peak(int threads, double secondsPerRound = 0.1) =>
        Avx512F.IsSupported ? MeasurePeak(threads, secondsPerRound, Fp32FmaLoop, 12 * 16 * 2) : double.NaN;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Fp32FmaLoop(long iterations)
    {
        var x = Vector512.Create(1e-7f);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default,
            a6 = default, a7 = default, a8 = default, a9 = default, a10 = default, a11 = default;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(x, x, a0); a1 = Avx512F.FusedMultiplyAdd(x, x, a1);
            a2 = Avx512F.FusedMultiplyAdd(x, x, a2); a3 = Avx512F.FusedMultiplyAdd(x, x, a3);
            a4 = Avx512F.FusedMultiplyAdd(x, x, a4); a5 = Avx512F.FusedMultiplyAdd(x, x, a5);
            a6 = Avx512F.FusedMultiplyAdd(x, x, a6); a7 = Avx512F.FusedMultiplyAdd(x, x, a7);
            a8 = Avx512F.FusedMultiplyAdd(x, x, a8); a9 = Avx512F.FusedMultiplyAdd(x, x, a9);
            a10 = Avx512F.FusedMultiplyAdd(x, x, a10); a11 = Avx512F.FusedMultiplyAdd(x, x, a11);
        }
        Sink = (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).GetElement(0); // keeps the loop alive
    }

    private static float Sink;

    private static double MeasurePeak(int threads, double secondsPerRound, Action<long> loop, long flopsPerIteration)
    {
        threads = Math.Max(1, threads);
        const long Calibration = 1L << 20; // ≈ 4 ms on a 3.5 GHz core
        var sw = Stopwatch.StartNew();
        loop(Calibration);
        long iterations = Math.Max(Calibration, (long)(Calibration / Math.Max(1e-6, sw.Elapsed.TotalSeconds) * secondsPerRound));
        double best = 0;
        for (int round = 0; round < 5; round++)
        {
            var elapsed = new double[threads];
            KernelWorkers.Run(threads, t =>
            {
                var own = Stopwatch.StartNew();
                loop(iterations);
                elapsed[t] = own.Elapsed.TotalSeconds;
            });
            best = Math.Max(best, threads * iterations * (double)flopsPerIteration / elapsed.Max() / 1e9);
        }
        return best;
    }
}
