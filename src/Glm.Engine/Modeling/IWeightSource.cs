using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>Named tensors a model is built from: a checkpoint on disk, a random initialiser, or a state dict in memory.</summary>
public interface IWeightSource
{
    /// <summary>Where the tensors come from, for error messages (a folder, "random:glm4-tiny", ...).</summary>
    string Description { get; }

    /// <summary>True when a tensor of that name exists.</summary>
    bool Contains(string name);

    /// <summary>Shape of the named tensor.</summary>
    long[] Shape(string name);

    /// <summary>The named tensor converted to <paramref name="dtype"/> on <paramref name="device"/>; the caller owns it.</summary>
    Tensor Load(string name, ScalarType dtype, Device device);

    /// <summary>All tensor names (to report unexpected ones).</summary>
    IEnumerable<string> Names { get; }
}

/// <summary>A weight source over tensors held in memory (tests, conversions, freshly initialised models).</summary>
public sealed class InMemoryWeights : IWeightSource
{
    private readonly IReadOnlyDictionary<string, Tensor> _tensors;

    /// <summary>Wraps <paramref name="tensors"/>; they stay owned by the caller.</summary>
    public InMemoryWeights(IReadOnlyDictionary<string, Tensor> tensors, string description = "in-memory weights")
    {
        _tensors = tensors;
        Description = description;
    }

    /// <inheritdoc />
    public string Description { get; }
    /// <inheritdoc />
    public bool Contains(string name) => _tensors.ContainsKey(name);
    /// <inheritdoc />
    public long[] Shape(string name) => _tensors[name].shape;
    /// <inheritdoc />
    public Tensor Load(string name, ScalarType dtype, Device device) => _tensors[name].to(dtype, device, copy: true).detach();
    /// <inheritdoc />
    public IEnumerable<string> Names => _tensors.Keys;
}

/// <summary>Loads tensors by name while checking shapes and recording which names were used.</summary>
internal sealed class WeightReader(IWeightSource source, ScalarType dtype, Device device)
{
    private readonly HashSet<string> _used = new();

    public IWeightSource Source => source;

    public bool Has(string name) => source.Contains(name);

    public Tensor Read(string name, params long[] shape)
    {
        if (!source.Contains(name))
            throw new GlmException($"{source.Description}: tensor '{name}' is missing; it is required by this model's config.");
        var found = source.Shape(name);
        if (!found.SequenceEqual(shape))
            throw new GlmException($"{source.Description}: tensor '{name}' has shape [{string.Join(", ", found)}]; expected [{string.Join(", ", shape)}] from config.json.");
        _used.Add(name);
        return source.Load(name, dtype, device);
    }

    /// <summary>Marks tensors that are present but deliberately unused (e.g. the rotary inv_freq buffer).</summary>
    public void Ignore(string name) => _used.Add(name);

    /// <summary>Throws when the source holds tensors the model did not read (a wrong layout or a wrong config).</summary>
    public void EnsureAllUsed()
    {
        var extra = source.Names.Where(n => !_used.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            throw new GlmException($"{source.Description}: unexpected tensor '{extra[0]}'" +
                (extra.Count > 1 ? $" (and {extra.Count - 1} more)" : "") + "; it does not belong to the layout config.json describes.");
    }
}
