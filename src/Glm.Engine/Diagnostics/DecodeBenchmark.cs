using System.Diagnostics;
using Glm.Engine.Modeling;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Diagnostics;

/// <summary>Settings of one <c>glm bench</c> run.</summary>
/// <param name="PromptTokens">Prompt length of each sequence.</param>
/// <param name="NewTokens">Tokens decoded after the prompt (greedy).</param>
/// <param name="Batch">Sequences prefilled and decoded together.</param>
/// <param name="MeasureBandwidth">Probe the read bandwidth around the timed runs and measure the compute ceilings.</param>
/// <param name="Profile">Run prefill and decode once more with every section timed.</param>
/// <param name="Repeats">Timed runs (prefill and decode); with more than one, the result's figures are medians and the
/// samples are kept.</param>
public sealed record BenchmarkSettings(int PromptTokens = 128, int NewTokens = 256, int Batch = 1, bool MeasureBandwidth = true, bool Profile = false,
    int Repeats = 1);

/// <summary>What one benchmark run measured.</summary>
public sealed record BenchmarkResult
{
    /// <summary>Prompt tokens per second over the whole batch.</summary>
    public required double PrefillTokensPerSecond { get; init; }
    /// <summary>Generated tokens per second over the whole batch (greedy, KV cache).</summary>
    public required double DecodeTokensPerSecond { get; init; }
    /// <summary>Time from the start of prefill to the first sampled token.</summary>
    public required TimeSpan TimeToFirstToken { get; init; }
    /// <summary>Peak resident memory of the process.</summary>
    public required long PeakWorkingSetBytes { get; init; }
    /// <summary>Read bandwidth measured in the same process (GB/s): the larger of the probes just before and just after the
    /// timed decode (the median of those over several timed runs), or NaN when skipped.</summary>
    public required double ReadBandwidthGBs { get; init; }
    /// <summary>Weight bytes on 2 MiB pages during the runs (<see cref="GlmModel.MapWeightsOntoHugePages"/>; the bandwidth probe is
    /// then mapped the same way), and the seconds the mapping took before the runs (0 when a load had already done it).</summary>
    public long HugePageBytes { get; init; }
    /// <summary>See <see cref="HugePageBytes"/>.</summary>
    public double HugePageSeconds { get; init; }
    /// <summary>Every bandwidth probe of the run (GB/s), in order: before the first timed run and after each.</summary>
    public IReadOnlyList<double> ReadBandwidthSamplesGBs { get; init; } = [];
    /// <summary>Prefill tokens per second of each timed run (<see cref="BenchmarkSettings.Repeats"/>), in order.</summary>
    public IReadOnlyList<double> PrefillSamples { get; init; } = [];
    /// <summary>Decode tokens per second of each timed run, in order.</summary>
    public IReadOnlyList<double> DecodeSamples { get; init; } = [];
    /// <summary>Each timed run's decode ÷ the roofline of the larger probe beside it, in order (empty without probes).</summary>
    public IReadOnlyList<double> FractionSamples { get; init; } = [];
    /// <summary>Bytes of weights streamed per decode step.</summary>
    public required long WeightBytesPerToken { get; init; }
    /// <summary>Decode steps per second that the bandwidth allows (bandwidth ÷ weight bytes per step).</summary>
    public double RooflineStepsPerSecond => ReadBandwidthGBs * 1e9 / WeightBytesPerToken;
    /// <summary>Measured decode steps per second ÷ roofline.</summary>
    public required double FractionOfRoofline { get; init; }
    /// <summary>With <see cref="BenchmarkSettings.Profile"/>: a second decode run's step time split by <see cref="DecodeSection"/>
    /// (milliseconds and calls per decoded token), and that run's mean step time; otherwise empty and NaN.</summary>
    public IReadOnlyList<(DecodeSection Section, double MillisecondsPerToken, double CallsPerToken)> Profile { get; init; } = [];
    /// <summary>Mean decode step (ms) of the profiled run.</summary>
    public double ProfiledStepMilliseconds { get; init; } = double.NaN;
    /// <summary>With <see cref="BenchmarkSettings.Profile"/>: the second run's prefill split by <see cref="DecodeSection"/>
    /// (milliseconds and calls for the whole prompt); otherwise empty.</summary>
    public IReadOnlyList<(DecodeSection Section, double Milliseconds, long Calls)> PrefillProfile { get; init; } = [];
    /// <summary>The profiled run's prefill (ms).</summary>
    public double ProfiledPrefillMilliseconds { get; init; } = double.NaN;
    /// <summary>Decode steps of the timed run that went through the fused single-sequence step (the rest took the tensor path).</summary>
    public long FusedDecodeSteps { get; init; }
    /// <summary>Decode steps of the timed run.</summary>
    public long DecodeSteps { get; init; }
    /// <summary>GFLOP/s of the timed prefill in its linear layers (2 · prompt tokens · their weights, the head for the last
    /// position only; attention scores not counted).</summary>
    public double PrefillGFlops { get; init; } = double.NaN;
    /// <summary>The cores' bf16 multiply-add ceiling measured in the same process (<see cref="MachineProbe.MeasureBf16Peak"/>),
    /// for bf16 models on CPUs with AVX512_BF16; otherwise NaN.</summary>
    public double Bf16PeakGFlops { get; init; } = double.NaN;
    /// <summary>The cores' fp32 FMA ceiling (<see cref="MachineProbe.MeasureFp32Peak"/>) for fp32 and fp16 models; otherwise NaN.</summary>
    public double Fp32PeakGFlops { get; init; } = double.NaN;
    /// <summary>libtorch's GEMM on the prefill's largest linear shape in the model dtype (GFLOP/s, same process), or NaN.</summary>
    public double GemmGFlops { get; init; } = double.NaN;
    /// <summary>The engine's own path for that product in the model dtype (<see cref="MachineProbe.MeasureGemm"/> with
    /// <c>engine</c>; GFLOP/s, same process), or NaN.</summary>
    public double EngineGemmGFlops { get; init; } = double.NaN;
    /// <summary>The shape <see cref="GemmGFlops"/> was measured on: (prompt tokens, inputs, outputs).</summary>
    public (int M, int K, int N) GemmShape { get; init; }
}

/// <summary>Times prefill and greedy decode of random prompts, the way <c>glm bench</c> reports them.</summary>
public static class DecodeBenchmark
{
    /// <summary>Runs the benchmark on <paramref name="model"/>.</summary>
    public static BenchmarkResult Run(GlmModel model, BenchmarkSettings settings, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        if (settings.PromptTokens < 1 || settings.NewTokens < 1 || settings.Batch < 1 || settings.Repeats < 1)
            throw new GlmException($"bench needs --prompt-tokens, --new-tokens, --batch and --repeat ≥ 1 (got {settings.PromptTokens}, {settings.NewTokens}, {settings.Batch}, {settings.Repeats}).");
        if (settings.PromptTokens + settings.NewTokens > model.MaxContext)
            throw new GlmException($"{settings.PromptTokens} prompt + {settings.NewTokens} new tokens exceed the model's context of {model.MaxContext}.");
        var net = model.Network;
        int b = settings.Batch, p = settings.PromptTokens, n = settings.NewTokens;
        // Weights on 2 MiB pages before anything is timed (a load starts it in the background; this waits for it or does it).
        var mapping = Stopwatch.StartNew();
        long hugePageBytes = model.MapWeightsOntoHugePages();
        double hugePageSeconds = mapping.Elapsed.TotalSeconds;
        var rng = new Random(1234);
        long[] prompt = Enumerable.Range(0, b * p).Select(_ => (long)rng.Next(model.Config.VocabSize)).ToArray();

        progress?.Report("warming up");
        WarmUp(net, model, prompt, b, p, n, ct);

        // Probes bracket each timed run: this VM's bandwidth moves by tens of percent within a minute, and a single probe taken in
        // a slow moment made a decode look faster than its roofline. Each run's roofline uses the larger probe beside it.
        var bandwidths = new List<double>();
        // One probe buffer for all probes, mapped as the weights are (1 GiB takes ≈ 2.5 s to move onto huge pages).
        using var probe = settings.MeasureBandwidth ? torch.ones((1L << 30) / sizeof(float), dtype: ScalarType.Float32, device: model.Device) : null;
        if (probe is not null)
        {
            progress?.Report("measuring read bandwidth");
            if (hugePageBytes > 0) HugePages.Collapse(probe);
            bandwidths.Add(MachineProbe.MeasureReadBandwidth(probe));
        }
        var runs = new List<(TimeSpan Prefill, TimeSpan FirstToken, TimeSpan Decode)>();
        long fusedSteps = 0;
        for (int run = 0; run < settings.Repeats; run++)
        {
            progress?.Report($"prefill {p} tokens × {b}, decode {n} tokens" + (settings.Repeats > 1 ? $" (run {run + 1} of {settings.Repeats})" : ""));
            long fusedBefore = ChatGlmDecodeStep.TokensRun; // counted per thread; RunOnce decodes on this one
            RunOnce(net, model, prompt, b, p, n, out var prefill, out var firstToken, out var decode);
            fusedSteps += ChatGlmDecodeStep.TokensRun - fusedBefore;
            runs.Add((prefill, firstToken, decode));
            ct.ThrowIfCancellationRequested();
            if (probe is not null) bandwidths.Add(MachineProbe.MeasureReadBandwidth(probe));
        }

        var profile = new List<(DecodeSection, double, double)>();
        IReadOnlyList<(DecodeSection, double, long)> prefillProfile = [];
        double profiledStep = double.NaN, profiledPrefill = double.NaN;
        if (settings.Profile && n > 1)
        {
            progress?.Report("profiling a second prefill and decode run");
            RunOnce(net, model, prompt, b, p, n, out var profiledPrefillTime, out _, out var profiledDecode, profileDecode: true,
                prefillSections: sections => prefillProfile = sections);
            profiledPrefill = profiledPrefillTime.TotalMilliseconds;
            profiledStep = profiledDecode.TotalMilliseconds / (n - 1);
            foreach (var (section, seconds, calls) in DecodeProfiler.Snapshot())
                profile.Add((section, seconds * 1e3 / (n - 1), calls / (double)(n - 1)));
            ct.ThrowIfCancellationRequested();
        }

        // The compute ceilings prefill is read against, measured after the timed runs so they do not warm or cool them.
        double peak = double.NaN, fp32Peak = double.NaN, gemm = double.NaN, engineGemm = double.NaN;
        var cfg = model.Config;
        var gemmShape = (M: b * p, K: cfg.HiddenSize, N: LargestLinearOutputs(cfg));
        if (settings.MeasureBandwidth && model.Device.type == DeviceType.CPU)
        {
            progress?.Report("measuring the compute peak");
            if (model.DType == ScalarType.BFloat16) peak = MachineProbe.MeasureBf16Peak(torch.get_num_threads());
            else fp32Peak = MachineProbe.MeasureFp32Peak(torch.get_num_threads());
            gemm = MachineProbe.MeasureGemm(gemmShape.M, gemmShape.K, gemmShape.N, PrefillGemmType(model.DType), seconds: 0.5, device: model.Device);
            engineGemm = MachineProbe.MeasureGemm(gemmShape.M, gemmShape.K, gemmShape.N, model.DType, seconds: 0.5, device: model.Device, engine: true);
        }

        long bytesPerToken = WeightBytesPerToken(model);
        var prefillRates = runs.Select(r => b * p / r.Prefill.TotalSeconds).ToList();
        var decodeRates = runs.Select(r => b * (n - 1) / r.Decode.TotalSeconds).ToList();
        var runBandwidths = bandwidths.Count > 0 ? runs.Select((_, i) => Math.Max(bandwidths[i], bandwidths[i + 1])).ToList() : [];
        var fractions = runBandwidths.Select((bw, i) => decodeRates[i] / b / (bw * 1e9 / bytesPerToken)).ToList();
        double medianPrefill = Median(prefillRates);
        return new BenchmarkResult
        {
            PrefillTokensPerSecond = medianPrefill,
            DecodeTokensPerSecond = Median(decodeRates),
            TimeToFirstToken = TimeSpan.FromSeconds(Median(runs.Select(r => r.FirstToken.TotalSeconds))),
            PeakWorkingSetBytes = Process.GetCurrentProcess().PeakWorkingSet64,
            ReadBandwidthGBs = runBandwidths.Count > 0 ? Median(runBandwidths) : double.NaN,
            HugePageBytes = hugePageBytes, HugePageSeconds = hugePageSeconds,
            ReadBandwidthSamplesGBs = bandwidths,
            PrefillSamples = prefillRates,
            DecodeSamples = decodeRates,
            FractionSamples = fractions,
            WeightBytesPerToken = bytesPerToken,
            FractionOfRoofline = fractions.Count > 0 ? Median(fractions) : double.NaN,
            Profile = profile,
            ProfiledStepMilliseconds = profiledStep,
            PrefillProfile = prefillProfile,
            ProfiledPrefillMilliseconds = profiledPrefill,
            FusedDecodeSteps = fusedSteps,
            DecodeSteps = (long)(n - 1) * settings.Repeats,
            PrefillGFlops = (double)PrefillFlopsPerToken(cfg, p) * medianPrefill / 1e9,
            Bf16PeakGFlops = peak,
            Fp32PeakGFlops = fp32Peak,
            GemmGFlops = gemm,
            EngineGemmGFlops = engineGemm,
            GemmShape = gemmShape,
        };
    }

    /// <summary>
    /// Runs the prompt and decode paths until the JIT has settled (<see cref="JitWarmUp"/>): first a 32-token prompt (more than
    /// 16 rows, so the prefill GEMM and attention run, not the decode kernels), then the real prompt length up to 128 (the same
    /// code as longer prompts, and cheap) with a few decode steps.
    /// </summary>
    private static void WarmUp(IDecoderNetwork net, GlmModel model, long[] prompt, int b, int p, int n, CancellationToken ct) =>
        JitWarmUp.Run(run => RunOnce(net, model, prompt, b, Math.Min(p, run == 0 ? 32 : 128), Math.Min(n, run == 0 ? 32 : 4),
            out _, out _, out _), ct);

    /// <summary>The middle value (the mean of the two middle ones for an even count).</summary>
    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        int mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>FLOPs of a prompt of <paramref name="promptTokens"/> in the linear layers, per token: every weight read per
    /// decode step but the head, twice (multiply and add), plus the head's share for the one position whose logits are kept.</summary>
    public static long PrefillFlopsPerToken(GlmConfig cfg, int promptTokens)
    {
        long head = (long)cfg.VocabSize * cfg.HiddenSize;
        return 2 * (ModelPresets.ParametersReadPerToken(cfg) - head) + 2 * head / Math.Max(1, promptTokens);
    }

    /// <summary>The dtype libtorch's GEMM runs a prompt's products in on the CPU, where the engine's own GEMM does not take them
    /// (<c>Weights.WidenedHalfLinear</c>): fp16 weights are widened to fp32 for the call (libtorch has no fast fp16 GEMM there),
    /// everything else runs in its own dtype. The bench's libtorch GEMM line is measured in it.</summary>
    public static ScalarType PrefillGemmType(ScalarType dtype) => dtype == ScalarType.Float16 ? ScalarType.Float32 : dtype;

    // The MLP's first projection: gate and up fused (SwiGLU layouts) or one [ffn, hidden] matrix (original GLM's GELU MLP).
    private static int LargestLinearOutputs(GlmConfig cfg) => cfg.Layout == GlmLayout.OriginalGlm ? cfg.FfnHiddenSize : 2 * cfg.FfnHiddenSize;

    private static void RunOnce(IDecoderNetwork net, GlmModel model, long[] prompt, int b, int p, int n,
        out TimeSpan prefill, out TimeSpan firstToken, out TimeSpan decode, bool profileDecode = false,
        Action<IReadOnlyList<(DecodeSection, double, long)>>? prefillSections = null)
    {
        model.ForwardGate.Wait();
        try
        {
            using var inference = torch.inference_mode();
            using var cache = net.CreateCache(b, p + n);
            var device = model.Device;
            var ids = prompt.Chunk(prompt.Length / b).SelectMany(row => row.Take(p)).ToArray();
            DecodeProfiler.Reset();
            DecodeProfiler.Enabled = prefillSections is not null;
            var sw = Stopwatch.StartNew();
            Tensor next;
            using (var scope = NewDisposeScope())
            {
                var logits = GlmModel.PrefillInChunks(net, torch.tensor(ids, new long[] { b, p }, device: device), (from, count) => Positions(b, (int)from, (int)count, device), cache);
                next = logits.argmax(-1).MoveToOuterDisposeScope(); // [b, 1]
                _ = next[0, 0].item<long>();
            }
            prefill = sw.Elapsed;
            firstToken = sw.Elapsed;
            prefillSections?.Invoke(DecodeProfiler.Snapshot().Select(x => (x.Section, x.Seconds * 1e3, x.Calls)).ToList());
            DecodeProfiler.Reset();
            DecodeProfiler.Enabled = profileDecode;
            sw.Restart();
            for (int i = 1; i < n; i++)
            {
                using var scope = NewDisposeScope();
                var logits = net.Forward(next, Positions(b, p + i - 1, 1, device), cache, null, lastOnly: true);
                var chosen = logits.argmax(-1);
                _ = chosen[0, 0].item<long>(); // the host needs each token before the next step, as in real decoding
                next.Dispose();
                next = chosen.MoveToOuterDisposeScope();
            }
            decode = sw.Elapsed;
            next.Dispose();
        }
        finally
        {
            DecodeProfiler.Enabled = false;
            model.ForwardGate.Release();
        }
    }

    /// <summary>
    /// Bytes of weights one decode step streams. Unquantized: every parameter but the (untied) embedding table, in the
    /// compute dtype. Int8: the stored bytes of every tensor but the gathered tables (int8 matrices, fp32 scales, norms and
    /// biases in the compute dtype), plus the int8 head and its scales where the head is tied to the embedding table.
    /// </summary>
    public static long WeightBytesPerToken(GlmModel model)
    {
        var cfg = model.Config;
        if (model.Quantization == GlmQuantization.None)
            return ModelPresets.ParametersReadPerToken(cfg) * ElementSize(model.DType);
        var gathered = new HashSet<string>(StringComparer.Ordinal)
        {
            ChatGlmCheckpointNames.Embedding, GlmBlockNames.WordEmbeddings, GlmBlockNames.PositionEmbeddings, GlmBlockNames.BlockPositionEmbeddings,
        };
        long bytes = model.NamedWeights().Where(p => !gathered.Contains(p.Name)).Sum(p => p.Tensor.NumberOfElements * p.Tensor.ElementSize);
        if (cfg.TiedEmbeddings) bytes += (long)cfg.VocabSize * cfg.HiddenSize + 4L * cfg.VocabSize;
        return bytes;
    }

    // [b, s] positions; original-GLM networks read a 2-D position tensor as block position 0.
    private static Tensor Positions(int b, int start, int count, Device device) =>
        torch.arange(start, start + count, dtype: ScalarType.Int64, device: device).view(1, count).expand(b, count);

    private static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        ScalarType.Int8 or ScalarType.Byte => 1,
        _ => 4,
    };
}
