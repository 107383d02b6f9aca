using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>
/// Tensor names of the THUDM ChatGLM layout (the engine's canonical names) and their mapping to transformers' <c>glm</c>/<c>glm4</c>
/// names, where Q/K/V are separate tensors (glm-formats.md §4.1).
/// </summary>
internal sealed class ChatGlmCheckpointNames(int layer)
{
    public const string Embedding = "transformer.embedding.word_embeddings.weight";
    public const string FinalNorm = "transformer.encoder.final_layernorm.weight";
    public const string OutputLayer = "transformer.output_layer.weight";
    public const string RotaryInvFreq = "transformer.rotary_pos_emb.inv_freq";

    private readonly string _p = $"transformer.encoder.layers.{layer}.";
    public string InputNorm => _p + "input_layernorm.weight";
    public string QkvWeight => _p + "self_attention.query_key_value.weight";
    public string QkvBias => _p + "self_attention.query_key_value.bias";
    public string Dense => _p + "self_attention.dense.weight";
    public string DenseBias => _p + "self_attention.dense.bias";
    public string PostAttnNorm => _p + "post_attention_layernorm.weight";
    public string GateUp => _p + "mlp.dense_h_to_4h.weight";
    public string GateUpBias => _p + "mlp.dense_h_to_4h.bias";
    public string Down => _p + "mlp.dense_4h_to_h.weight";
    public string DownBias => _p + "mlp.dense_4h_to_h.bias";
    public string PostSelfAttnNorm => _p + "post_self_attn_layernorm.weight";
    public string PostMlpNorm => _p + "post_mlp_layernorm.weight";
}

/// <summary>
/// Presents a transformers-native (<c>glm</c>/<c>glm4</c>) checkpoint under the canonical THUDM names: renames tensors and fuses
/// q/k/v projections into <c>query_key_value</c> rows [Q; K; V].
/// </summary>
internal sealed class HfGlmWeightSource : IWeightSource
{
    private readonly IWeightSource _inner;
    private readonly Dictionary<string, string[]> _map = new(StringComparer.Ordinal);

    public HfGlmWeightSource(IWeightSource inner, GlmConfig cfg)
    {
        _inner = inner;
        _map[ChatGlmCheckpointNames.Embedding] = ["model.embed_tokens.weight"];
        _map[ChatGlmCheckpointNames.FinalNorm] = ["model.norm.weight"];
        _map[ChatGlmCheckpointNames.OutputLayer] = ["lm_head.weight"];
        for (int i = 0; i < cfg.NumLayers; i++)
        {
            var n = new ChatGlmCheckpointNames(i);
            string p = $"model.layers.{i}.";
            _map[n.InputNorm] = [p + "input_layernorm.weight"];
            _map[n.QkvWeight] = [p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"];
            _map[n.QkvBias] = [p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"];
            _map[n.Dense] = [p + "self_attn.o_proj.weight"];
            _map[n.PostAttnNorm] = [p + "post_attention_layernorm.weight"];
            _map[n.GateUp] = [p + "mlp.gate_up_proj.weight"];
            _map[n.Down] = [p + "mlp.down_proj.weight"];
            _map[n.PostSelfAttnNorm] = [p + "post_self_attn_layernorm.weight"];
            _map[n.PostMlpNorm] = [p + "post_mlp_layernorm.weight"];
        }
        // int8 checkpoints: each linear weight's scale follows its weight's name (q/k/v scales fuse like the rows).
        foreach (var (canonical, parts) in _map.ToList())
            if (canonical.EndsWith(".weight", StringComparison.Ordinal))
                _map[Quantization.Int8Quantizer.ScaleName(canonical)] = parts.Select(Quantization.Int8Quantizer.ScaleName).ToArray();
    }

    public string Description => _inner.Description;

    public bool Contains(string name) => _map.TryGetValue(name, out var parts) && parts.All(_inner.Contains);

    public long[] Shape(string name)
    {
        var parts = _map[name];
        var first = _inner.Shape(parts[0]);
        if (parts.Length == 1) return first;
        var shape = (long[])first.Clone();
        shape[0] = parts.Sum(p => _inner.Shape(p)[0]);
        return shape;
    }

    public ScalarType? StoredDType(string name) => _inner.StoredDType(_map[name][0]);

    public Tensor Load(string name, ScalarType dtype, Device device)
    {
        var parts = _map[name];
        if (parts.Length == 1) return _inner.Load(parts[0], dtype, device);
        using var scope = NewDisposeScope();
        var pieces = parts.Select(p => _inner.Load(p, dtype, device)).ToArray();
        return cat(pieces, 0).MoveToOuterDisposeScope();
    }

    /// <summary>The HF names, so unused-tensor checks speak the checkpoint's own language.</summary>
    public IEnumerable<string> Names => _inner.Names.Select(ToCanonicalOrSelf);

    private string ToCanonicalOrSelf(string hfName)
    {
        foreach (var (canonical, parts) in _map)
            if (parts.Contains(hfName)) return canonical;
        return hfName;
    }

    /// <summary>Splits canonical tensors back into HF names (for saving a model in the HF layout).</summary>
    public static IEnumerable<(string Name, Tensor Tensor)> Export(IEnumerable<(string Name, Tensor Tensor)> canonical, GlmConfig cfg)
    {
        long q = (long)cfg.NumHeads * cfg.HeadDim, kv = (long)cfg.NumKvHeads * cfg.HeadDim;
        foreach (var (name, t) in canonical)
        {
            string n = name.Replace("transformer.encoder.layers.", "model.layers.");
            if (name == ChatGlmCheckpointNames.Embedding) { yield return ("model.embed_tokens.weight", t); continue; }
            if (name == ChatGlmCheckpointNames.FinalNorm) { yield return ("model.norm.weight", t); continue; }
            if (name == ChatGlmCheckpointNames.OutputLayer) { yield return ("lm_head.weight", t); continue; }
            if (name == Quantization.Int8Quantizer.ScaleName(ChatGlmCheckpointNames.OutputLayer)) { yield return ("lm_head.weight_scale", t); continue; }
            const string fusedQkv = "self_attention.query_key_value.";
            if (n.Contains(fusedQkv, StringComparison.Ordinal))
            {
                // weight, bias or weight_scale: all are split along rows.
                int at = n.IndexOf(fusedQkv, StringComparison.Ordinal);
                string suffix = n[(at + fusedQkv.Length)..];
                string p = n[..at];
                yield return (p + "self_attn.q_proj." + suffix, t.narrow(0, 0, q));
                yield return (p + "self_attn.k_proj." + suffix, t.narrow(0, q, kv));
                yield return (p + "self_attn.v_proj." + suffix, t.narrow(0, q + kv, kv));
                continue;
            }
            yield return (n.Replace("self_attention.dense.", "self_attn.o_proj.")
                           .Replace("mlp.dense_h_to_4h.", "mlp.gate_up_proj.")
                           .Replace("mlp.dense_4h_to_h.", "mlp.down_proj."), t);
        }
    }
}
