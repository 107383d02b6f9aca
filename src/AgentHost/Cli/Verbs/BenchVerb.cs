using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.Diagnostics;
using Glm.Engine.Modeling;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm bench</c>: prefill/decode speed against the machine's measured memory bandwidth.</summary>
internal static class BenchVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var promptTokens = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 128, Description = "Prompt length." };
        var newTokens = new Option<int>("--new-tokens") { DefaultValueFactory = _ => 256, Description = "Tokens to decode." };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "Prompts decoded together." };
        var concurrency = new Option<string?>("--concurrency")
        {
            Description = "Continuous batching: N concurrent streams (each with --prompt-tokens and --new-tokens) through one batch scheduler; "
                + "a comma list sweeps (e.g. 1,4,16). Prints aggregate and per-stream decode tok/s and the ratio to 1 stream.",
        };
        var repeat = new Option<int>("--repeat")
        {
            DefaultValueFactory = _ => 1,
            Description = "Timed runs (prefill and decode, each between two bandwidth probes): with more than one, prints the median and the range of each figure — steadier on a machine whose speed moves from minute to minute.",
        };
        var profile = new Option<bool>("--profile")
        {
            Description = "After the timed run, decode again with each part of the step timed (matrix products, norms, rotary, attention, …) and print where a token's time goes.",
        };
        var cmd = new Command("bench", "Measure prefill and decode tokens/s, time to first token, peak memory, the fraction of the decode roofline and prefill's fraction of the compute peak.");
        model.AddTo(cmd);
        cmd.Add(promptTokens);
        cmd.Add(newTokens);
        cmd.Add(batch);
        cmd.Add(concurrency);
        cmd.Add(repeat);
        cmd.Add(profile);
        cmd.SetAction((parse, ct) =>
        {
            var load = System.Diagnostics.Stopwatch.StartNew();
            using var glm = model.Load(parse);
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine(string.Format(inv, "model: {0}  layout: {1}  dtype: {2}  quantization: {7}  device: {3}  threads: {4}  parameters: {5:N0}  (loaded in {6:F1} s)",
                glm.Source, glm.Config.Layout, GlmModel.DTypeName(glm.DType), glm.Device, TorchSharp.torch.get_num_threads(),
                ModelPresets.ParameterCount(glm.Config), load.Elapsed.TotalSeconds,
                glm.Quantization == GlmQuantization.Int8 ? $"int8 (decode: {GlmQuantizationNames.DecodeActivations})" : GlmQuantizationNames.Name(glm.Quantization)));
            var settings = new BenchmarkSettings(parse.GetValue(promptTokens), parse.GetValue(newTokens), parse.GetValue(batch), Profile: parse.GetValue(profile),
                Repeats: parse.GetValue(repeat));
            if (parse.GetValue(concurrency) is { } list)
            {
                DecodeProfiler.Enabled = settings.Profile;
                RunConcurrency(console, glm, settings, ParseCounts(list), ct);
                if (settings.Profile)
                {
                    DecodeProfiler.Enabled = false;
                    console.Out.WriteLine("profile of the decode steps of the whole sweep (every stream count; prefills excluded), seconds per section:");
                    foreach (var (section, seconds, calls) in DecodeProfiler.Snapshot())
                        console.Out.WriteLine(string.Format(inv, "  {0,-26} {1,9:F3} s {2,10} calls", section, seconds, calls));
                }
                return Task.FromResult(0);
            }
            var r = DecodeBenchmark.Run(glm, settings, new SyncProgress<string>(s => console.Error.WriteLine($"... {s}")), ct);
            console.Out.WriteLine(string.Format(inv, "prefill: {0:F1} tok/s{4}   decode: {1:F2} tok/s{5}   time to first token: {2:F0} ms   peak memory: {3:F2} GiB",
                r.PrefillTokensPerSecond, r.DecodeTokensPerSecond, r.TimeToFirstToken.TotalMilliseconds, r.PeakWorkingSetBytes / (double)(1L << 30),
                Spread(r.PrefillSamples, "F1"), Spread(r.DecodeSamples, "F2")));
            string probes = r.ReadBandwidthSamplesGBs.Count == 2
                ? " (larger of " + string.Join(" before and ", r.ReadBandwidthSamplesGBs.Select(x => x.ToString("F1", inv))) + " after the decode)"
                : r.ReadBandwidthSamplesGBs.Count > 2
                    ? $" (median over the runs of the larger probe beside each; probes {string.Join(", ", r.ReadBandwidthSamplesGBs.Select(x => x.ToString("F1", inv)))})"
                    : "";
            console.Out.WriteLine(string.Format(inv, "read bandwidth: {0:F1} GB/s{5}   weights per token: {1:F1} MB{4}   roofline: {2:F2} tok/s   decode = {3:P1} of roofline{6}",
                r.ReadBandwidthGBs, r.WeightBytesPerToken / 1e6, r.RooflineStepsPerSecond, r.FractionOfRoofline,
                glm.Quantization == GlmQuantization.Int8 ? " (int8 weights + fp32 scales)" : "", probes,
                r.FractionSamples.Count > 1 ? " (median of each run against its own probes; " + string.Join(", ", r.FractionSamples.Select(x => x.ToString("P1", inv))) + ")" : ""));
            if (!double.IsNaN(r.GemmGFlops))
                console.Out.WriteLine(string.Format(inv, "prefill compute: {0:F1} GFLOP/s in the linear layers{1}   GEMM [{2}×{3}]·[{3}×{4}]: engine {8} {9:F1} GFLOP/s, libtorch {5} {6:F1} GFLOP/s (prefill = {7:P1} of the engine's)",
                    r.PrefillGFlops,
                    !double.IsNaN(r.Bf16PeakGFlops)
                        ? string.Format(inv, " = {0:P1} of the bf16 peak ({1:F1} GFLOP/s: vdpbf16ps on {2} threads)",
                            r.PrefillGFlops / r.Bf16PeakGFlops, r.Bf16PeakGFlops, TorchSharp.torch.get_num_threads())
                        : double.IsNaN(r.Fp32PeakGFlops) ? ""
                        : string.Format(inv, " = {0:P1} of the fp32 peak ({1:F1} GFLOP/s: 512-bit FMA on {2} threads)",
                            r.PrefillGFlops / r.Fp32PeakGFlops, r.Fp32PeakGFlops, TorchSharp.torch.get_num_threads()),
                    r.GemmShape.M, r.GemmShape.K, r.GemmShape.N, GlmModel.DTypeName(DecodeBenchmark.PrefillGemmType(glm.DType)), r.GemmGFlops,
                    r.PrefillGFlops / r.EngineGemmGFlops, GlmModel.DTypeName(glm.DType), r.EngineGemmGFlops));
            console.Out.WriteLine(r.HugePageBytes > 0
                ? string.Format(inv, "memory: {0:F2} GB of weights on 2 MiB pages (and the bandwidth probe; {1:F1} s to map before the runs)",
                    r.HugePageBytes / 1e9, r.HugePageSeconds)
                : "memory: weights on 4 KiB pages (no 2 MiB pages: GLM_NO_HUGE_PAGES=1, a GPU, tensors under 2 MiB, or a kernel without MADV_COLLAPSE)");
            console.Out.WriteLine(r.FusedDecodeSteps == r.DecodeSteps
                ? "decode path: fused single-sequence step (buffers allocated once per model)"
                : r.FusedDecodeSteps == 0 ? "decode path: tensor ops (the fused step does not apply to this model, batch or device)"
                : $"decode path: fused for {r.FusedDecodeSteps} of {r.DecodeSteps} steps");
            if (r.Profile.Count > 0) PrintProfile(console, r);
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>" (median of N: min–max)" for several samples, else nothing.</summary>
    private static string Spread(IReadOnlyList<double> samples, string format) =>
        samples.Count < 2 ? "" : string.Format(CultureInfo.InvariantCulture, " (median of {0}: {1}–{2})", samples.Count,
            samples.Min().ToString(format, CultureInfo.InvariantCulture), samples.Max().ToString(format, CultureInfo.InvariantCulture));

    private static void PrintProfile(CliConsole console, BenchmarkResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        if (r.PrefillProfile.Count > 0)
        {
            double total = r.ProfiledPrefillMilliseconds;
            var sections = r.PrefillProfile.Where(p => p.Section != DecodeSection.GemvInnerLoops && p.Calls > 0).ToList();
            console.Out.WriteLine(string.Format(inv, "prefill profile (second run, {0:F1} ms for the prompt):", total));
            console.Out.WriteLine("  section                          ms   share   calls");
            foreach (var (section, ms, calls) in sections)
                console.Out.WriteLine(string.Format(inv, "  {0,-26} {1,9:F1} {2,7:P1} {3,7}", section, ms, ms / total, calls));
            double rest = total - sections.Sum(p => p.Milliseconds);
            console.Out.WriteLine(string.Format(inv, "  {0,-26} {1,9:F1} {2,7:P1}", "(outside sections)", rest, rest / total));
        }
        double step = r.ProfiledStepMilliseconds;
        var timed = r.Profile.Where(p => p.Section != DecodeSection.GemvInnerLoops).ToList();
        double inner = r.Profile.First(p => p.Section == DecodeSection.GemvInnerLoops).MillisecondsPerToken;
        double projections = timed.Where(p => p.Section is DecodeSection.QkvProjection or DecodeSection.OutputProjection
            or DecodeSection.MlpProjections or DecodeSection.OutputHead).Sum(p => p.MillisecondsPerToken);
        console.Out.WriteLine(string.Format(inv, "decode profile (second run, {0:F2} ms per token):", step));
        console.Out.WriteLine("  section                      ms/token   share   calls/token");
        foreach (var (section, ms, calls) in timed)
            console.Out.WriteLine(string.Format(inv, "  {0,-26} {1,9:F3} {2,7:P1} {3,10:F0}", section, ms, ms / step, calls));
        double outside = step - timed.Sum(p => p.MillisecondsPerToken);
        console.Out.WriteLine(string.Format(inv, "  {0,-26} {1,9:F3} {2,7:P1}", "(outside sections)", outside, outside / step));
        console.Out.WriteLine(string.Format(inv,
            "  matrix products: {0:F3} ms/token ({1:P1}), of which GEMV multiply-add loops {2:F3} ms; everything else (other ops, casts, dispatch, sampling): {3:F3} ms ({4:P1})",
            projections, projections / step, inner, step - projections, (step - projections) / step));
    }

    private static int[] ParseCounts(string list)
    {
        var parts = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var counts = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out counts[i]) || counts[i] < 1)
                throw new GlmException($"--concurrency '{list}': expected stream counts ≥ 1 separated by commas, e.g. 1,4,16.");
        return counts.Length > 0 ? counts : throw new GlmException("--concurrency needs at least one stream count, e.g. 1,4,16.");
    }

    // The 1-stream baseline always runs first, so every ratio compares figures from the same process.
    private static void RunConcurrency(CliConsole console, GlmModel glm, BenchmarkSettings settings, int[] counts, CancellationToken ct)
    {
        var inv = CultureInfo.InvariantCulture;
        var sweep = counts.Contains(1) ? counts.Where(c => c == 1).Concat(counts.Where(c => c != 1)).ToArray() : counts.Prepend(1).ToArray();
        var results = ConcurrencyBenchmark.Run(glm, settings, sweep, new SyncProgress<string>(s => console.Error.WriteLine($"... {s}")), ct);
        double baseline = results[0].AggregateDecodeTokensPerSecond;
        console.Out.WriteLine(string.Format(inv, "continuous batching: prompt {0} tokens, {1} new tokens per stream, greedy{2}", settings.PromptTokens, settings.NewTokens,
            settings.Repeats > 1 ? $"; {settings.Repeats} interleaved sweeps: each row is the sweep with the median aggregate rate, the ratio the median of the sweeps' own ratios" : ""));
        double cpuBaseline = results[0].DecodeTokensPerCpuSecond;
        console.Out.WriteLine("streams  aggregate decode tok/s  per-stream tok/s  ratio to 1 stream  decode tok/CPU-s (ratio)  end-to-end tok/s  mean TTFT  mean batch");
        foreach (var r in results)
            console.Out.WriteLine(string.Format(inv, "{0,7}  {1,22:F2}  {2,16:F2}  {3,16:F2}x  {4,14:F2} ({5,6:F2}x)  {6,16:F2}  {7,6:F0} ms  {8,10:F2}",
                r.Streams, r.AggregateDecodeTokensPerSecond, r.PerStreamDecodeTokensPerSecond, ConcurrencyBenchmark.RatioTo(r, results[0]),
                r.DecodeTokensPerCpuSecond, r.DecodeTokensPerCpuSecond / cpuBaseline,
                r.EndToEndTokensPerSecond, r.MeanTimeToFirstToken.TotalMilliseconds, r.MeanBatch));
        if (settings.Repeats > 1)
            foreach (var r in results)
                console.Out.WriteLine(string.Format(inv, "  {0} stream(s), aggregate decode tok/s per sweep: {1}", r.Streams,
                    string.Join(", ", r.AggregateSamples.Select(x => x.ToString("F2", inv)))));
    }
}
