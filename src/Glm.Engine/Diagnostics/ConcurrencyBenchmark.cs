using System.Diagnostics;
using Glm.Engine.Generation;

namespace Glm.Engine.Diagnostics;

/// <summary>What <see cref="ConcurrencyBenchmark"/> measured for one number of concurrent streams.</summary>
public sealed record ConcurrencyResult
{
    /// <summary>Concurrent streams (requests submitted together to one <see cref="BatchScheduler"/>).</summary>
    public required int Streams { get; init; }
    /// <summary>Tokens decoded per second over all streams, from the moment every stream has its first token to the last token.</summary>
    public required double AggregateDecodeTokensPerSecond { get; init; }
    /// <summary><see cref="AggregateDecodeTokensPerSecond"/> ÷ <see cref="Streams"/>: the decode speed each stream sees.</summary>
    public double PerStreamDecodeTokensPerSecond => AggregateDecodeTokensPerSecond / Streams;
    /// <summary>All generated tokens ÷ the time from submission to the last token (prefills included).</summary>
    public required double EndToEndTokensPerSecond { get; init; }
    /// <summary>Mean time from submission to a stream's first token.</summary>
    public required TimeSpan MeanTimeToFirstToken { get; init; }
    /// <summary>
    /// Decoded tokens per second of process CPU time over the same window as <see cref="AggregateDecodeTokensPerSecond"/>:
    /// less sensitive than wall time to other jobs taking the cores (spinning worker threads still count).
    /// </summary>
    public required double DecodeTokensPerCpuSecond { get; init; }
    /// <summary>Mean rows per batched decode step (as the scheduler counted them).</summary>
    public required double MeanBatch { get; init; }
    /// <summary>With several sweeps (<see cref="BenchmarkSettings.Repeats"/>): <see cref="AggregateDecodeTokensPerSecond"/> of
    /// every sweep, in order; the other figures are those of the sweep with the median aggregate rate. Otherwise empty.</summary>
    public IReadOnlyList<double> AggregateSamples { get; init; } = [];
}

/// <summary>
/// <c>glm bench --concurrency N</c>: N streams, each with a random prompt of the bench's length, decode greedily through one
/// <see cref="BatchScheduler"/>; reports aggregate and per-stream decode tokens/s.
/// </summary>
public static class ConcurrencyBenchmark
{
    /// <summary>Runs one measurement per entry of <paramref name="streams"/> (after a warm-up of every stream count until the
    /// JIT has settled), in the given order; with <see cref="BenchmarkSettings.Repeats"/> sweeps, the median one per entry.</summary>
    public static IReadOnlyList<ConcurrencyResult> Run(GlmModel model, BenchmarkSettings settings, IReadOnlyList<int> streams,
        IProgress<string>? progress = null, CancellationToken ct = default)
    {
        if (settings.PromptTokens < 1 || settings.NewTokens < 2 || settings.Repeats < 1)
            throw new GlmException($"bench --concurrency needs --prompt-tokens ≥ 1, --new-tokens ≥ 2 and --repeat ≥ 1 (got {settings.PromptTokens}, {settings.NewTokens}, {settings.Repeats}).");
        if (streams.Count == 0 || streams.Any(n => n < 1))
            throw new GlmException($"--concurrency takes stream counts ≥ 1 (got {string.Join(",", streams)}).");
        int context = settings.PromptTokens + settings.NewTokens;
        if (context > model.MaxContext)
            throw new GlmException($"{settings.PromptTokens} prompt + {settings.NewTokens} new tokens exceed the model's context of {model.MaxContext}.");

        model.MapWeightsOntoHugePages(); // as the single-stream benchmark: nothing timed while a background mapping runs
        progress?.Report("warming up");
        // Every stream count of the sweep (their batch shapes run different kernels), until the JIT has settled.
        JitWarmUp.Run(_ =>
        {
            foreach (int n in streams.Distinct()) Measure(model, n, Math.Min(settings.PromptTokens, 16), 4, ct);
        }, ct);
        // Several sweeps run interleaved (1, 16, 1, 16, …), so each stream count sees the same drift of the machine's speed.
        var runs = streams.Select(_ => new List<ConcurrencyResult>()).ToArray();
        for (int sweep = 0; sweep < settings.Repeats; sweep++)
            for (int i = 0; i < streams.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report($"{streams[i]} stream(s): prompt {settings.PromptTokens} tokens, decode {settings.NewTokens} tokens each"
                    + (settings.Repeats > 1 ? $" (sweep {sweep + 1} of {settings.Repeats})" : ""));
                runs[i].Add(Measure(model, streams[i], settings.PromptTokens, settings.NewTokens, ct));
            }
        if (settings.Repeats == 1) return runs.Select(r => r[0]).ToList();
        return runs.Select(r => r.OrderBy(x => x.AggregateDecodeTokensPerSecond).ElementAt(r.Count / 2) with
        {
            AggregateSamples = r.Select(x => x.AggregateDecodeTokensPerSecond).ToList(),
        }).ToList();
    }

    /// <summary>Aggregate rate of <paramref name="r"/> over <paramref name="single"/>'s (the one-stream row of the same run): the
    /// median of each sweep's own ratio when there were several sweeps (a sweep's measurements are minutes apart at most),
    /// else the one ratio.</summary>
    public static double RatioTo(ConcurrencyResult r, ConcurrencyResult single) =>
        r.AggregateSamples.Count < 2
            ? r.AggregateDecodeTokensPerSecond / single.AggregateDecodeTokensPerSecond
            : DecodeBenchmark.Median(r.AggregateSamples.Zip(single.AggregateSamples, (n, one) => n / one));

    private static ConcurrencyResult Measure(GlmModel model, int streams, int promptTokens, int newTokens, CancellationToken ct)
    {
        var rng = new Random(1234);
        var prompts = Enumerable.Range(0, streams)
            .Select(_ => Enumerable.Range(0, promptTokens).Select(_ => rng.Next(model.Config.VocabSize)).ToArray()).ToArray();
        var options = new GenerationOptions { MaxNewTokens = newTokens, StopTokenIds = Array.Empty<int>() };
        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = streams, MaxContext = promptTokens + newTokens });
        long start = Stopwatch.GetTimestamp();
        var runs = prompts.Select(p => Consume(scheduler.GenerateAsync(p, options, ct))).ToArray();
        Task.WaitAll(runs, ct);
        var r = runs.Select(t => t.Result).ToArray();
        long allStarted = r.Max(x => x.First), end = r.Max(x => x.Last);
        var cpuAtAllStarted = r.MaxBy(x => x.First).FirstCpu;
        var cpuAtEnd = r.MaxBy(x => x.Last).LastCpu;
        // Every stream is admitted before the first decode step, so each has exactly one token (its prefill's) before allStarted.
        double decodeSeconds = Stopwatch.GetElapsedTime(allStarted, end).TotalSeconds;
        return new ConcurrencyResult
        {
            Streams = streams,
            AggregateDecodeTokensPerSecond = r.Sum(x => x.Count - 1) / decodeSeconds,
            DecodeTokensPerCpuSecond = r.Sum(x => x.Count - 1) / (cpuAtEnd - cpuAtAllStarted).TotalSeconds,
            EndToEndTokensPerSecond = r.Sum(x => x.Count) / Stopwatch.GetElapsedTime(start, end).TotalSeconds,
            MeanTimeToFirstToken = TimeSpan.FromSeconds(r.Average(x => Stopwatch.GetElapsedTime(start, x.First).TotalSeconds)),
            MeanBatch = scheduler.DecodeSteps == 0 ? 0 : scheduler.DecodedRows / (double)scheduler.DecodeSteps,
        };
    }

    private static async Task<(long First, TimeSpan FirstCpu, long Last, TimeSpan LastCpu, int Count)> Consume(IAsyncEnumerable<GenerationChunk> stream)
    {
        long first = 0, last = 0;
        TimeSpan firstCpu = default;
        int count = 0;
        using var process = Process.GetCurrentProcess();
        await foreach (var c in stream.ConfigureAwait(false))
        {
            if (c.TokenId < 0) continue;
            last = Stopwatch.GetTimestamp();
            if (count++ == 0)
            {
                first = last;
                process.Refresh();
                firstCpu = process.TotalProcessorTime;
            }
        }
        process.Refresh();
        return (first, firstCpu, last, process.TotalProcessorTime, count);
    }
}
