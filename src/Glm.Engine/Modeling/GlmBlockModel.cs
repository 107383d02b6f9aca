using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Modeling;

/// <summary>
/// The original THUDM GLM (glm-large-chinese, glm-10b-chinese and our own from-scratch models), glm-formats.md §1.2/§1.4:
/// word embeddings tied to the output head, learned position and block-position embeddings (2D positions), pre-LayerNorm
/// blocks with bias, fused QKV rows [Q; K; V], scores Q·(Kᵀ/√d) with masked entries set to −65504, GELU MLP, final
/// LayerNorm, logits = h·W_embᵀ. Activations are batch-first [b, s, H].
/// Instead of GLM's "mems" (cached hidden states re-projected every step) this caches keys/values in a <see cref="KvCache"/>;
/// both give the same attention inputs, because K/V of a cached token depend only on that token's hidden state.
/// Parameters may be fp32 "master" weights while <see cref="ComputeDType"/> is bf16: every forward casts them (autograd flows
/// back to the fp32 copies), which is how mixed-precision training runs without autocast.
/// </summary>
internal sealed class GlmBlockModel : nn.Module, IDecoderNetwork
{
    /// <summary>Score given to masked attention entries (GLM uses −65504, the fp16 minimum, not −∞; pitfall 20).</summary>
    internal const float MaskedScore = -65504f;

    private readonly GlmConfig _cfg;
    private readonly Weights _wordEmbeddings, _positionEmbeddings, _blockPositionEmbeddings, _finalNorm;
    private readonly ModuleList<GlmBlockLayer> _layers;
    private readonly Weights? _quantizedHead; // int8 copy of the tied head when linear layers are int8 (not registered, not saved)

    public GlmConfig Config => _cfg;
    /// <summary>dtype of the stored parameters.</summary>
    public ScalarType DType { get; }
    public Device Device { get; }
    /// <summary>Highest position id + 1 the learned tables hold (they have max_sequence_length + 1 rows).</summary>
    public int MaxPositions => _cfg.MaxPositions;

    /// <summary>dtype the forward pass computes in; parameters of another dtype are cast on use.</summary>
    internal ScalarType ComputeDType { get; set; }

    /// <summary>
    /// Use libtorch's fused scaled-dot-product attention (3–5× faster prefill and training) instead of the reference
    /// Q·(Kᵀ/√d) + −65504 path. Mathematically equal; the last bits differ (scale applied to the product, −∞ masking).
    /// </summary>
    internal bool UseFusedAttention { get; set; }

    public GlmBlockModel(GlmConfig cfg, WeightReader w, ScalarType dtype, Device device) : base("GlmBlockModel")
    {
        if (cfg.Layout != GlmLayout.OriginalGlm)
            throw new GlmException($"GlmBlockModel needs an original-GLM config; got layout {cfg.Layout}.");
        if (cfg.HiddenSize != cfg.NumHeads * cfg.HeadDim)
            throw new GlmException($"{w.Source.Description}: hidden_size {cfg.HiddenSize} is not num_attention_heads {cfg.NumHeads} × head dim {cfg.HeadDim}.");
        _cfg = cfg;
        DType = dtype;
        ComputeDType = dtype;
        Device = device;
        long h = cfg.HiddenSize, rows = cfg.MaxPositions + 1L;
        _wordEmbeddings = new Weights(w.Read(GlmBlockNames.WordEmbeddings, cfg.VocabSize, h));
        _positionEmbeddings = new Weights(w.Read(GlmBlockNames.PositionEmbeddings, rows, h));
        _blockPositionEmbeddings = new Weights(w.Read(GlmBlockNames.BlockPositionEmbeddings, rows, h));
        var layers = new GlmBlockLayer[cfg.NumLayers];
        for (int i = 0; i < layers.Length; i++) layers[i] = new GlmBlockLayer(cfg, w, i);
        _layers = new ModuleList<GlmBlockLayer>(layers);
        _finalNorm = new Weights(w.Read(GlmBlockNames.FinalNorm + ".weight", h), w.Read(GlmBlockNames.FinalNorm + ".bias", h));
        if (w.Quantizes) _quantizedHead = Weights.Quantized(_wordEmbeddings.Weight);

        // Mirror the Megatron state dict so parameter names equal checkpoint names (§1.2).
        register_module("word_embeddings", _wordEmbeddings);
        var transformer = new Container("transformer");
        transformer.Add("position_embeddings", _positionEmbeddings);
        transformer.Add("block_position_embeddings", _blockPositionEmbeddings);
        transformer.Add("layers", _layers);
        transformer.Add("final_layernorm", _finalNorm);
        register_module("transformer", transformer);
    }

    public KvCache CreateCache(int batch, int capacity) =>
        new(_cfg.NumLayers, batch, _cfg.NumHeads, capacity, _cfg.HeadDim, ComputeDType, Device);

    /// <summary>
    /// Logits [b, s or 1, V] in the compute dtype. <paramref name="positionIds"/> is [b, 2, s] (row 0 positions, row 1 block
    /// positions) or [b, s] (block position 0). <paramref name="mask"/> is bool [b or 1, 1, s, past+s], true = may attend;
    /// null = causal. With a cache the new keys/values are appended.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor positionIds, KvCache? cache, Tensor? mask, bool lastOnly)
    {
        long s = inputIds.shape[1];
        var x = Blocks(inputIds, positionIds, cache, mask);
        if (lastOnly && s > 1) x = x.narrow(1, s - 1, 1);
        return Head(x);
    }

    /// <summary>
    /// Logits [n, V] of the flattened positions <paramref name="rows"/> (int64 indices into b·s) of a cache-free forward pass.
    /// Training scores only Part B, so the vocabulary head (a third of the FLOPs and most of the activation memory at
    /// this size) runs on those rows alone.
    /// </summary>
    public Tensor ForwardRows(Tensor inputIds, Tensor positionIds, Tensor? mask, Tensor rows)
    {
        var x = Blocks(inputIds, positionIds, null, mask);
        return Head(x.view(-1, x.shape[^1]).index_select(0, rows));
    }

    private Tensor Head(Tensor x)
    {
        x = LayerNorm(x, _finalNorm, _cfg.NormEps, ComputeDType);
        if (_quantizedHead is not null) return _quantizedHead.Linear(x);
        var head = Cast(_wordEmbeddings.Weight, ComputeDType);
        return Kernels.CpuGemm.TryLinear(x, head, null) ?? F.linear(x, head);
    }

    /// <summary>Embeddings and every block: the hidden states [b, s, H] before the final LayerNorm.</summary>
    private Tensor Blocks(Tensor inputIds, Tensor positionIds, KvCache? cache, Tensor? mask)
    {
        long b = inputIds.shape[0], s = inputIds.shape[1];
        long past = cache?.Length ?? 0;
        Tensor positions, blockPositions;
        if (positionIds.dim() == 3)
        {
            positions = positionIds.select(1, 0);
            blockPositions = positionIds.select(1, 1);
        }
        else
        {
            positions = positionIds;
            blockPositions = zeros_like(positionIds);
        }
        // Same order of additions as the reference: (words + positions) + block positions.
        var x = Gather(_wordEmbeddings.Weight, inputIds, b, s) + Gather(_positionEmbeddings.Weight, positions, b, s);
        x = x + Gather(_blockPositionEmbeddings.Weight, blockPositions, b, s);
        mask ??= ChatGlmBlock.CausalMask(s, past + s, Device);
        for (int i = 0; i < _layers.Count; i++)
            x = _layers[i].Forward(x, cache, i, mask, ComputeDType, UseFusedAttention);
        if (cache is not null) cache.Length += (int)s;
        return x;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _quantizedHead?.Dispose();
        base.Dispose(disposing);
    }

    private Tensor Gather(Tensor table, Tensor ids, long b, long s) =>
        table.index_select(0, ids.reshape(-1)).view(b, s, -1).to(ComputeDType);

    internal static Tensor Cast(Tensor weight, ScalarType dtype) => weight.dtype == dtype ? weight : weight.to(dtype);

    internal static Tensor LayerNorm(Tensor x, Weights norm, double eps, ScalarType dtype) =>
        F.layer_norm(x, new[] { x.shape[^1] }, Cast(norm.Weight, dtype), Cast(norm.Bias!, dtype), eps);

    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights() =>
        named_parameters().Select(p => (p.name, (Tensor)p.parameter));

    /// <summary>Trainable parameters (requires_grad switched on) in registration order.</summary>
    internal IReadOnlyList<(string Name, Parameter Parameter)> EnableTraining()
    {
        if (_quantizedHead is not null)
            throw new GlmException("an int8-quantized model cannot be trained; load it without --quantize (or from an unquantized checkpoint).");
        var list = named_parameters().Select(p => (p.name, p.parameter)).ToList();
        foreach (var (_, p) in list) p.requires_grad_(true);
        return list;
    }
}

/// <summary>One pre-LN GLM block: LN → self-attention → residual, LN → GELU MLP → residual.</summary>
internal sealed class GlmBlockLayer : nn.Module
{
    private readonly GlmConfig _cfg;
    private readonly Weights _inputNorm, _qkv, _dense, _postNorm, _hTo4h, _4hToH;
    private readonly double _sqrtHeadDim;
    private readonly GELU.Approximate _gelu;

    public GlmBlockLayer(GlmConfig cfg, WeightReader w, int index) : base($"layer{index}")
    {
        _cfg = cfg;
        long h = cfg.HiddenSize, f = cfg.FfnHiddenSize;
        string p = GlmBlockNames.Layer(index);
        Weights Read(string name, params long[] shape) => new(w.Read($"{p}.{name}.weight", shape), w.Read($"{p}.{name}.bias", shape[0]));
        Weights ReadLinear(string name, long outF, long inF) => new(w.ReadLinear($"{p}.{name}.weight", outF, inF), w.Read($"{p}.{name}.bias", outF));
        _inputNorm = Read("input_layernorm", h);
        _qkv = ReadLinear("attention.query_key_value", 3 * h, h);
        _dense = ReadLinear("attention.dense", h, h);
        _postNorm = Read("post_attention_layernorm", h);
        _hTo4h = ReadLinear("mlp.dense_h_to_4h", f, h);
        _4hToH = ReadLinear("mlp.dense_4h_to_h", h, f);
        _sqrtHeadDim = Math.Sqrt(cfg.HeadDim);
        _gelu = cfg.Gelu == GeluVariant.Tanh ? GELU.Approximate.tanh : GELU.Approximate.none;

        var attention = new Container("attention");
        attention.Add("query_key_value", _qkv);
        attention.Add("dense", _dense);
        var mlp = new Container("mlp");
        mlp.Add("dense_h_to_4h", _hTo4h);
        mlp.Add("dense_4h_to_h", _4hToH);
        register_module("input_layernorm", _inputNorm);
        register_module("attention", attention);
        register_module("post_attention_layernorm", _postNorm);
        register_module("mlp", mlp);
    }

    public Tensor Forward(Tensor x, KvCache? cache, int layer, Tensor mask, ScalarType dtype, bool fused)
    {
        long b = x.shape[0], s = x.shape[1];
        int nh = _cfg.NumHeads, d = _cfg.HeadDim, hidden = _cfg.HiddenSize;
        double eps = _cfg.NormEps;

        var h = GlmBlockModel.LayerNorm(x, _inputNorm, eps, dtype);
        var qkv = Linear(h, _qkv, dtype);
        var q = qkv.narrow(2, 0, hidden).view(b, s, nh, d).transpose(1, 2);
        var k = qkv.narrow(2, hidden, hidden).view(b, s, nh, d).transpose(1, 2);
        var v = qkv.narrow(2, 2L * hidden, hidden).view(b, s, nh, d).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);

        Tensor context;
        if (fused)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        else
        {
            // Reference order: K is divided by √d before the product; masked scores become −65504 (S·M + (−65504)(1−M)
            // is the same number as masked_fill for finite scores, in every dtype).
            // Scalars held in locals: an implicitly converted one can be finalized while the native call still reads it
            // (TorchSharp leaves those to the GC; an evaluation run died in masked_fill's Scalar::toFloat that way).
            using var sqrtHeadDim = _sqrtHeadDim.ToScalar();
            using var maskedScore = GlmBlockModel.MaskedScore.ToScalar();
            var scores = matmul(q, k.transpose(-1, -2).div(sqrtHeadDim));
            scores = scores.masked_fill(mask.logical_not(), maskedScore);
            context = matmul(scores.softmax(-1), v);
        }
        x = x + Linear(context.transpose(1, 2).reshape(b, s, hidden), _dense, dtype);

        h = GlmBlockModel.LayerNorm(x, _postNorm, eps, dtype);
        var inner = F.gelu(Linear(h, _hTo4h, dtype), _gelu);
        return x + Linear(inner, _4hToH, dtype);
    }

    private static Tensor Linear(Tensor x, Weights w, ScalarType dtype)
    {
        if (w.IsQuantized) return w.Linear(x); // int8 layer: kernel or on-the-fly dequantization to x's dtype
        var weight = GlmBlockModel.Cast(w.Weight, dtype);
        var bias = w.Bias is null ? null : GlmBlockModel.Cast(w.Bias, dtype);
        var y = Kernels.CpuGemm.TryLinear(x, weight, bias) ?? F.linear(x, weight, bias); // prompts outside autograd: the engine's GEMM
        return w.Adapter is null ? y : y + w.Adapter.Delta(x);
    }
}

/// <summary>Tensor names of the original GLM checkpoint (glm-formats.md §1.2; HF files may add a leading <c>glm.</c>).</summary>
public static class GlmBlockNames
{
    /// <summary>Word embeddings [V, H], also the output head.</summary>
    public const string WordEmbeddings = "word_embeddings.weight";
    /// <summary>Learned absolute positions [max_sequence_length + 1, H].</summary>
    public const string PositionEmbeddings = "transformer.position_embeddings.weight";
    /// <summary>Learned block positions [max_sequence_length + 1, H].</summary>
    public const string BlockPositionEmbeddings = "transformer.block_position_embeddings.weight";
    /// <summary>Prefix of the final LayerNorm (<c>.weight</c>, <c>.bias</c>).</summary>
    public const string FinalNorm = "transformer.final_layernorm";
    /// <summary>The prefix HF's GLMForConditionalGeneration adds to every key.</summary>
    public const string HfPrefix = "glm.";

    /// <summary>Prefix of block <paramref name="index"/>.</summary>
    public static string Layer(int index) => $"transformer.layers.{index}";

    /// <summary>Every tensor name and shape an original-GLM config needs.</summary>
    public static Dictionary<string, long[]> ExpectedShapes(GlmConfig c)
    {
        long h = c.HiddenSize, f = c.FfnHiddenSize, rows = c.MaxPositions + 1L;
        var d = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            [WordEmbeddings] = [c.VocabSize, h],
            [PositionEmbeddings] = [rows, h],
            [BlockPositionEmbeddings] = [rows, h],
        };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = Layer(i);
            void Add(string name, long outFeatures, long inFeatures = 0)
            {
                d[$"{p}.{name}.weight"] = inFeatures == 0 ? [outFeatures] : [outFeatures, inFeatures];
                d[$"{p}.{name}.bias"] = [outFeatures];
            }
            Add("input_layernorm", h);
            Add("attention.query_key_value", 3 * h, h);
            Add("attention.dense", h, h);
            Add("post_attention_layernorm", h);
            Add("mlp.dense_h_to_4h", f, h);
            Add("mlp.dense_4h_to_h", h, f);
        }
        d[FinalNorm + ".weight"] = [h];
        d[FinalNorm + ".bias"] = [h];
        return d;
    }

    /// <summary>Parameter count of an original-GLM config (tied head counted once).</summary>
    public static long ParameterCount(GlmConfig c) => ExpectedShapes(c).Values.Sum(s => s.Aggregate(1L, (a, x) => a * x));
}

/// <summary>Presents a checkpoint whose keys carry a leading <c>glm.</c> (HF GLMForConditionalGeneration) under the bare names.</summary>
internal sealed class GlmPrefixStrippingWeights : IWeightSource
{
    private readonly IWeightSource _inner;
    private readonly Dictionary<string, string> _toInner = new(StringComparer.Ordinal);

    public GlmPrefixStrippingWeights(IWeightSource inner)
    {
        _inner = inner;
        foreach (var name in inner.Names)
        {
            string bare = name.StartsWith(GlmBlockNames.HfPrefix, StringComparison.Ordinal) ? name[GlmBlockNames.HfPrefix.Length..] : name;
            if (!_toInner.TryAdd(bare, name))
                throw new GlmException($"{inner.Description}: tensor '{bare}' appears both with and without the '{GlmBlockNames.HfPrefix}' prefix; expected one spelling.");
        }
    }

    public string Description => _inner.Description;
    public bool Contains(string name) => _toInner.ContainsKey(name);
    public long[] Shape(string name) => _inner.Shape(_toInner[name]);
    public Tensor Load(string name, ScalarType dtype, Device device) => _inner.Load(_toInner[name], dtype, device);
    public IEnumerable<string> Names => _toInner.Keys;
    public ScalarType? StoredDType(string name) => _inner.StoredDType(_toInner[name]);
}
