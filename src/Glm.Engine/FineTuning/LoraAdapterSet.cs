using Glm.Engine.Checkpoints;
using Glm.Engine.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Glm.Engine.FineTuning;

/// <summary>
/// LoRA adapters attached to the linear layers of a loaded <see cref="GlmModel"/> (any layout): the base weights stay frozen
/// (requires_grad false) and every forward pass of the model adds each adapter's term. Saves and loads the PEFT format
/// (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>, tensor names in the checkpoint's own module names), and
/// merges into the base weights (W += B·A·α/r) so <see cref="GlmModel.Save"/> writes a plain checkpoint.
/// Disposing detaches the adapters (the model computes without them again) and frees A and B.
/// </summary>
public sealed class LoraAdapterSet : IDisposable
{
    /// <summary>PEFT's config file name.</summary>
    public const string ConfigFile = "adapter_config.json";
    /// <summary>PEFT's weights file name.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    private readonly GlmModel _model;
    private readonly Dictionary<string, (Weights Target, LoraLayer Layer)> _layers;
    private bool _detached;

    /// <summary>The hyper-parameters.</summary>
    public LoraConfig Config { get; }
    /// <summary>The adapters, by canonical module path, in model order.</summary>
    public IReadOnlyList<LoraLayer> Layers => _layers.Values.Select(v => v.Layer).ToList();
    /// <summary>Every trainable tensor (A and B of each layer).</summary>
    public IReadOnlyList<Parameter> Parameters => _layers.Values.SelectMany(v => new[] { v.Layer.A, v.Layer.B }).ToList();

    private LoraAdapterSet(GlmModel model, LoraConfig config, Dictionary<string, (Weights, LoraLayer)> layers)
    {
        _model = model;
        Config = config;
        _layers = layers;
        foreach (var (target, layer) in _layers.Values) target.Adapter = layer;
    }

    /// <summary>
    /// Attaches fresh adapters to every linear layer whose checkpoint module name matches <paramref name="config"/>: A is
    /// kaiming-uniform (bound 1/√in, as PEFT), B is zero, so the model's outputs are unchanged until training. Freezes every
    /// base parameter. Throws when nothing matches, or when an HF layout's q/k/v projections are only partly targeted.
    /// </summary>
    public static LoraAdapterSet Attach(GlmModel model, LoraConfig config, long seed = 0)
    {
        config.Validate();
        var generator = new Generator((ulong)seed);
        var layers = new Dictionary<string, (Weights, LoraLayer)>(StringComparer.Ordinal);
        foreach (var (path, target) in Targets(model, config))
        {
            using var scope = NewDisposeScope();
            long outF = target.Weight.shape[0], inF = target.Weight.shape[1];
            double bound = 1.0 / Math.Sqrt(inF);
            var a = (rand(new long[] { config.Rank, inF }, generator: generator) * (2 * bound) - bound).to(model.Device).MoveToOuterDisposeScope();
            var b = zeros(new long[] { outF, config.Rank }, device: model.Device).MoveToOuterDisposeScope();
            layers[path] = (target, new LoraLayer(path, a, b, config.Scaling, config.Dropout));
        }
        return new LoraAdapterSet(model, config, layers);
    }

    /// <summary>Canonical path and module of each targeted linear layer; freezes all base parameters.</summary>
    private static List<(string Path, Weights Target)> Targets(GlmModel model, LoraConfig config)
    {
        var network = (nn.Module)model.Network;
        foreach (var (_, p) in network.named_parameters()) p.requires_grad_(false);
        var layout = model.Config.Layout;
        var found = new List<(string, Weights)>();
        foreach (var (path, w) in LinearModules(network))
        {
            if (w.Adapter is not null) throw new GlmException($"module '{path}' already has an adapter; detach (dispose) the other adapter set first.");
            var names = LoraModuleNames.External(path, layout);
            int hits = names.Count(config.Matches);
            if (hits == 0) continue;
            if (hits != names.Count)
                throw new GlmException($"target_modules '{config.TargetModules}' matches only {string.Join(", ", names.Where(config.Matches))} of " +
                    $"{string.Join(", ", names)}; this engine fuses them into one layer, so target all three or none.");
            found.Add((path, w));
        }
        if (found.Count == 0)
            throw new GlmException($"target_modules '{config.TargetModules}' matches no linear layer of {model.Source} (layout {layout}); " +
                $"expected names such as {string.Join(", ", ExampleNames(model).Take(6))}.");
        return found;
    }

    private static IEnumerable<string> ExampleNames(GlmModel model) =>
        LinearModules((nn.Module)model.Network).SelectMany(m => LoraModuleNames.External(m.Path, model.Config.Layout)).Take(8);

    /// <summary>
    /// The 2-D, non-embedding <see cref="Weights"/> modules under their checkpoint paths (the parameter name less
    /// <c>.weight</c>; named_modules would also list C# field names).
    /// </summary>
    private static IEnumerable<(string Path, Weights Module)> LinearModules(nn.Module network)
    {
        var byWeight = new Dictionary<IntPtr, Weights>();
        foreach (var (_, module) in network.named_modules())
            if (module is Weights w) byWeight[w.Weight.Handle] = w;
        foreach (var (name, p) in network.named_parameters())
        {
            if (!name.EndsWith(".weight", StringComparison.Ordinal) || p.dim() != 2) continue;
            string path = name[..^".weight".Length];
            if (LoraModuleNames.IsEmbedding(path) || !byWeight.TryGetValue(p.Handle, out var module)) continue;
            yield return (path, module);
        }
    }

    /// <summary>Switches adapter dropout on (training) or off (evaluation, inference).</summary>
    public void Train(bool training)
    {
        foreach (var (_, layer) in _layers.Values) layer.DropoutActive = training;
    }

    /// <summary>Tensors under PEFT names for the model's layout (HF layouts split B's rows into q/k/v).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> PeftTensors()
    {
        var cfg = _model.Config;
        foreach (var (path, (_, layer)) in _layers)
        {
            var names = LoraModuleNames.External(path, cfg.Layout);
            if (names.Count == 1)
            {
                var (an, bn) = LoraModuleNames.PeftTensorNames(names[0]);
                yield return (an, layer.A);
                yield return (bn, layer.B);
                continue;
            }
            long q = (long)cfg.NumHeads * cfg.HeadDim, kv = (long)cfg.NumKvHeads * cfg.HeadDim;
            long[] starts = [0, q, q + kv], sizes = [q, kv, kv];
            for (int i = 0; i < 3; i++)
            {
                var (an, bn) = LoraModuleNames.PeftTensorNames(names[i]);
                yield return (an, layer.A);
                yield return (bn, layer.B.narrow(0, starts[i], sizes[i]));
            }
        }
    }

    /// <summary>Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (fp32) into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var cfg = Config with { BaseModel = Config.BaseModel ?? _model.Source };
        File.WriteAllText(Path.Combine(folder, ConfigFile), cfg.ToPeftJson());
        using var scope = NewDisposeScope();
        var tensors = PeftTensors().Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Tensor.detach().cpu().contiguous())).ToList();
        SafeTensorsWriter.Save(Path.Combine(folder, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Loads a PEFT LoRA adapter folder onto <paramref name="model"/>. Every tensor must belong to a targeted module of the
    /// model with matching shapes; HF q/k/v adapters are fused (a shared A when the three are equal, otherwise stacked A
    /// rows with a block-diagonal B, which is exact). Dropout starts off (inference).
    /// </summary>
    public static LoraAdapterSet Load(GlmModel model, string folder)
    {
        string configPath = Path.Combine(folder, ConfigFile), weightsPath = Path.Combine(folder, WeightsFile);
        var config = LoraConfig.LoadPeft(configPath);
        if (!File.Exists(weightsPath)) throw new GlmException($"{weightsPath}: adapter weights not found; expected {WeightsFile} next to {ConfigFile}.");
        using var reader = CheckpointReader.Open(weightsPath);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var layers = new Dictionary<string, (Weights, LoraLayer)>(StringComparer.Ordinal);
        try
        {
            foreach (var (path, target) in Targets(model, config))
            {
                using var scope = NewDisposeScope();
                var names = LoraModuleNames.External(path, model.Config.Layout);
                var parts = names.Select(n =>
                {
                    var (an, bn) = LoraModuleNames.PeftTensorNames(n);
                    foreach (var t in new[] { an, bn })
                        if (!reader.Contains(t)) throw new GlmException($"{weightsPath}: tensor '{t}' is missing; target_modules '{config.TargetModules}' selects module '{n}'.");
                    used.Add(an); used.Add(bn);
                    return (A: reader.Load(an, ScalarType.Float32), B: reader.Load(bn, ScalarType.Float32), Name: n);
                }).ToList();
                var (a, b) = Fuse(parts);
                long outF = target.Weight.shape[0], inF = target.Weight.shape[1];
                if (a.dim() != 2 || b.dim() != 2 || a.shape[1] != inF || b.shape[0] != outF || b.shape[1] != a.shape[0])
                    throw new GlmException($"{weightsPath}: module '{names[0]}' has lora_A [{string.Join(", ", a.shape)}] and lora_B [{string.Join(", ", b.shape)}]; " +
                        $"expected A [r, {inF}] and B [{outF}, r] for this model.");
                layers[path] = (target, new LoraLayer(path, a.to(model.Device).contiguous().MoveToOuterDisposeScope(), b.to(model.Device).contiguous().MoveToOuterDisposeScope(), config.Scaling, config.Dropout));
            }
            var unused = reader.Names.Where(n => !used.Contains(n)).ToList();
            if (unused.Count > 0)
                throw new GlmException($"{weightsPath}: {unused.Count} tensor(s) match no targeted module of the model, e.g. '{unused[0]}'; expected an adapter trained for this model layout.");
        }
        catch
        {
            foreach (var (_, layer) in layers.Values) layer.Dispose();
            throw;
        }
        return new LoraAdapterSet(model, config, layers);
    }

    private static (Tensor A, Tensor B) Fuse(List<(Tensor A, Tensor B, string Name)> parts)
    {
        if (parts.Count == 1) return (parts[0].A, parts[0].B);
        bool sharedA = parts.All(p => p.A.shape.SequenceEqual(parts[0].A.shape) && p.A.allclose(parts[0].A, 0, 0));
        if (sharedA) return (parts[0].A, cat(parts.Select(p => p.B).ToArray(), 0));
        var a = cat(parts.Select(p => p.A).ToArray(), 0);
        var b = zeros(parts.Sum(p => p.B.shape[0]), a.shape[0]);
        long row = 0, col = 0;
        foreach (var p in parts)
        {
            b.narrow(0, row, p.B.shape[0]).narrow(1, col, p.B.shape[1]).copy_(p.B);
            row += p.B.shape[0];
            col += p.B.shape[1];
        }
        return (a, b);
    }

    /// <summary>
    /// Adds B·A·α/r to each targeted base weight (in the weight's dtype) and detaches the adapters, so the model computes
    /// the adapted function without them and <see cref="GlmModel.Save"/> writes the merged checkpoint.
    /// </summary>
    public void Merge()
    {
        ThrowIfDetached();
        using (torch.no_grad())
            foreach (var (target, layer) in _layers.Values)
            {
                if (target.IsQuantized)
                    throw new GlmException($"cannot merge LoRA layer '{layer.ModulePath}' into int8 weights; load the base model without --quantize, merge, then quantize.");
                using var delta = layer.DeltaWeight();
                target.Weight.add_(delta.to(target.Weight.dtype));
            }
        Detach();
    }

    /// <summary>Removes the adapters from the model (its outputs return to the base model's).</summary>
    public void Detach()
    {
        if (_detached) return;
        foreach (var (target, layer) in _layers.Values)
            if (ReferenceEquals(target.Adapter, layer)) target.Adapter = null;
        _detached = true;
    }

    private void ThrowIfDetached()
    {
        if (_detached) throw new GlmException("the LoRA adapters were already merged or detached.");
    }

    /// <summary>Detaches the adapters and frees their tensors.</summary>
    public void Dispose()
    {
        Detach();
        foreach (var (_, layer) in _layers.Values) layer.Dispose();
    }
}
