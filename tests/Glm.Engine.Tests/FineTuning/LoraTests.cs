using System.Text.Json.Nodes;
using Glm.Engine.Checkpoints;
using Glm.Engine.FineTuning;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.FineTuning;

public sealed class LoraTests : IDisposable
{
    private static readonly int[] Prompt = [5, 17, 42, 3, 99, 7, 64, 11];
    private static readonly int[] GlmPrompt = [GlmBlockTestSupport.Cls, 9, 10, GlmBlockTestSupport.Mask, 11, GlmBlockTestSupport.Eos, GlmBlockTestSupport.Sop, 12, 13];
    private const string AllLinear = "query_key_value|dense|dense_h_to_4h|dense_4h_to_h";
    private readonly string _dir = Directory.CreateTempSubdirectory("lora").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static GlmModel Tiny(GlmLayout layout = GlmLayout.ChatGlm, long seed = 3) =>
        layout == GlmLayout.OriginalGlm ? GlmBlockTestSupport.Model(seed: seed)
        : GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny") with { Layout = layout }, new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = seed });

    private static int[] PromptFor(GlmModel m) => m.Config.Layout == GlmLayout.OriginalGlm ? GlmPrompt : Prompt;

    /// <summary>Gives every B a random value (B starts at zero, which would make every test trivially pass).</summary>
    private static void Randomize(LoraAdapterSet set, long seed)
    {
        var g = new Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach (var l in set.Layers) l.B.copy_(0.05f * randn(l.B.shape, generator: g));
    }

    private static double MaxDiff(float[,] a, float[,] b)
    {
        double m = 0;
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) m = Math.Max(m, Math.Abs(a[i, j] - b[i, j]));
        return m;
    }

    [Theory]
    [InlineData(GlmLayout.ChatGlm)]
    [InlineData(GlmLayout.HfGlm4)]
    [InlineData(GlmLayout.OriginalGlm)]
    public void MergedEqualsUnmergedLogits(GlmLayout layout)
    {
        using var model = Tiny(layout);
        var ids = PromptFor(model);
        var baseLogits = model.ComputeLogits(ids);
        var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = layout == GlmLayout.HfGlm4 ? "q_proj|k_proj|v_proj|o_proj|gate_up_proj|down_proj" : AllLinear }, seed: 1);
        Assert.Equal(model.Config.NumLayers * 4, lora.Layers.Count);
        Assert.True(MaxDiff(baseLogits, model.ComputeLogits(ids)) < 1e-6, "fresh adapters (B = 0) must not change the model");
        Randomize(lora, 2);
        var adapted = model.ComputeLogits(ids);
        Assert.True(MaxDiff(baseLogits, adapted) > 1e-3, "random B must change the logits");
        lora.Merge();
        var merged = model.ComputeLogits(ids);
        Assert.True(MaxDiff(adapted, merged) < 1e-5, $"merged differs by {MaxDiff(adapted, merged)}");
        lora.Dispose();
        Assert.True(MaxDiff(merged, model.ComputeLogits(ids)) < 1e-7, "disposing merged adapters must keep the merged weights");
    }

    [Theory]
    [InlineData(GlmLayout.ChatGlm)]
    [InlineData(GlmLayout.OriginalGlm)]
    public void OnlyAdapterParametersReceiveGradients(GlmLayout layout)
    {
        using var model = Tiny(layout);
        using var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 2, TargetModules = "query_key_value|dense" }, seed: 4);
        Randomize(lora, 5);
        lora.Train(true);
        using var scope = NewDisposeScope();
        var ids = tensor(PromptFor(model).Select(i => (long)i).ToArray()).view(1, -1);
        var positions = arange(ids.shape[1], dtype: ScalarType.Int64).view(1, -1);
        var logits = model.Network.Forward(ids, positions, null, null, lastOnly: false);
        logits.log_softmax(-1).select(2, 7).sum().backward();
        foreach (var (name, p) in ((nn.Module)model.Network).named_parameters())
            Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0, $"base parameter {name} received a gradient");
        foreach (var l in lora.Layers)
        {
            Assert.True(l.A.grad is not null && l.A.grad.abs().sum().item<float>() > 0, $"{l.ModulePath}.lora_A has no gradient");
            Assert.True(l.B.grad is not null && l.B.grad.abs().sum().item<float>() > 0, $"{l.ModulePath}.lora_B has no gradient");
        }
    }

    [Fact]
    public void SavesPeftNamesAndConfigInTheThudmLayout()
    {
        using var model = Tiny();
        using var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 4, Alpha = 16, Dropout = 0.05, TargetModules = "query_key_value|dense" });
        lora.Save(_dir);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "adapter_config.json")))!.AsObject();
        Assert.Equal("LORA", (string?)cfg["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)cfg["task_type"]);
        Assert.Equal(4, (int)cfg["r"]!);
        Assert.Equal(16, (double)cfg["lora_alpha"]!);
        Assert.Equal(0.05, (double)cfg["lora_dropout"]!);
        Assert.Equal("none", (string?)cfg["bias"]);
        Assert.False((bool)cfg["fan_in_fan_out"]!);
        Assert.True((bool)cfg["inference_mode"]!);
        Assert.Equal(["query_key_value", "dense"], cfg["target_modules"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(model.Source, (string?)cfg["base_model_name_or_path"]);
        using var reader = CheckpointReader.Open(Path.Combine(_dir, "adapter_model.safetensors"));
        Assert.Equal(model.Config.NumLayers * 2 * 2, reader.Names.Count);
        int qkvOut = (4 + 2 * 2) * 16;
        Assert.Equal(new long[] { 4, 64 }, reader.Describe("base_model.model.transformer.encoder.layers.0.self_attention.query_key_value.lora_A.weight").Shape);
        Assert.Equal(new long[] { qkvOut, 4 }, reader.Describe("base_model.model.transformer.encoder.layers.0.self_attention.query_key_value.lora_B.weight").Shape);
        Assert.Equal(new long[] { 64, 4 }, reader.Describe("base_model.model.transformer.encoder.layers.1.self_attention.dense.lora_B.weight").Shape);
        Assert.DoesNotContain(reader.Names, n => n.Contains("dense_h_to_4h"));
    }

    [Fact]
    public void HfLayoutSplitsFusedQkvIntoPeftProjections()
    {
        using var model = Tiny(GlmLayout.HfGlm4);
        using var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 4, TargetModules = "q_proj|k_proj|v_proj" });
        lora.Save(_dir);
        using var reader = CheckpointReader.Open(Path.Combine(_dir, "adapter_model.safetensors"));
        Assert.Equal(new long[] { 64, 4 }, reader.Describe("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").Shape);
        Assert.Equal(new long[] { 32, 4 }, reader.Describe("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight").Shape);
        Assert.Equal(new long[] { 4, 64 }, reader.Describe("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight").Shape);
        Assert.Equal(model.Config.NumLayers * 3 * 2, reader.Names.Count);
        lora.Dispose();
        var ex = Assert.Throws<GlmException>(() => LoraAdapterSet.Attach(model, new LoraConfig { TargetModules = "q_proj|v_proj" }));
        Assert.Contains("k_proj", ex.Message);
    }

    [Theory]
    [InlineData(GlmLayout.ChatGlm)]
    [InlineData(GlmLayout.HfGlm4)]
    [InlineData(GlmLayout.OriginalGlm)]
    public void SaveReloadGivesTheSameLogits(GlmLayout layout)
    {
        using var model = Tiny(layout);
        var ids = PromptFor(model);
        var targets = layout == GlmLayout.HfGlm4 ? "q_proj|k_proj|v_proj|down_proj" : "query_key_value|dense_4h_to_h";
        float[,] adapted;
        using (var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 3, Alpha = 6, TargetModules = targets }, seed: 7))
        {
            Randomize(lora, 8);
            adapted = model.ComputeLogits(ids);
            lora.Save(_dir);
        }
        var baseLogits = model.ComputeLogits(ids);
        Assert.True(MaxDiff(baseLogits, adapted) > 1e-3);
        using var loaded = LoraAdapterSet.Load(model, _dir);
        Assert.Equal(3, loaded.Config.Rank);
        Assert.True(MaxDiff(adapted, model.ComputeLogits(ids)) < 1e-6);
    }

    [Theory]
    [InlineData(GlmLayout.ChatGlm)]
    [InlineData(GlmLayout.HfGlm)]
    [InlineData(GlmLayout.OriginalGlm)]
    public void MergeSaveLoadGivesTheSameLogits(GlmLayout layout)
    {
        using var model = Tiny(layout);
        var ids = PromptFor(model);
        float[,] adapted;
        using (var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 4, TargetModules = ".*layers\\.1\\..*" }, seed: 9))
        {
            Assert.Equal(4, lora.Layers.Count);
            Randomize(lora, 10);
            adapted = model.ComputeLogits(ids);
            lora.Merge();
        }
        string folder = Path.Combine(_dir, "merged");
        model.Save(folder);
        using var reloaded = GlmModel.Load(folder, new GlmLoadOptions { DType = "fp32", Device = "cpu" });
        Assert.Equal(layout, reloaded.Config.Layout);
        Assert.True(MaxDiff(adapted, reloaded.ComputeLogits(ids)) < 1e-5);
    }

    [Fact]
    public void BadAdapterFilesAreReportedByFileAndField()
    {
        using var model = Tiny();
        using (var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 2, TargetModules = "dense" })) lora.Save(_dir);
        string cfgPath = Path.Combine(_dir, "adapter_config.json");
        string good = File.ReadAllText(cfgPath);
        File.WriteAllText(cfgPath, good.Replace("\"LORA\"", "\"IA3\""));
        var ex = Assert.Throws<GlmException>(() => LoraAdapterSet.Load(model, _dir));
        Assert.Contains(cfgPath, ex.Message);
        Assert.Contains("IA3", ex.Message);
        File.WriteAllText(cfgPath, good.Replace("\"dense\"", "\"query_key_value\""));
        ex = Assert.Throws<GlmException>(() => LoraAdapterSet.Load(model, _dir));
        Assert.Contains("query_key_value.lora_A.weight", ex.Message);
        ex = Assert.Throws<GlmException>(() => LoraAdapterSet.Attach(model, new LoraConfig { TargetModules = "nonexistent_proj" }));
        Assert.Contains("nonexistent_proj", ex.Message);
        ex = Assert.Throws<GlmException>(() => LoraAdapterSet.Attach(model, new LoraConfig { Rank = 0 }));
        Assert.Contains("r = 0", ex.Message);
    }

    [Fact]
    public void HfAdaptersWithDifferentQkvMatricesFuseExactly()
    {
        using var model = Tiny(GlmLayout.HfGlm4);
        using (var lora = LoraAdapterSet.Attach(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = "q_proj|k_proj|v_proj" }, seed: 3))
        {
            Randomize(lora, 4);
            lora.Save(_dir);
        }
        // Give k_proj its own A, as an adapter trained by PEFT on separate projections would have.
        string file = Path.Combine(_dir, "adapter_model.safetensors");
        var tensors = new Dictionary<string, Tensor>();
        using (var reader = CheckpointReader.Open(file))
            foreach (var name in reader.Names) tensors[name] = reader.Load(name).clone();
        var g = new Generator(99);
        foreach (var key in tensors.Keys.Where(k => k.Contains("k_proj.lora_A")).ToList())
            tensors[key] = 0.1f * randn(tensors[key].shape, generator: g);
        SafeTensorsWriter.Save(file, tensors.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value)));

        var ids = PromptFor(model);
        float[,] adapted;
        using (var loaded = LoraAdapterSet.Load(model, _dir))
        {
            Assert.All(loaded.Layers, l => Assert.Equal(6, l.Rank)); // stacked A rows, block-diagonal B
            adapted = model.ComputeLogits(ids);
        }
        // Reference: add each projection's own B·A·α/r to its rows of the HF weights.
        using (torch.no_grad())
        {
            var weights = model.NamedWeights(GlmLayout.HfGlm4).ToDictionary(p => p.Name, p => p.Tensor);
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj" })
                for (int i = 0; i < model.Config.NumLayers; i++)
                {
                    string m = $"base_model.model.model.layers.{i}.self_attn.{proj}";
                    weights[$"model.layers.{i}.self_attn.{proj}.weight"].add_(matmul(tensors[m + ".lora_B.weight"], tensors[m + ".lora_A.weight"]) * 2.0);
                }
        }
        Assert.True(MaxDiff(adapted, model.ComputeLogits(ids)) < 1e-5);
    }
}
