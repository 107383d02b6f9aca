using System.Runtime;

namespace Glm.Engine.Diagnostics;

/// <summary>
/// Warm-up for the benchmarks: repeats a run until the JIT has settled. .NET compiles a method quickly first and again,
/// optimised, on a background thread once it is hot; in a fresh process that thread took 70–110 ms of CPU during the first
/// timed 128-token prompt of glm4-bench, on one of the two cores the prompt runs on (prefill 310–336 → 338–370 tok/s with
/// DOTNET_TieredCompilation=0). A run counts as quiet when the JIT spent under <see cref="QuietMilliseconds"/> during it and
/// the 200 ms after it (the runtime waits 100 ms without new compilations before promoting hot methods); a few small methods
/// still compile on every run, hence a threshold rather than none (glm4-bench settled after 3–6 runs).
/// </summary>
public static class JitWarmUp
{
    /// <summary>Most runs <see cref="Run"/> makes while the JIT is still compiling.</summary>
    public const int MaxRuns = 8;

    /// <summary>JIT time per run below which the JIT counts as settled.</summary>
    public const double QuietMilliseconds = 5;

    /// <summary>Calls <paramref name="run"/>(index) until a run is quiet or <see cref="MaxRuns"/> were made; returns the runs made.</summary>
    public static int Run(Action<int> run, CancellationToken ct = default)
    {
        for (int i = 0; i < MaxRuns; i++)
        {
            var compiling = JitInfo.GetCompilationTime();
            bool Quiet() => (JitInfo.GetCompilationTime() - compiling).TotalMilliseconds < QuietMilliseconds;
            run(i);
            ct.ThrowIfCancellationRequested();
            if (!Quiet()) continue;
            Thread.Sleep(200); // time for the background promotions a quiet run still triggers
            if (Quiet()) return i + 1;
        }
        return MaxRuns;
    }
}
