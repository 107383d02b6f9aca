using System.Text.Json.Nodes;
using Glm.Engine.Checkpoints;
using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Checkpoints;
using TorchSharp;
using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

public class GlmBlockModelTests
{
    // [CLS] t t [MASK] t t sop t t t : Part A = 6 tokens, Part B = sop + 3.
    private static readonly int[] WithPartB = [Cls, 20, 21, Mask, 22, 23, Sop, 30, 31, 32];
    private static readonly int[] Plain = [Cls, 20, 21, 22, 23, 24, 25];

    /// <summary>An independent plain-tensor implementation of glm-formats §1.4, written from the spec text.</summary>
    private static float[,] ReferenceLogits(GlmConfig cfg, Dictionary<string, Tensor> w, int[] ids, int sep, int maskPosition)
    {
        using var scope = NewDisposeScope();
        int n = ids.Length, nh = cfg.NumHeads, d = cfg.HeadDim, hidden = cfg.HiddenSize;
        var (pos, block) = GlmModel.GlmPositions(n, sep, maskPosition);
        Tensor Rows(string name, long[] index) => w[name].index_select(0, tensor(index));
        var x = Rows(GlmBlockNames.WordEmbeddings, ids.Select(i => (long)i).ToArray()) + Rows(GlmBlockNames.PositionEmbeddings, pos)
                + Rows(GlmBlockNames.BlockPositionEmbeddings, block);
        var m = ones(n, n).tril();
        if (sep > 0) m.narrow(1, 0, sep).fill_(1);
        Tensor Norm(Tensor t, string p)
        {
            var mean = t.mean([-1L], keepdim: true);
            var variance = (t - mean).pow(2).mean([-1L], keepdim: true);
            return (t - mean) / (variance + cfg.NormEps).sqrt() * w[p + ".weight"] + w[p + ".bias"];
        }
        Tensor Lin(Tensor t, string p) => t.matmul(w[p + ".weight"].t()) + w[p + ".bias"];
        for (int i = 0; i < cfg.NumLayers; i++)
        {
            string p = GlmBlockNames.Layer(i);
            var qkv = Lin(Norm(x, p + ".input_layernorm"), p + ".attention.query_key_value");
            var heads = qkv.split(hidden, -1).Select(t => t.view(n, nh, d).permute(1, 0, 2)).ToArray();
            var scores = heads[0].matmul(heads[1].transpose(-1, -2) / Math.Sqrt(d));
            scores = scores * m + (-65504f) * (1 - m);
            var context = scores.softmax(-1).matmul(heads[2]).permute(1, 0, 2).reshape(n, hidden);
            x = x + Lin(context, p + ".attention.dense");
            var h = Lin(Norm(x, p + ".post_attention_layernorm"), p + ".mlp.dense_h_to_4h");
            h = cfg.Gelu == GeluVariant.Tanh
                ? 0.5f * h * (1 + (0.7978845608f * h * (1 + 0.044715f * h * h)).tanh())
                : 0.5f * h * (1 + (h / MathF.Sqrt(2)).erf());
            x = x + Lin(h, p + ".mlp.dense_4h_to_h");
        }
        var logits = Norm(x, GlmBlockNames.FinalNorm).matmul(w[GlmBlockNames.WordEmbeddings].t());
        var values = logits.contiguous().data<float>().ToArray();
        var result = new float[n, cfg.VocabSize];
        Buffer.BlockCopy(values, 0, result, 0, values.Length * sizeof(float));
        return result;
    }

    [Theory]
    [InlineData(GeluVariant.Tanh)]
    [InlineData(GeluVariant.Erf)]
    public void ForwardMatchesTheSpecReference(GeluVariant gelu)
    {
        var cfg = TinyConfig(gelu);
        var w = RandomTensors(cfg, 11);
        using var model = Model(cfg, w);
        var expected = ReferenceLogits(cfg, w, WithPartB, sep: 6, maskPosition: 3);
        var actual = model.ComputeLogits(WithPartB);
        Assert.True(ChatGlmModelTests.MaxRelativeDifference(expected, actual) < 1e-5,
            $"relative difference {ChatGlmModelTests.MaxRelativeDifference(expected, actual)}");
        var causalExpected = ReferenceLogits(cfg, w, Plain, sep: -1, maskPosition: 0);
        Assert.True(ChatGlmModelTests.MaxRelativeDifference(causalExpected, model.ComputeLogits(Plain)) < 1e-5);
    }

    [Fact]
    public void GeluSwitchChangesTheMlpAndRoundTripsThroughConfigJson()
    {
        var w = RandomTensors(TinyConfig(), 3);
        using var tanh = Model(TinyConfig(GeluVariant.Tanh), w);
        using var erf = Model(TinyConfig(GeluVariant.Erf), w);
        Assert.True(MaxAbsDifference(tanh.ComputeLogits(Plain), erf.ComputeLogits(Plain), 3) > 1e-6);

        using var dir = new CheckpointTempDir();
        tanh.Save(dir.Path);
        var json = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        Assert.Equal("tanh", json["gelu"]!.GetValue<string>());
        Assert.Equal(Sop, json["sop_token_id"]!.GetValue<int>());
        Assert.Equal(GeluVariant.Tanh, GlmConfig.Load(dir.Path).Gelu);
        json.Remove("gelu"); // a released HF checkpoint has no such field: the HF code's erf GELU applies
        Assert.Equal(GeluVariant.Erf, GlmConfig.FromJson(json, "config.json").Gelu);
        json["gelu"] = "relu";
        var ex = Assert.Throws<GlmException>(() => GlmConfig.FromJson(json, "x/config.json"));
        Assert.Contains("gelu", ex.Message);
        Assert.Contains("relu", ex.Message);
    }

    [Fact]
    public void SavedSafetensorsAndPytorchBinReloadWithIdenticalLogits()
    {
        using var model = Model();
        var expected = model.ComputeLogits(WithPartB);
        using var dir = new CheckpointTempDir();
        string st = Path.Combine(dir.Path, "st"), bin = Path.Combine(dir.Path, "bin");
        model.Save(st);
        Directory.CreateDirectory(bin);
        File.Copy(Path.Combine(st, "config.json"), Path.Combine(bin, "config.json"));
        using (var scope = NewDisposeScope())
            PyTorchBinWriter.Save(Path.Combine(bin, "pytorch_model.bin"),
                model.NamedWeights().Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Tensor.detach().clone())));
        foreach (var folder in new[] { st, bin })
        {
            using var loaded = GlmModel.Load(folder, Fp32Cpu);
            Assert.Equal(GlmLayout.OriginalGlm, loaded.Config.Layout);
            var actual = loaded.ComputeLogits(WithPartB);
            for (int i = 0; i < WithPartB.Length; i++) Assert.Equal(0f, MaxAbsDifference(expected, actual, i));
        }
    }

    [Fact]
    public void CheckpointKeysWithGlmPrefixLoad()
    {
        var cfg = TinyConfig();
        var w = RandomTensors(cfg, 5);
        using var plain = Model(cfg, w);
        var prefixed = w.ToDictionary(p => "glm." + p.Key, p => p.Value);
        using var hf = GlmModel.FromWeights(cfg, new InMemoryWeights(prefixed), null, Fp32Cpu, "hf");
        Assert.Equal(0f, MaxAbsDifference(plain.ComputeLogits(WithPartB), hf.ComputeLogits(WithPartB), 9));
        Assert.All(hf.NamedWeights(), p => Assert.False(p.Name.StartsWith("glm.", StringComparison.Ordinal)));

        w.Remove(GlmBlockNames.BlockPositionEmbeddings);
        var ex = Assert.Throws<GlmException>(() => Model(cfg, w));
        Assert.Contains(GlmBlockNames.BlockPositionEmbeddings, ex.Message);
    }

    [Fact]
    public void IncrementalLogitsEqualFullLogits()
    {
        using var model = Model();
        foreach (var ids in new[] { WithPartB, Plain })
        {
            var full = model.ComputeLogits(ids);
            var incremental = model.ComputeLogits(ids, incremental: true);
            double diff = ChatGlmModelTests.MaxRelativeDifference(full, incremental);
            Assert.True(diff < 1e-5, $"relative difference {diff}");
        }
    }

    [Fact]
    public void PartAIsBidirectionalAndPartBIsCausal()
    {
        using var model = Model();
        var baseLogits = model.ComputeLogits(WithPartB);

        var laterPartA = (int[])WithPartB.Clone();
        laterPartA[4] = 40; // a Part-A token after index 1
        var a = model.ComputeLogits(laterPartA);
        Assert.True(MaxAbsDifference(baseLogits, a, 1) > 1e-5, "Part A must see later Part-A tokens");

        var partBChange = (int[])WithPartB.Clone();
        partBChange[8] = 41;
        var b = model.ComputeLogits(partBChange);
        for (int row = 0; row < 8; row++)
            Assert.Equal(0f, MaxAbsDifference(baseLogits, b, row)); // Part A never sees Part B; Part B rows before 8 are causal
        Assert.True(MaxAbsDifference(baseLogits, b, 8) > 1e-5);

        var plainChange = (int[])Plain.Clone();
        plainChange[4] = 40; // without sop everything is causal
        var c = model.ComputeLogits(plainChange);
        Assert.Equal(0f, MaxAbsDifference(model.ComputeLogits(Plain), c, 3));
    }

    [Fact]
    public void GenerateBlankFollowsGreedyFullForwardAndStopsAtBudgetOrEop()
    {
        using var model = Model();
        int[] partA = [Cls, 20, 21, GMask, Eos];
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var span = model.GenerateBlank(partA, options);
        Assert.InRange(span.Count, 0, 6);
        var sequence = new List<int>(partA) { Sop };
        for (int k = 0; k <= span.Count; k++)
        {
            var logits = model.ComputeLogits(sequence);
            int best = Enumerable.Range(0, model.Config.VocabSize).MaxBy(j => logits[sequence.Count - 1, j]);
            if (k == span.Count)
            {
                if (span.Count < 6) Assert.Equal(Eop, best);
                break;
            }
            Assert.Equal(best, span[k]);
            sequence.Add(span[k]);
        }
        Assert.Throws<GlmException>(() => model.GenerateBlank([Cls, 20, 21], options));
    }

    [Fact]
    public async Task FillBlanksFillsEachMaskInTurnAndKeepsTheText()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = Model(tokenizer: tokenizer);
        var options = new GenerationOptions { MaxNewTokens = 4 };
        string filled = await model.FillBlanksAsync("ab [MASK] cd [sMASK] e", options);
        Assert.DoesNotContain("MASK", filled);

        // Same result by hand: fill the first blank, splice, then the second.
        var ids = new List<int>(tokenizer.Encode("ab ")) { Mask };
        ids.AddRange(tokenizer.Encode(" cd "));
        ids.Add(SMask);
        ids.AddRange(tokenizer.Encode(" e"));
        foreach (int blank in new[] { Mask, SMask })
        {
            var span = model.GenerateBlank([Cls, .. ids, Eos], options);
            int at = ids.IndexOf(blank);
            ids.RemoveAt(at);
            ids.InsertRange(at, span);
        }
        Assert.Equal(tokenizer.Decode(ids, skipSpecialTokens: true), filled);
        Assert.StartsWith("ab ", filled);
        Assert.EndsWith(" e", filled);
        await Assert.ThrowsAsync<GlmException>(() => model.FillBlanksAsync("no blank here", options));
    }

    [Fact]
    public async Task PlainGenerateAsyncIsCausalLeftToRightOnGlmModels()
    {
        using var model = Model();
        var generated = await model.GenerateIdsAsync(Plain, new GenerationOptions { MaxNewTokens = 4 });
        Assert.Equal(4, generated.Count);
        var sequence = new List<int>(Plain);
        foreach (int id in generated)
        {
            var logits = model.ComputeLogits(sequence);
            Assert.Equal(Enumerable.Range(0, model.Config.VocabSize).MaxBy(j => logits[sequence.Count - 1, j]), id);
            sequence.Add(id);
        }
    }

    [Fact]
    public void SopWithoutAMaskInPartAIsRejected()
    {
        using var model = Model();
        var ex = Assert.Throws<GlmException>(() => model.ComputeLogits([Cls, 20, Sop, 21]));
        Assert.Contains("index 2", ex.Message);
    }

    [Fact]
    public void PerplexityScoresOnlyPartBAfterSop()
    {
        using var model = Model();
        var logits = model.ComputeLogits(WithPartB);
        double nll = 0;
        for (int i = 7; i < WithPartB.Length; i++)
        {
            var row = Enumerable.Range(0, model.Config.VocabSize).Select(j => (double)logits[i - 1, j]).ToArray();
            double max = row.Max();
            nll += max + Math.Log(row.Sum(v => Math.Exp(v - max))) - row[WithPartB[i]];
        }
        Assert.Equal(Math.Exp(nll / 3), model.Perplexity(WithPartB), 6);
    }

    [Fact]
    public void RandomOriginalGlmModelUsesMegatronInitAndSavesLoadably()
    {
        var cfg = TinyConfig();
        using var model = GlmModel.CreateRandom(cfg, new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 1 });
        var named = model.NamedWeights().ToDictionary(p => p.Name, p => p.Tensor);
        Assert.Equal(GlmBlockNames.ExpectedShapes(cfg).Keys.Order(), named.Keys.Order());
        Assert.Equal(0.0, named[GlmBlockNames.FinalNorm + ".bias"].abs().sum().item<float>());
        Assert.Equal(32.0, named[GlmBlockNames.FinalNorm + ".weight"].sum().item<float>());
        double std = named[GlmBlockNames.WordEmbeddings].std().item<float>();
        Assert.InRange(std, 0.017, 0.023);
    }
}
