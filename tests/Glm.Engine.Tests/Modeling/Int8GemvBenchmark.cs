using System.Diagnostics;
using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>A fact that runs only when GLM_BENCH is set (benchmarks are slow and noisy on the 2-core CI host).</summary>
public sealed class GemvBenchFactAttribute : FactAttribute
{
    public GemvBenchFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("GLM_BENCH"))) Skip = "env GLM_BENCH not set; set GLM_BENCH=1 to run GEMV benchmarks";
    }
}

/// <summary>
/// Weight-streaming rate of the decode GEMVs on glm4-bench's MLP shapes (4608 × 1536 and 9216 × 1536), cycling through
/// ≈ 425 MB of matrices so every call reads from memory, not the 32 MiB L3: the int8 kernel with int8 activations (VNNI) and
/// with exact fp32 activations, back to back and interleaved, and the bf16 kernel on the same shapes for reference; on one
/// thread (what one core streams: shows a compute-bound loop even on a busy machine) and on two.
/// Run (Release, so the kernels are optimised): <c>GLM_BENCH=1 dotnet test tests/Glm.Engine.Tests -c Release --filter
/// Int8GemvBenchmark --logger "console;verbosity=detailed"</c>.
/// </summary>
[Collection("CpuInt8Gemv")] // flips CpuInt8Gemv.Int8Activations
public class Int8GemvBenchmark(ITestOutputHelper output)
{
    private const int K = 1536, Pairs = 20, Repeats = 9, CyclesPerTiming = 3;
    private static readonly int[] Outs = [4608, 9216];

    [GemvBenchFact]
    public void Int8AndBf16GemvGigabytesPerSecond()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(1);
        var int8 = new List<(Tensor Q, Tensor Scale)>();
        var bf16 = new List<Tensor>();
        for (int p = 0; p < Pairs; p++)
            foreach (int n in Outs)
            {
                int8.Add((torch.randint(-127, 128, new long[] { n, K }, dtype: ScalarType.Int8), torch.rand(n) * 0.01f));
                if (p < Pairs / 2) bf16.Add(torch.randn(n, K, dtype: ScalarType.BFloat16) * 0.02f);
            }
        long int8Bytes = int8.Sum(m => m.Q.NumberOfElements + 4 * m.Scale.NumberOfElements);
        long bf16Bytes = bf16.Sum(w => 2 * w.NumberOfElements);
        output.WriteLine($"{int8.Count} int8 matrices ({int8Bytes / 1e6:F0} MB), {bf16.Count} bf16 ({bf16Bytes / 1e6:F0} MB), k = {K}, " +
                         $"{torch.get_num_threads()} threads, AVX-VNNI {CpuInt8VnniGemv.IsSupported}");
        bool saved = CpuInt8Gemv.Int8Activations;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            foreach (int rows in new[] { 1, 4 })
            {
                CpuInt8Gemv.Threads = CpuGemv.Threads = threads;
                var x = torch.randn(1, rows, K).to(ScalarType.BFloat16);
                var times = new Dictionary<string, List<double>> { ["int8, int8 activations (VNNI)"] = [], ["int8, exact fp32 activations"] = [], ["bf16"] = [] };
                for (int rep = 0; rep <= Repeats; rep++) // rep 0 warms up (JIT, page faults)
                {
                    foreach (bool act in new[] { true, false })
                    {
                        CpuInt8Gemv.Int8Activations = act;
                        double s = Time(() => { foreach (var (q, sc) in int8) CpuInt8Gemv.TryLinear(x, q, sc, null)!.Dispose(); });
                        if (rep > 0) times[act ? "int8, int8 activations (VNNI)" : "int8, exact fp32 activations"].Add(CyclesPerTiming * int8Bytes / s / 1e9);
                    }
                    double t = Time(() => { foreach (var w in bf16) CpuGemv.TryLinear(x, w, null)!.Dispose(); });
                    if (rep > 0) times["bf16"].Add(CyclesPerTiming * bf16Bytes / t / 1e9);
                }
                foreach (var (name, gbs) in times)
                {
                    gbs.Sort();
                    output.WriteLine($"{threads} thread(s), {rows} row(s), {name}: median {gbs[gbs.Count / 2]:F1} GB/s, best {gbs[^1]:F1}, worst {gbs[0]:F1} " +
                                     $"({string.Join(" ", gbs.Select(g => g.ToString("F1")))})");
                }
            }
        }
        finally { CpuInt8Gemv.Int8Activations = saved; CpuInt8Gemv.Threads = CpuGemv.Threads = 0; }
    }

    /// <summary>Seconds for <see cref="CyclesPerTiming"/> passes over the matrix set (long enough to average out scheduling).</summary>
    private static double Time(Action cycle)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < CyclesPerTiming; i++) cycle();
        return sw.Elapsed.TotalSeconds;
    }
}
