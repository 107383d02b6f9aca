using System.Text.Json;
using Glm.Engine.Checkpoints;
using Glm.Engine.Modeling;
using Glm.Engine.Tokenization;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    /// <summary>
    /// Loads a model from a Hugging Face style folder: <c>config.json</c>, safetensors (single or sharded) or PyTorch
    /// <c>.bin</c> weights, and the tokenizer files. The layout (ChatGLM3, GLM-4, HF glm/glm4) is read from config.json.
    /// Weights are memory-mapped and converted to the compute dtype on load.
    /// </summary>
    public static GlmModel Load(string folder, GlmLoadOptions? options = null)
    {
        if (!Directory.Exists(folder))
            throw new GlmException($"model folder '{folder}' does not exist; expected a folder with config.json and weights.");
        var config = GlmConfig.Load(folder);
        var tokenizer = TokenizerFactory.TryLoad(folder, config.ModelType);
        using var checkpoint = CheckpointReader.Open(folder);
        return FromWeights(config, new CheckpointWeightSource(checkpoint), tokenizer, options, Path.GetFullPath(folder));
    }

    /// <summary>
    /// Saves config.json and the weights as <c>model.safetensors</c> (or shards above <paramref name="maxShardBytes"/>) in the
    /// names of <paramref name="layout"/> (default: the model's own), in the model's dtype. An int8 model saves int8 linear
    /// weights with fp32 <c>&lt;name&gt;_scale</c> tensors [out] and records <c>"quantization"</c> in config.json, so the folder
    /// loads quantized without options (a tied output head is re-quantized from the embedding table on load).
    /// </summary>
    public void Save(string folder, GlmLayout? layout = null, long maxShardBytes = 0)
    {
        var target = layout ?? Config.Layout;
        Directory.CreateDirectory(folder);
        var cfg = Config with { Layout = target, TorchDtype = DTypeName(DType) };
        File.WriteAllText(Path.Combine(folder, "config.json"), cfg.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        using var scope = NewDisposeScope();
        var tensors = NamedWeights(target).Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Tensor.detach().cpu().contiguous())).ToList();
        if (maxShardBytes > 0) SafeTensorsWriter.SaveSharded(folder, tensors, maxShardBytes);
        else SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>The config.json spelling of a dtype.</summary>
    public static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => "float32",
    };
}

/// <summary>Adapts a <see cref="CheckpointReader"/> to the model builder.</summary>
internal sealed class CheckpointWeightSource(CheckpointReader reader) : IWeightSource
{
    public string Description => reader.Location;
    public bool Contains(string name) => reader.Contains(name);
    public long[] Shape(string name) => reader.Describe(name).Shape;
    public IEnumerable<string> Names => reader.Names;
    public ScalarType? StoredDType(string name) => reader.Describe(name).DType;

    public Tensor Load(string name, ScalarType dtype, Device device)
    {
        var t = reader.Load(name, dtype);
        if (device.type == TorchSharp.DeviceType.CPU) return t;
        var moved = t.to(device);
        t.Dispose();
        return moved;
    }
}
