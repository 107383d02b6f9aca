using Glm.Engine.Modeling;
using Glm.Engine.Runtime;
using Glm.Engine.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

/// <summary>Options for loading a model.</summary>
public sealed record GlmLoadOptions
{
    /// <summary>Device name: auto (CUDA when present), cpu, cuda, cuda:N.</summary>
    public string? Device { get; init; }
    /// <summary>Compute dtype: auto, float32/fp32, bfloat16/bf16, float16/fp16.</summary>
    public string? DType { get; init; }
    /// <summary>Longest context to support (RoPE table and cache limit); default: the config's, capped at 32768.</summary>
    public int? MaxContext { get; init; }
    /// <summary>Seed of random weights for <c>random:NAME</c> models.</summary>
    public long Seed { get; init; }
    /// <summary>
    /// Quantize linear layers as they load (<see cref="GlmQuantization.Int8"/>: int8 weights, fp32 per-row scales; the output
    /// head included). A checkpoint saved quantized loads as int8 whatever this says.
    /// </summary>
    public GlmQuantization Quantization { get; init; }
    /// <summary>
    /// Move CPU weights onto 2 MiB pages in the background after loading (<see cref="Runtime.HugePages"/>; decode streams the
    /// weights faster from them). Default true; false leaves them on 4 KiB pages (<c>GLM_NO_HUGE_PAGES=1</c> turns it off for
    /// the whole process).
    /// </summary>
    public bool HugePages { get; init; } = true;
}

/// <summary>
/// A loaded GLM-family model: config, network weights on a device and (for real checkpoints) its tokenizer. Load once and
/// share: forward passes are serialised by an internal gate, so concurrent callers are safe.
/// </summary>
public sealed partial class GlmModel : IDisposable
{
    internal readonly IDecoderNetwork Network;
    internal readonly SemaphoreSlim ForwardGate = new(1, 1);

    /// <summary>Architecture facts.</summary>
    public GlmConfig Config => Network.Config;
    /// <summary>Tokenizer, or null for random models.</summary>
    public IGlmTokenizer? Tokenizer { get; }
    /// <summary>The model's chat prompt format (ChatGLM3 or GLM-4 style), or null when it has none.</summary>
    public IChatFormat? ChatFormat { get; }
    /// <summary>Where the model came from (a folder or random:NAME).</summary>
    public string Source { get; }
    /// <summary>Compute dtype of the weights.</summary>
    public ScalarType DType => Network.DType;
    /// <summary>Device holding the weights.</summary>
    public Device Device => Network.Device;
    /// <summary>How the linear layers are held in memory (int8 when quantized on load or saved quantized).</summary>
    public GlmQuantization Quantization => Config.Quantization;
    /// <summary>Longest sequence the model will process.</summary>
    public int MaxContext => Network.MaxPositions;

    private GlmModel(IDecoderNetwork network, IGlmTokenizer? tokenizer, string source)
    {
        Network = network;
        Tokenizer = tokenizer;
        ChatFormat = tokenizer is null ? null : TokenizerFactory.CreateChatFormat(tokenizer);
        Source = source;
    }

    /// <summary>Builds a model with random weights of a named shape (see <see cref="ModelPresets"/>).</summary>
    public static GlmModel CreateRandom(string preset, GlmLoadOptions? options = null) =>
        CreateRandom(ModelPresets.Get(preset), options, $"random:{preset}");

    /// <summary>Builds a model of <paramref name="config"/> with deterministic random weights.</summary>
    public static GlmModel CreateRandom(GlmConfig config, GlmLoadOptions? options = null, string? source = null)
    {
        options ??= new GlmLoadOptions();
        return FromWeights(config, new RandomWeights(config, options.Seed, description: source ?? "random weights"), null, options, source ?? "random");
    }

    /// <summary>Builds a model from any weight source (canonical names, or HF names for HF layouts).</summary>
    public static GlmModel FromWeights(GlmConfig config, IWeightSource weights, IGlmTokenizer? tokenizer, GlmLoadOptions? options, string source)
    {
        TorchRuntime.EnsureInitialized();
        options ??= new GlmLoadOptions();
        var device = TorchRuntime.ResolveDevice(options.Device);
        var dtype = ResolveDType(options.DType, config, device);
        int maxContext = Math.Min(options.MaxContext ?? Math.Min(config.MaxPositions, 32768), config.MaxPositions);
        IWeightSource canonical = config.Layout == GlmLayout.OriginalGlm ? new GlmPrefixStrippingWeights(weights)
            : config.Layout is GlmLayout.HfGlm or GlmLayout.HfGlm4 && !weights.Contains(ChatGlmCheckpointNames.Embedding)
            ? new HfGlmWeightSource(weights, config) : weights;
        var reader = new WeightReader(canonical, dtype, device)
        {
            QuantizeOnLoad = options.Quantization == GlmQuantization.Int8,
            CheckpointIsQuantized = config.Quantization == GlmQuantization.Int8,
        };
        config = config with { Quantization = reader.Quantizes ? GlmQuantization.Int8 : GlmQuantization.None };
        using var noGrad = torch.no_grad();
        IDecoderNetwork network = config.Layout switch
        {
            GlmLayout.OriginalGlm => new GlmBlockModel(config, reader, dtype, device),
            _ => new ChatGlmModel(config, reader, dtype, device, maxContext),
        };
        reader.Ignore(ChatGlmCheckpointNames.RotaryInvFreq);
        try { reader.EnsureAllUsed(); }
        catch { network.Dispose(); throw; }
        var model = new GlmModel(network, tokenizer, source);
        if (options.HugePages) model.StartHugePagesInBackground();
        return model;
    }

    /// <summary>Parses a dtype name; "auto" = bf16 on CUDA, fp32 on CPU for models under 1B parameters, else bf16.</summary>
    public static ScalarType ResolveDType(string? name, GlmConfig config, Device device)
    {
        switch (name?.ToLowerInvariant())
        {
            case null or "" or "auto":
                if (device.type == DeviceType.CUDA) return ScalarType.BFloat16;
                return ModelPresets.ParameterCount(config) < 1_000_000_000 ? ScalarType.Float32 : ScalarType.BFloat16;
            case "float32" or "fp32": return ScalarType.Float32;
            case "bfloat16" or "bf16": return ScalarType.BFloat16;
            case "float16" or "fp16" or "half": return ScalarType.Float16;
            default: throw new GlmException($"--dtype '{name}' is not supported; expected auto, fp32, bf16 or fp16.");
        }
    }

    /// <summary>Weight tensors under canonical names (views of the live parameters; do not dispose).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights() => Network.NamedWeights();

    /// <summary>Weight tensors under the names of <paramref name="layout"/> (HF layouts split QKV).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights(GlmLayout layout) => layout switch
    {
        GlmLayout.ChatGlm or GlmLayout.OriginalGlm => Network.NamedWeights(),
        _ => HfGlmWeightSource.Export(Network.NamedWeights(), Config),
    };

    /// <summary>Frees the weights.</summary>
    public void Dispose()
    {
        StopHugePages();
        Network.Dispose();
        ForwardGate.Dispose();
    }
}
