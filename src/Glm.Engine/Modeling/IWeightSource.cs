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

    /// <summary>The dtype the named tensor is stored in, or null when the source cannot tell (random, converted).</summary>
    ScalarType? StoredDType(string name) => null;
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
    /// <inheritdoc />
    public ScalarType? StoredDType(string name) => _tensors[name].dtype;
}

/// <summary>Loads tensors by name while checking shapes and recording which names were used.</summary>
internal sealed class WeightReader(IWeightSource source, ScalarType dtype, Device device)
{
    private readonly HashSet<string> _used = new();

    public IWeightSource Source => source;

    /// <summary>Quantize plain linear weights to int8 as they are read (<c>--quantize int8</c>).</summary>
    public bool QuantizeOnLoad { get; init; }

    /// <summary>The checkpoint's config.json records int8 weights: every linear weight must come with its scale.</summary>
    public bool CheckpointIsQuantized { get; init; }

    /// <summary>True when linear layers end up int8 (quantized on load or stored so).</summary>
    public bool Quantizes => QuantizeOnLoad || CheckpointIsQuantized;

    public bool Has(string name) => source.Contains(name);

    public Tensor Read(string name, params long[] shape)
    {
        CheckShape(name, shape);
        _used.Add(name);
        return source.Load(name, dtype, device);
    }

    /// <summary>
    /// Reads a linear weight [<paramref name="outFeatures"/>, <paramref name="inFeatures"/>]. A stored int8 weight comes with
    /// its fp32 scale <c>name_scale</c> [out] (both checked, with the tensor named on error); a plain weight is returned in the
    /// compute dtype, or quantized from fp32 when <see cref="QuantizeOnLoad"/>. Scale is null for a plain layer.
    /// </summary>
    public (Tensor Weight, Tensor? Scale) ReadLinear(string name, long outFeatures, long inFeatures)
    {
        string scaleName = Quantization.Int8Quantizer.ScaleName(name);
        if (source.Contains(scaleName) || CheckpointIsQuantized)
        {
            if (!source.Contains(scaleName))
                throw new GlmException($"{source.Description}: scale tensor '{scaleName}' is missing; config.json records int8 quantization, so weight '{name}' needs a float32 scale of shape [{outFeatures}].");
            CheckShape(name, outFeatures, inFeatures);
            var scaleShape = source.Shape(scaleName);
            if (!scaleShape.SequenceEqual(new[] { outFeatures }))
                throw new GlmException($"{source.Description}: scale tensor '{scaleName}' has shape [{string.Join(", ", scaleShape)}]; expected [{outFeatures}] (one scale per output row of '{name}').");
            if (source.StoredDType(name) is { } stored && stored != ScalarType.Int8)
                throw new GlmException($"{source.Description}: tensor '{name}' is stored as {stored} but has a scale tensor '{scaleName}'; expected int8 weights next to a scale.");
            _used.Add(name);
            _used.Add(scaleName);
            return (source.Load(name, ScalarType.Int8, device), source.Load(scaleName, ScalarType.Float32, device));
        }
        if (!QuantizeOnLoad) return (Read(name, outFeatures, inFeatures), null);
        CheckShape(name, outFeatures, inFeatures);
        _used.Add(name);
        using var full = source.Load(name, ScalarType.Float32, device);
        return Quantization.Int8Quantizer.Quantize(full);
    }

    private void CheckShape(string name, params long[] shape)
    {
        if (!source.Contains(name))
            throw new GlmException($"{source.Description}: tensor '{name}' is missing; it is required by this model's config.");
        var found = source.Shape(name);
        if (!found.SequenceEqual(shape))
            throw new GlmException($"{source.Description}: tensor '{name}' has shape [{string.Join(", ", found)}]; expected [{string.Join(", ", shape)}] from config.json.");
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
