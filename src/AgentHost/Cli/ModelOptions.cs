using System.CommandLine;
using Glm.Engine;

namespace AgentHost.Cli;

/// <summary>Options every model-using verb shares, and how a <c>--model</c> value becomes a loaded model.</summary>
public sealed class ModelOptions
{
    /// <summary>Name of the model bundled with the repository, used when no --model is given.</summary>
    public const string BundledModelName = "glm-zh-small";

    /// <summary>Name of the bundled chat model (the base model fine-tuned for grounded QA), preferred by chat and RAG verbs.</summary>
    public const string BundledChatModelName = "glm-zh-small-chat";

    /// <summary>--model DIR | random:NAME.</summary>
    public Option<string?> Model { get; } = new("--model", "-m")
    {
        Description = $"Model folder (config.json + safetensors/.bin + tokenizer) or random:NAME (glm4-tiny, glm4-0.5b, glm4-bench). Default: the bundled models/{BundledModelName}.",
    };

    /// <summary>--device.</summary>
    public Option<string?> Device { get; } = new("--device") { Description = "auto (CUDA when available), cpu, cuda, cuda:N." };

    /// <summary>--dtype.</summary>
    public Option<string?> DType { get; } = new("--dtype") { Description = "auto, fp32, bf16 or fp16 (auto: bf16 on GPU; fp32 on CPU below 1B parameters, else bf16)." };

    /// <summary>--max-context.</summary>
    public Option<int?> MaxContext { get; } = new("--max-context") { Description = "Longest context to support (default: the model's, capped at 32768)." };

    /// <summary>--quantize.</summary>
    public Option<string?> Quantize { get; } = new("--quantize")
    {
        Description = "none or int8: weight-only int8 linear layers (per-row fp32 scales, output head included). A folder saved by 'glm quantize' loads as int8 without it.",
    };

    /// <summary>--threads.</summary>
    public Option<int?> Threads { get; } = new("--threads") { Description = "CPU threads for torch (default: torch's choice)." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Add(Model);
        command.Add(Device);
        command.Add(DType);
        command.Add(MaxContext);
        command.Add(Quantize);
        command.Add(Threads);
    }

    /// <summary>
    /// Loads the model the parsed options name; <paramref name="quantization"/> overrides --quantize. Without --model the bundled
    /// model is used — the chat model when <paramref name="preferChatModel"/> is set and it is present.
    /// </summary>
    public GlmModel Load(ParseResult parse, GlmQuantization? quantization = null, bool preferChatModel = false)
    {
        var options = new GlmLoadOptions
        {
            Device = parse.GetValue(Device),
            DType = parse.GetValue(DType),
            MaxContext = parse.GetValue(MaxContext),
            Quantization = quantization ?? GlmQuantizationNames.Parse(parse.GetValue(Quantize)),
        };
        if (parse.GetValue(Threads) is int threads)
        {
            if (threads < 1) throw new GlmException($"--threads {threads}: expected 1 or more.");
            Glm.Engine.Runtime.TorchRuntime.EnsureInitialized();
            TorchSharp.torch.set_num_threads(threads);
        }
        string? model = parse.GetValue(Model);
        if (model is not null && model.StartsWith("random:", StringComparison.Ordinal))
            return GlmModel.CreateRandom(model["random:".Length..], options);
        return GlmModel.Load(model ?? FindBundledModel(preferChatModel), options);
    }

    /// <summary>
    /// Finds models/glm-zh-small (or, with <paramref name="preferChatModel"/>, models/glm-zh-small-chat when it exists) next to the
    /// program or in a parent folder (a source checkout).
    /// </summary>
    public static string FindBundledModel(bool preferChatModel = false)
    {
        var names = preferChatModel ? new[] { BundledChatModelName, BundledModelName } : new[] { BundledModelName };
        foreach (var name in names)
            foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    string candidate = Path.Combine(dir.FullName, "models", name);
                    if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
                }
            }
        throw new GlmException($"no --model given and the bundled model models/{BundledModelName} was not found next to the program or in a parent folder; pass --model DIR or --model random:glm4-tiny.");
    }
}
