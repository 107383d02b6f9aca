using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>
/// Deterministic random weights for a config: each tensor is drawn from its own generator seeded by (seed, name), so the same
/// name gives the same values whatever order tensors are read in. Norm weights are near 1, the rest N(0, std).
/// Original-GLM configs get the Megatron initialisation our own models train from: N(0, std) matrices and embeddings,
/// LayerNorm weight 1 and every bias 0.
/// </summary>
public sealed class RandomWeights : IWeightSource
{
    private readonly Dictionary<string, long[]> _shapes;
    private readonly long _seed;
    private readonly double _std;
    private readonly bool _megatronInit;

    /// <summary>Standard deviation of the random matrices and embeddings (Megatron's 0.02).</summary>
    public const double DefaultStd = 0.02;

    /// <summary>Random weights for every tensor <paramref name="cfg"/> needs (canonical THUDM names).</summary>
    public RandomWeights(GlmConfig cfg, long seed = 0, double std = DefaultStd, string? description = null)
    {
        _shapes = ExpectedShapes(cfg);
        _seed = seed;
        _std = std;
        _megatronInit = cfg.Layout == GlmLayout.OriginalGlm;
        Description = description ?? $"random weights (seed {seed})";
    }

    /// <inheritdoc />
    public string Description { get; }
    /// <inheritdoc />
    public bool Contains(string name) => _shapes.ContainsKey(name);
    /// <inheritdoc />
    public long[] Shape(string name) => _shapes[name];
    /// <inheritdoc />
    public IEnumerable<string> Names => _shapes.Keys;

    /// <inheritdoc />
    public Tensor Load(string name, ScalarType dtype, Device device)
    {
        using var gen = new Generator((ulong)(_seed * 1_000_003 + StableHash(name)));
        var shape = _shapes[name];
        using var scope = NewDisposeScope();
        if (_megatronInit)
        {
            Tensor init = name.EndsWith(".bias", StringComparison.Ordinal) ? zeros(shape)
                : name.EndsWith("layernorm.weight", StringComparison.Ordinal) ? ones(shape)
                : randn(shape, generator: gen) * _std;
            return init.to(dtype, device).MoveToOuterDisposeScope();
        }
        Tensor t = name.EndsWith("layernorm.weight", StringComparison.Ordinal) || name.EndsWith("norm.weight", StringComparison.Ordinal)
            ? 1.0f + 0.1f * randn(shape, generator: gen)
            : randn(shape, generator: gen) * _std;
        return t.to(dtype, device).MoveToOuterDisposeScope();
    }

    private static long StableHash(string s)
    {
        ulong h = 14695981039346656037UL; // FNV-1a: stable across processes, unlike string.GetHashCode
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return (long)(h & 0x7fffffffffffUL);
    }

    /// <summary>Canonical tensor names and shapes of a config (THUDM names of its layout).</summary>
    public static Dictionary<string, long[]> ExpectedShapes(GlmConfig c)
    {
        if (c.Layout == GlmLayout.OriginalGlm) return GlmBlockNames.ExpectedShapes(c);
        long h = c.HiddenSize, qkv = (long)(c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim, f = c.FfnHiddenSize;
        var d = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            [ChatGlmCheckpointNames.Embedding] = [c.VocabSize, h],
            [ChatGlmCheckpointNames.FinalNorm] = [h],
        };
        if (!c.TiedEmbeddings) d[ChatGlmCheckpointNames.OutputLayer] = [c.VocabSize, h];
        for (int i = 0; i < c.NumLayers; i++)
        {
            var n = new ChatGlmCheckpointNames(i);
            d[n.InputNorm] = [h];
            d[n.QkvWeight] = [qkv, h];
            if (c.QkvBias) d[n.QkvBias] = [qkv];
            d[n.Dense] = [h, (long)c.NumHeads * c.HeadDim];
            d[n.PostAttnNorm] = [h];
            d[n.GateUp] = [2 * f, h];
            d[n.Down] = [h, f];
            if (c.LinearBias) { d[n.DenseBias] = [h]; d[n.GateUpBias] = [2 * f]; d[n.DownBias] = [h]; }
            if (c.Layout == GlmLayout.HfGlm4) { d[n.PostSelfAttnNorm] = [h]; d[n.PostMlpNorm] = [h]; }
        }
        return d;
    }
}
