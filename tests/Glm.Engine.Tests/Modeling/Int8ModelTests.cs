using Glm.Engine.Checkpoints;
using Glm.Engine.Diagnostics;
using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Modeling.Quantization;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>Int8 weight-only models: accuracy against fp32 in every layout, saved checkpoints, and scale-tensor errors.</summary>
[Collection("KernelSwitches")] // some tests flip CpuInt8Gemv.Int8Activations; the others compare logits bit for bit
public sealed class Int8ModelTests : IDisposable
{
    private static readonly GlmLoadOptions Fp32 = new() { DType = "fp32", Device = "cpu" };
    private static readonly GlmLoadOptions Int8 = Fp32 with { Quantization = GlmQuantization.Int8 };
    private static readonly int[] Prompt = [5, 17, 3, 42, 9, 11, 30, 2, 7];
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glm-int8-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    public static TheoryData<string> Layouts => new() { "chatglm", "chatglm-tied-bias", "hfglm", "hfglm4", "original" };

    /// <summary>Every layout with the decode GEMV's exact fp32 activations (false) and int8 activations (true).</summary>
    public static TheoryData<string, bool> LayoutsAndActivationModes
    {
        get
        {
            var data = new TheoryData<string, bool>();
            foreach (string layout in Layouts) { data.Add(layout, false); data.Add(layout, true); }
            return data;
        }
    }

    /// <summary>A tiny random model of the named layout; weights large enough that logits are O(1).</summary>
    private static GlmModel Build(string layout, GlmLoadOptions options)
    {
        if (layout == "original")
        {
            var glm = GlmBlockTestSupport.TinyConfig();
            return GlmModel.FromWeights(glm, new InMemoryWeights(GlmBlockTestSupport.RandomTensors(glm, 7)), null, options, "test");
        }
        var cfg = ModelPresets.Get("glm4-tiny") with
        {
            Layout = layout switch { "hfglm" => GlmLayout.HfGlm, "hfglm4" => GlmLayout.HfGlm4, _ => GlmLayout.ChatGlm },
        };
        if (layout == "chatglm-tied-bias") cfg = cfg with { TiedEmbeddings = true, LinearBias = true };
        return GlmModel.FromWeights(cfg, new RandomWeights(cfg, 11, std: 0.15), null, options, "test");
    }

    [Theory]
    [MemberData(nameof(LayoutsAndActivationModes))]
    public void QuantizedLogitsStayCloseToFp32(string layout, bool int8Activations)
    {
        bool saved = CpuInt8Gemv.Int8Activations;
        CpuInt8Gemv.Int8Activations = int8Activations; // ignored on CPUs without int8-activation loops (then both cases run the exact path)
        try { AssertQuantizedLogitsCloseToFp32(layout, int8Activations && CpuInt8Gemv.HasInt8ActivationLoops); }
        finally { CpuInt8Gemv.Int8Activations = saved; }
    }

    private static void AssertQuantizedLogitsCloseToFp32(string layout, bool int8Activations)
    {
        using var reference = Build(layout, Fp32);
        using var quantized = Build(layout, Int8);
        Assert.Equal(GlmQuantization.Int8, quantized.Quantization);
        Assert.Contains(quantized.NamedWeights(), p => p.Tensor.dtype == ScalarType.Int8);
        foreach (bool incremental in new[] { false, true }) // full forward (GEMV kernel up to 16 rows, else dequantize + GEMM) and decode
        {
            var a = reference.ComputeLogits(Prompt, incremental);
            var b = quantized.ComputeLogits(Prompt, incremental);
            float max = 0, err = 0;
            for (int i = 0; i < a.GetLength(0); i++)
                for (int j = 0; j < a.GetLength(1); j++)
                {
                    max = Math.Max(max, Math.Abs(a[i, j]));
                    err = Math.Max(err, Math.Abs(a[i, j] - b[i, j]));
                }
            // Stated tolerance: max |logit error| ≤ 3% of the largest |logit| for weight-only int8 (measured 2.2–2.6% for these
            // hidden-64 random models). With int8 activations (decode, and prompts of up to CpuInt8Gemv.MaxInt8ActivationRows tokens, which
            // the kernel also takes) the activation rounding (≤ max|x_block|/254 per
            // element) is as large as the weight rounding (≤ max|w_row|/254) and independent of it, so the errors add in
            // quadrature: ≤ 3%·√2 ≈ 4.3% (measured 3.4–3.8%).
            bool throughKernel = incremental || Prompt.Length <= CpuInt8Gemv.MaxInt8ActivationRows;
            float tolerance = int8Activations && throughKernel ? 0.043f : 0.03f;
            Assert.True(err <= tolerance * max, $"{layout} incremental={incremental} int8 activations={int8Activations}: max |error| {err}, max |logit| {max}");
            Assert.True(err > 0, "quantization should change the logits a little");
        }
    }

    /// <summary>
    /// Greedy decoding of an int8 model gives the same tokens whether the decode GEMV quantizes its activations or not, and the
    /// two modes' incremental logits differ (so the int8 path ran) by no more than the 3 % weight-quantization tolerance above
    /// (activation rounding is the same size as weight rounding; measured 1.9–2.1 % of the largest |logit|).
    /// </summary>
    [Theory]
    [InlineData("chatglm")]
    [InlineData("original")]
    public void GreedyTokensAreTheSameWithInt8AndFp32Activations(string layout)
    {
        if (!CpuInt8Gemv.HasInt8ActivationLoops) return; // the switch is ignored without int8-activation loops
        using var model = Build(layout, Int8);
        var options = new GenerationOptions { MaxNewTokens = 16, StopTokenIds = Array.Empty<int>() };
        bool saved = CpuInt8Gemv.Int8Activations;
        try
        {
            CpuInt8Gemv.Int8Activations = false;
            var exactTokens = model.GenerateIdsAsync(Prompt, options).GetAwaiter().GetResult();
            var exactLogits = model.ComputeLogits(Prompt, incremental: true);
            CpuInt8Gemv.Int8Activations = true;
            var int8Tokens = model.GenerateIdsAsync(Prompt, options).GetAwaiter().GetResult();
            var int8Logits = model.ComputeLogits(Prompt, incremental: true);
            Assert.Equal(16, exactTokens.Count);
            Assert.Equal(exactTokens, int8Tokens);
            float max = 0, err = 0;
            for (int i = 0; i < exactLogits.GetLength(0); i++)
                for (int j = 0; j < exactLogits.GetLength(1); j++)
                {
                    max = Math.Max(max, Math.Abs(exactLogits[i, j]));
                    err = Math.Max(err, Math.Abs(exactLogits[i, j] - int8Logits[i, j]));
                }
            Assert.True(err > 0, "int8 activations should change the decode logits a little");
            Assert.True(err <= 0.03f * max, $"{layout}: int8 vs fp32 activations, max |logit difference| {err}, max |logit| {max}");
        }
        finally { CpuInt8Gemv.Int8Activations = saved; }
    }

    /// <summary><c>glm quantize --report</c>'s numbers: both decode activation modes against fp32, the switch restored.</summary>
    [Fact]
    public void ReportComparesBothDecodeActivationModes()
    {
        using var reference = Build("chatglm", Fp32);
        using var quantized = Build("chatglm", Int8);
        var ids = Enumerable.Range(0, 40).Select(i => (i * 37 + 5) % reference.Config.VocabSize).ToList();
        bool saved = CpuInt8Gemv.Int8Activations;
        var r = QuantizationReport.Compare(reference, quantized, ids, ids.Count, logitTokens: 32, decodeTokens: 12, context: 32);
        Assert.Equal(saved, CpuInt8Gemv.Int8Activations);
        Assert.Equal(12, r.DecodeTokens);
        Assert.False(r.DecodeExactActivations.Int8Activations);
        Assert.InRange(r.DecodeExactActivations.MaxAbsLogitError, 1e-6, 0.03 * r.MaxAbsReferenceLogit);
        Assert.True(r.DecodeReferencePerplexity > 1 && r.DecodeExactActivations.Perplexity > 1);
        Assert.True(Math.Abs(r.DecodeExactActivations.Perplexity / r.DecodeReferencePerplexity - 1) < 0.05);
        if (!CpuInt8Gemv.HasInt8ActivationLoops) { Assert.Null(r.DecodeInt8Activations); return; }
        var int8 = r.DecodeInt8Activations!;
        Assert.True(int8.Int8Activations);
        Assert.InRange(int8.MaxAbsLogitError, 1e-6, 0.043 * r.MaxAbsReferenceLogit);
        Assert.NotEqual(r.DecodeExactActivations.MaxAbsLogitError, int8.MaxAbsLogitError);
        Assert.Equal((saved ? int8 : r.DecodeExactActivations).MaxAbsLogitError, r.DecodeMaxAbsLogitError);
    }

    [Theory]
    [InlineData("chatglm", null)]
    [InlineData("chatglm-tied-bias", null)]
    [InlineData("hfglm4", null)]
    [InlineData("original", null)]
    [InlineData("chatglm", GlmLayout.HfGlm)] // saved in HF names: q/k/v weights and scales are split
    public void SavedInt8CheckpointReloadsToIdenticalLogits(string layout, GlmLayout? savedLayout)
    {
        using var quantized = Build(layout, Int8);
        quantized.Save(_dir, savedLayout);
        Assert.Contains("\"quantization\"", File.ReadAllText(Path.Combine(_dir, "config.json")));
        using (var file = CheckpointReader.Open(_dir))
        {
            var scales = file.Names.Where(n => n.EndsWith(".weight_scale", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(scales);
            Assert.All(scales, n => Assert.Equal(ScalarType.Float32, file.Describe(n).DType));
            Assert.All(scales, n => Assert.Equal(ScalarType.Int8, file.Describe(n[..^Int8Quantizer.ScaleSuffix.Length]).DType));
        }
        using var reloaded = GlmModel.Load(_dir, Fp32); // no Quantization option: config.json says int8
        Assert.Equal(GlmQuantization.Int8, reloaded.Quantization);
        foreach (bool incremental in new[] { false, true })
            Assert.Equal(quantized.ComputeLogits(Prompt, incremental), reloaded.ComputeLogits(Prompt, incremental));
    }

    [Fact]
    public void WrongOrMissingScaleTensorsAreNamed()
    {
        using var quantized = Build("chatglm", Int8);
        var cfg = quantized.Config;
        using var scope = NewDisposeScope();
        var tensors = quantized.NamedWeights().ToDictionary(p => p.Name, p => p.Tensor);
        string scaleName = Int8Quantizer.ScaleName(new ChatGlmCheckpointNames(1).Dense);
        long rows = tensors[scaleName].shape[0];

        var wrongShape = new Dictionary<string, Tensor>(tensors) { [scaleName] = ones(rows + 3) };
        var ex = Assert.Throws<GlmException>(() => GlmModel.FromWeights(cfg, new InMemoryWeights(wrongShape, "bad.safetensors"), null, Fp32, "t"));
        Assert.Contains($"'{scaleName}'", ex.Message);
        Assert.Contains($"shape [{rows + 3}]; expected [{rows}]", ex.Message);

        var missing = new Dictionary<string, Tensor>(tensors);
        missing.Remove(scaleName);
        ex = Assert.Throws<GlmException>(() => GlmModel.FromWeights(cfg, new InMemoryWeights(missing, "bad.safetensors"), null, Fp32, "t"));
        Assert.Contains($"scale tensor '{scaleName}' is missing", ex.Message);

        var notInt8 = new Dictionary<string, Tensor>(tensors) { [new ChatGlmCheckpointNames(1).Dense] = tensors[new ChatGlmCheckpointNames(1).Dense].to(ScalarType.Float32) };
        ex = Assert.Throws<GlmException>(() => GlmModel.FromWeights(cfg, new InMemoryWeights(notInt8, "bad.safetensors"), null, Fp32, "t"));
        Assert.Contains("expected int8 weights", ex.Message);
    }

    [Fact]
    public void BenchCountsInt8BytesAndScales()
    {
        using var model = Build("chatglm", Int8);
        var c = model.Config;
        long h = c.HiddenSize, qkv = (long)(c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim, f = c.FfnHiddenSize;
        long int8PerLayer = qkv * h + h * h + 2 * f * h + h * f;           // bytes of int8 matrices
        long scalesPerLayer = 4 * (qkv + h + 2 * f + h);                   // fp32 scales
        long fp32PerLayer = 4 * (2 * h + qkv);                             // norms, QKV bias
        long head = c.VocabSize * h + 4L * c.VocabSize;
        long expected = c.NumLayers * (int8PerLayer + scalesPerLayer + fp32PerLayer) + head + 4 * h;
        Assert.Equal(expected, DecodeBenchmark.WeightBytesPerToken(model));
    }
}
