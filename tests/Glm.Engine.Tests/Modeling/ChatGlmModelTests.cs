using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

public class ChatGlmModelTests
{
    private static readonly int[] Prompt = { 5, 17, 301, 44, 9, 120, 77, 3 };

    private static GlmModel Tiny(string preset = "glm4-tiny", long seed = 1) =>
        GlmModel.CreateRandom(ModelPresets.Get(preset), new GlmLoadOptions { DType = "fp32", Seed = seed, Device = "cpu" });

    internal static double MaxRelativeDifference(float[,] a, float[,] b)
    {
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(a[i, j] - b[i, j]));
                maxAbs = Math.Max(maxAbs, Math.Abs(a[i, j]));
            }
        return maxDiff / maxAbs;
    }

    [Fact]
    public void IncrementalLogitsEqualFullForward()
    {
        using var model = Tiny();
        var full = model.ComputeLogits(Prompt);
        var incremental = model.ComputeLogits(Prompt, incremental: true);
        Assert.Equal(Prompt.Length, full.GetLength(0));
        Assert.Equal(model.Config.VocabSize, full.GetLength(1));
        Assert.True(MaxRelativeDifference(full, incremental) < 1e-5, $"max relative difference {MaxRelativeDifference(full, incremental)}");
    }

    [Fact]
    public void LogitsDependOnEveryEarlierTokenButNotOnLaterOnes()
    {
        using var model = Tiny();
        var a = model.ComputeLogits(Prompt);
        var changed = (int[])Prompt.Clone();
        changed[5] = 200;
        var b = model.ComputeLogits(changed);
        for (int j = 0; j < model.Config.VocabSize; j++)
            Assert.Equal(a[4, j], b[4, j]); // causal: position 4 cannot see position 5
        double diffAt5 = Enumerable.Range(0, model.Config.VocabSize).Max(j => Math.Abs(a[5, j] - b[5, j]));
        Assert.True(diffAt5 > 1e-4);
    }

    [Theory]
    [InlineData(GlmLayout.HfGlm)]
    [InlineData(GlmLayout.HfGlm4)]
    public void ThudmAndHfLayoutsOfTheSameWeightsGiveTheSameLogits(GlmLayout hfLayout)
    {
        var cfg = ModelPresets.Get("glm4-tiny") with { Layout = hfLayout };
        // glm4 adds sandwich norms: build the random model in that layout so both sides hold them.
        using var reference = GlmModel.CreateRandom(cfg, new GlmLoadOptions { DType = "fp32", Seed = 3, Device = "cpu" });
        using var scope = NewDisposeScope();
        var hfTensors = reference.NamedWeights(hfLayout).ToDictionary(p => p.Name, p => p.Tensor.clone());
        Assert.Contains("model.layers.0.self_attn.q_proj.weight", hfTensors.Keys);
        Assert.Contains("model.layers.1.mlp.gate_up_proj.weight", hfTensors.Keys);
        Assert.DoesNotContain(hfTensors.Keys, k => k.Contains("query_key_value"));
        using var hf = GlmModel.FromWeights(cfg, new InMemoryWeights(hfTensors, "hf test weights"), null,
            new GlmLoadOptions { DType = "fp32", Device = "cpu" }, "hf");
        var expected = reference.ComputeLogits(Prompt);
        var actual = hf.ComputeLogits(Prompt);
        Assert.True(MaxRelativeDifference(expected, actual) < 1e-5);
    }

    [Fact]
    public void HfRmsNormRoundingDiffersFromChatGlmOnlyInLowPrecision()
    {
        TorchSharp.torch.manual_seed(0);
        using var scope = NewDisposeScope();
        var x = randn(4, 64).to(ScalarType.BFloat16);
        var w = (1.0f + 0.1f * randn(64)).to(ScalarType.BFloat16);
        var chatglm = ChatGlmModel.RmsNorm(x, w, 1e-5, castBeforeWeight: false).to(ScalarType.Float32);
        var hf = ChatGlmModel.RmsNorm(x, w, 1e-5, castBeforeWeight: true).to(ScalarType.Float32);
        Assert.True((chatglm - hf).abs().max().item<float>() > 0, "bf16 rounding order should be observable");
        Assert.True((chatglm - hf).abs().max().item<float>() < 0.05);
        var x32 = x.to(ScalarType.Float32); var w32 = w.to(ScalarType.Float32);
        var a = ChatGlmModel.RmsNorm(x32, w32, 1e-5, false);
        var b = ChatGlmModel.RmsNorm(x32, w32, 1e-5, true);
        Assert.Equal(0f, (a - b).abs().max().item<float>());
    }

    [Fact]
    public async Task GreedyGenerationIsDeterministic()
    {
        using var model = Tiny();
        var options = new GenerationOptions { MaxNewTokens = 12, StopTokenIds = Array.Empty<int>() };
        var first = await model.GenerateIdsAsync(Prompt, options);
        var second = await model.GenerateIdsAsync(Prompt, options);
        Assert.Equal(12, first.Count);
        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData("glm4-tiny")]
    [InlineData("chatglm3-tiny")]
    public async Task ChunkedPrefillGivesTheSameTokensAsOneForward(string preset)
    {
        // A long prompt is prefilled in pieces (bounded memory); pieces of 3 and 5 tokens must not change what is generated.
        using var model = Tiny(preset);
        var prompt = Enumerable.Range(0, 23).Select(i => (i * 37 + 11) % model.Config.VocabSize).ToArray();
        var options = new GenerationOptions { MaxNewTokens = 8, StopTokenIds = Array.Empty<int>() };
        var whole = await model.GenerateIdsAsync(prompt, options);
        foreach (int chunk in new[] { 3, 5 })
        {
            model.PrefillChunkTokens = chunk;
            Assert.Equal(whole, await model.GenerateIdsAsync(prompt, options));
        }
        model.PrefillChunkTokens = 1;
        Assert.Equal(whole, await model.GenerateIdsAsync(prompt, options));
    }

    [Fact]
    public async Task GreedyGenerationFollowsTheArgmaxOfFullForwardLogits()
    {
        using var model = Tiny();
        var generated = await model.GenerateIdsAsync(Prompt, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = Array.Empty<int>() });
        var sequence = Prompt.Concat(generated).ToArray();
        var logits = model.ComputeLogits(sequence);
        for (int i = 0; i < generated.Count; i++)
        {
            int row = Prompt.Length - 1 + i;
            var values = Enumerable.Range(0, model.Config.VocabSize).Select(j => logits[row, j]).ToArray();
            Assert.Equal(TokenSampler.ArgMax(values), generated[i]);
        }
    }

    [Fact]
    public async Task SeededSamplingIsReproducibleAndDiffersAcrossSeeds()
    {
        using var model = Tiny();
        var o = new GenerationOptions { MaxNewTokens = 16, Temperature = 1.5f, TopP = 0.95f, TopK = 50, Seed = 42, StopTokenIds = Array.Empty<int>() };
        var a = await model.GenerateIdsAsync(Prompt, o);
        var b = await model.GenerateIdsAsync(Prompt, o);
        var c = await model.GenerateIdsAsync(Prompt, o with { Seed = 43 });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task BatchedGenerationEqualsOneAtATime()
    {
        using var model = Tiny();
        var prompts = new IReadOnlyList<int>[] { Prompt, new[] { 7, 8 }, new[] { 400, 2, 99, 31, 1 } };
        var options = new GenerationOptions { MaxNewTokens = 8, StopTokenIds = Array.Empty<int>() };
        var batched = model.GenerateBatch(prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(await model.GenerateIdsAsync(prompts[i], options), batched[i]);
    }

    [Fact]
    public async Task StopTokenEndsGenerationWithStopReason()
    {
        using var model = Tiny();
        var free = await model.GenerateIdsAsync(Prompt, new GenerationOptions { MaxNewTokens = 5, StopTokenIds = Array.Empty<int>() });
        var chunks = new List<GenerationChunk>();
        await foreach (var c in model.GenerateAsync(Prompt, new GenerationOptions { MaxNewTokens = 5, StopTokenIds = new[] { free[2] } }))
            chunks.Add(c);
        Assert.Equal(FinishReason.Stop, chunks[^1].Finish);
        Assert.Equal(free[2], chunks[^1].TokenId);
        Assert.Equal(free.Take(2), chunks.Take(chunks.Count - 1).Select(c => c.TokenId));
    }

    [Fact]
    public async Task CancellationMidStreamReturnsPromptly()
    {
        using var model = Tiny();
        using var cts = new CancellationTokenSource();
        int count = 0;
        var last = FinishReason.None;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await foreach (var c in model.GenerateAsync(Prompt, new GenerationOptions { MaxNewTokens = 400, StopTokenIds = Array.Empty<int>() }, cts.Token))
        {
            if (++count == 3) cts.Cancel();
            last = c.Finish;
        }
        Assert.Equal(FinishReason.Cancelled, last);
        Assert.True(count <= 4, $"got {count} tokens after cancelling at 3");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void OutOfRangeIdsAreRejectedWithTheirIndex()
    {
        using var model = Tiny();
        var ex = Assert.Throws<GlmException>(() => model.ComputeLogits(new[] { 1, 2, 100000 }));
        Assert.Contains("100000", ex.Message);
        Assert.Contains("index 2", ex.Message);
    }

    [Fact]
    public void MissingAndMisshapenTensorsAreNamed()
    {
        var cfg = ModelPresets.Get("glm4-tiny");
        using var reference = Tiny();
        using var scope = NewDisposeScope();
        var tensors = reference.NamedWeights().ToDictionary(p => p.Name, p => p.Tensor.clone());
        var missing = new Dictionary<string, Tensor>(tensors);
        missing.Remove("transformer.encoder.layers.1.mlp.dense_4h_to_h.weight");
        var ex = Assert.Throws<GlmException>(() => GlmModel.FromWeights(cfg, new InMemoryWeights(missing, "ckpt"), null, new GlmLoadOptions { Device = "cpu" }, "t"));
        Assert.Contains("'transformer.encoder.layers.1.mlp.dense_4h_to_h.weight' is missing", ex.Message);

        var wrong = new Dictionary<string, Tensor>(tensors) { ["transformer.encoder.final_layernorm.weight"] = zeros(65) };
        ex = Assert.Throws<GlmException>(() => GlmModel.FromWeights(cfg, new InMemoryWeights(wrong, "ckpt"), null, new GlmLoadOptions { Device = "cpu" }, "t"));
        Assert.Contains("shape [65]; expected [64]", ex.Message);

        var extra = new Dictionary<string, Tensor>(tensors) { ["transformer.encoder.layers.9.extra.weight"] = zeros(3) };
        ex = Assert.Throws<GlmException>(() => GlmModel.FromWeights(cfg, new InMemoryWeights(extra, "ckpt"), null, new GlmLoadOptions { Device = "cpu" }, "t"));
        Assert.Contains("unexpected tensor 'transformer.encoder.layers.9.extra.weight'", ex.Message);
    }
}

public class CheckpointLayoutTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glmsk-layout-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static readonly int[] Prompt = { 11, 250, 3, 42, 7, 500, 1 };
    private static readonly GlmLoadOptions Fp32 = new() { DType = "fp32", Device = "cpu" };

    [Theory]
    [InlineData(GlmLayout.ChatGlm, GlmLayout.HfGlm, 0L)]
    [InlineData(GlmLayout.ChatGlm, GlmLayout.HfGlm, 40_000L)]
    [InlineData(GlmLayout.HfGlm4, GlmLayout.HfGlm4, 0L)]
    public void SavedCheckpointsInEachLayoutReloadToTheSameLogits(GlmLayout built, GlmLayout saved, long shardBytes)
    {
        var cfg = ModelPresets.Get("glm4-tiny") with { Layout = built };
        using var model = GlmModel.CreateRandom(cfg, Fp32 with { Seed = 5 });
        string thudm = Path.Combine(_dir, "thudm"), hf = Path.Combine(_dir, "hf");
        model.Save(thudm);
        model.Save(hf, saved, shardBytes);
        if (shardBytes > 0) Assert.True(File.Exists(Path.Combine(hf, "model.safetensors.index.json")));
        using var a = GlmModel.Load(thudm, Fp32);
        using var b = GlmModel.Load(hf, Fp32);
        Assert.Equal(built, a.Config.Layout);
        Assert.Equal(saved, b.Config.Layout);
        var expected = model.ComputeLogits(Prompt);
        Assert.True(ChatGlmModelTests.MaxRelativeDifference(expected, a.ComputeLogits(Prompt)) < 1e-6);
        Assert.True(ChatGlmModelTests.MaxRelativeDifference(expected, b.ComputeLogits(Prompt)) < 1e-5);
    }

    [Fact]
    public void Bf16CheckpointLoadsAndStaysCloseToFp32()
    {
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), Fp32 with { Seed = 9 });
        using var bf16 = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = "bf16", Device = "cpu", Seed = 9 });
        string dir = Path.Combine(_dir, "bf16");
        bf16.Save(dir);
        Assert.Contains("bfloat16", File.ReadAllText(Path.Combine(dir, "config.json")));
        using var loaded = GlmModel.Load(dir, Fp32);
        Assert.True(ChatGlmModelTests.MaxRelativeDifference(model.ComputeLogits(Prompt), loaded.ComputeLogits(Prompt)) < 0.05);
    }

    [Fact]
    public void ConfigErrorsNameTheFileAndField()
    {
        Directory.CreateDirectory(_dir);
        var ex = Assert.Throws<GlmException>(() => GlmModel.Load(_dir));
        Assert.Contains("config.json", ex.Message);
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{\"model_type\": \"chatglm\", \"num_layers\": 2}");
        ex = Assert.Throws<GlmException>(() => GlmModel.Load(_dir));
        Assert.Contains("field 'hidden_size' is missing", ex.Message);
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{\"model_type\": \"llama\"}");
        ex = Assert.Throws<GlmException>(() => GlmModel.Load(_dir));
        Assert.Contains("model_type 'llama' is not supported", ex.Message);
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{\"model_type\": ");
        ex = Assert.Throws<GlmException>(() => GlmModel.Load(_dir));
        Assert.Contains("malformed JSON", ex.Message);
    }

    [Fact]
    public void TruncatedWeightsFileIsReportedNotCrashed()
    {
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), Fp32);
        model.Save(_dir);
        string weights = Path.Combine(_dir, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length - 100)]);
        var ex = Assert.Throws<GlmException>(() => GlmModel.Load(_dir));
        Assert.Contains("model.safetensors", ex.Message);
    }
}
