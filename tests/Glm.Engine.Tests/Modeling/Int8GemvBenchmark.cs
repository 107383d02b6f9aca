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
/// Int8GemvBenchmark --logger "console;verbosity=detailed"</c>; GLM_BENCH_THREADS / GLM_BENCH_ROWS (e.g. "1,2") pick the
/// configurations (default 1 and 2 threads, 1 and 4 rows).
/// </summary>
[Collection("KernelSwitches")] // flips CpuInt8Gemv.Int8Activations
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
            foreach (int threads in Configured("GLM_BENCH_THREADS", 1, 2))
            foreach (int rows in Configured("GLM_BENCH_ROWS", 1, 4))
            {
                CpuInt8Gemv.Threads = CpuGemv.Threads = threads;
                var x = torch.randn(1, rows, K).to(ScalarType.BFloat16);
                var times = new Dictionary<string, List<double>> { ["int8, int8 activations (VNNI)"] = [], ["int8, exact fp32 activations"] = [], ["bf16"] = [] };
                var perCpu = times.Keys.ToDictionary(key => key, _ => new List<double>());
                for (int rep = 0; rep <= Repeats; rep++) // rep 0 warms up (JIT, page faults)
                {
                    foreach (bool act in new[] { true, false })
                    {
                        CpuInt8Gemv.Int8Activations = act;
                        var (s, cpu) = Time(() => { foreach (var (q, sc) in int8) CpuInt8Gemv.TryLinear(x, q, sc, null)!.Dispose(); });
                        string key = act ? "int8, int8 activations (VNNI)" : "int8, exact fp32 activations";
                        if (rep > 0) { times[key].Add(CyclesPerTiming * int8Bytes / s / 1e9); perCpu[key].Add(CyclesPerTiming * int8Bytes / cpu / 1e9); }
                    }
                    var (t, tcpu) = Time(() => { foreach (var w in bf16) CpuGemv.TryLinear(x, w, null)!.Dispose(); });
                    if (rep > 0) { times["bf16"].Add(CyclesPerTiming * bf16Bytes / t / 1e9); perCpu["bf16"].Add(CyclesPerTiming * bf16Bytes / tcpu / 1e9); }
                }
                foreach (var (name, gbs) in times)
                {
                    gbs.Sort();
                    var c = perCpu[name];
                    c.Sort();
                    output.WriteLine($"{threads} thread(s), {rows} row(s), {name}: median {gbs[gbs.Count / 2]:F1} GB/s, best {gbs[^1]:F1}, worst {gbs[0]:F1} " +
                                     $"({string.Join(" ", gbs.Select(g => g.ToString("F1")))}); per CPU-second: median {c[c.Count / 2]:F1} GB, best {c[^1]:F1}");
                }
            }
        }
        finally { CpuInt8Gemv.Int8Activations = saved; CpuInt8Gemv.Threads = CpuGemv.Threads = 0; }
    }

    /// <summary>The comma-separated integers in environment variable <paramref name="name"/>, else <paramref name="defaults"/>.</summary>
    private static int[] Configured(string name, params int[] defaults) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v.Split(',').Select(int.Parse).ToArray() : defaults;

    /// <summary>
    /// Wall seconds and process CPU seconds for <see cref="CyclesPerTiming"/> passes over the matrix set. Bytes per CPU-second is
    /// what a core streams while it runs: steadier than wall time when other jobs take the cores (it still shares their memory
    /// bandwidth, and spinning workers would count, which .NET's thread pool barely does at this grain).
    /// </summary>
    private static (double Wall, double Cpu) Time(Action cycle)
    {
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < CyclesPerTiming; i++) cycle();
        double wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu0).TotalSeconds);
    }
}
