using Glm.Engine.Diagnostics;
using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Modeling;

/// <summary>
/// The GLM decoder used by ChatGLM2/3, GLM-4-9B and transformers' <c>glm</c>/<c>glm4</c>: pre-RMSNorm blocks, fused QKV with
/// bias, grouped-query attention, partial interleaved RoPE, SwiGLU MLP, untied output head (glm-formats.md §2.3, §3.2, §4.3, §4.4).
/// Activations are batch-first [b, s, H]. Parameter names follow the THUDM checkpoint; HF names are mapped in
/// <see cref="ChatGlmCheckpointNames"/>.
/// </summary>
internal sealed class ChatGlmModel : nn.Module, IDecoderNetwork, IHiddenStateNetwork
{
    private readonly GlmConfig _cfg;
    private readonly Weights _wordEmbeddings;
    private readonly ModuleList<ChatGlmBlock> _layers;
    private readonly Weights _finalNorm;
    private readonly Weights _outputLayer;
    private readonly RotaryEmbedding _rope;
    private readonly bool _hfNormRounding;

    public GlmConfig Config => _cfg;
    public ScalarType DType { get; }
    public Device Device { get; }

    public ChatGlmModel(GlmConfig cfg, WeightReader w, ScalarType dtype, Device device, int maxPositions) : base("ChatGlmModel")
    {
        _cfg = cfg;
        DType = dtype;
        Device = device;
        _hfNormRounding = cfg.Layout != GlmLayout.ChatGlm;
        int h = cfg.HiddenSize;
        _wordEmbeddings = new Weights(w.Read(ChatGlmCheckpointNames.Embedding, cfg.VocabSize, h));
        var blocks = new ChatGlmBlock[cfg.NumLayers];
        for (int i = 0; i < cfg.NumLayers; i++) blocks[i] = new ChatGlmBlock(cfg, w, i);
        _layers = new ModuleList<ChatGlmBlock>(blocks);
        _finalNorm = new Weights(w.Read(ChatGlmCheckpointNames.FinalNorm, h));
        // A tied head stays the embedding table unless linear layers are int8: then the head is an int8 copy (not saved;
        // re-quantized deterministically on load) while lookups keep the compute-dtype table.
        _outputLayer = !cfg.TiedEmbeddings ? new Weights(w.ReadLinear(ChatGlmCheckpointNames.OutputLayer, cfg.VocabSize, h))
            : w.Quantizes ? Weights.Quantized(_wordEmbeddings.Weight) : _wordEmbeddings;
        _rope = new RotaryEmbedding(cfg.RotaryDim, cfg.RopeBase, maxPositions, dtype, device);

        // Mirror the THUDM hierarchy so parameter names equal checkpoint names: transformer.embedding.word_embeddings.weight ...
        var transformer = new Container("transformer");
        var emb = new Container("embedding");
        emb.Add("word_embeddings", _wordEmbeddings);
        transformer.Add("embedding", emb);
        var encoder = new Container("encoder");
        encoder.Add("layers", _layers);
        encoder.Add("final_layernorm", _finalNorm);
        transformer.Add("encoder", encoder);
        if (!cfg.TiedEmbeddings) transformer.Add("output_layer", _outputLayer);
        register_module("transformer", transformer);
    }

    public int MaxPositions => _rope.MaxPositions;

    public KvCache CreateCache(int batch, int capacity) =>
        new(_cfg.NumLayers, batch, _cfg.NumKvHeads, capacity, _cfg.HeadDim, DType, Device);

    /// <summary>
    /// Runs the decoder. <paramref name="inputIds"/> and <paramref name="positionIds"/> are [b, s] int64. With a cache, the new
    /// keys/values are appended and attention spans all cached tokens. <paramref name="mask"/> is an optional boolean
    /// [b, 1, s, past+s] (true = may attend); without it attention is causal. Returns logits [b, s or 1, V] in the model dtype.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor positionIds, KvCache? cache, Tensor? mask, bool lastOnly)
    {
        if (cache is not null && DecodeStep() is { } step && step.TryRun(inputIds, positionIds, cache, mask) is { } logits1) return logits1;
        long b = inputIds.shape[0], s = inputIds.shape[1];
        long t = DecodeProfiler.Start();
        var x = _wordEmbeddings.Weight.index_select(0, inputIds.reshape(-1)).view(b, s, -1);
        var (cos, sin) = _rope.Gather(positionIds);
        DecodeProfiler.Stop(DecodeSection.Embedding, t);
        for (int i = 0; i < _layers.Count; i++)
            x = _layers[i].Forward(x, positionIds, cos, sin, _rope, cache, i, mask, _hfNormRounding);
        if (cache is not null) cache.Length += (int)s;
        if (lastOnly && s > 1) x = x.narrow(1, s - 1, 1);
        x = RmsNorm(x, _finalNorm.Weight, _cfg.NormEps, _hfNormRounding);
        t = DecodeProfiler.Start();
        var logits = _outputLayer.Linear(x);
        DecodeProfiler.Stop(DecodeSection.OutputHead, t);
        return logits;
    }

    private ChatGlmDecodeStep? _decodeStep;
    private bool _decodeStepTried;

    /// <summary>The fused single-sequence decode step, built at the first decode (null where it does not apply).</summary>
    private ChatGlmDecodeStep? DecodeStep()
    {
        if (!ChatGlmDecodeStep.Enabled) return null;
        if (!_decodeStepTried)
        {
            _decodeStepTried = true;
            _decodeStep = ChatGlmDecodeStep.TryCreate(_cfg, DType, Device, _layers.ToArray(), _wordEmbeddings, _finalNorm, _outputLayer, _rope, _hfNormRounding);
        }
        return _decodeStep;
    }

    /// <summary>
    /// RMSNorm with fp32 statistics. ChatGLM multiplies by the weight in fp32 and casts once; HF casts first, then multiplies
    /// (glm-formats.md pitfall 7) — the last bits differ in bf16/fp16.
    /// </summary>
    internal static Tensor RmsNorm(Tensor x, Tensor weight, double eps, bool castBeforeWeight)
    {
        long t = DecodeProfiler.Start();
        var y = CpuDecodeOps.TryRmsNorm(x, weight, eps, castBeforeWeight) ?? ReferenceRmsNorm(x, weight, eps, castBeforeWeight);
        DecodeProfiler.Stop(DecodeSection.Norm, t);
        return y;
    }

    internal static Tensor ReferenceRmsNorm(Tensor x, Tensor weight, double eps, bool castBeforeWeight)
    {
        var dtype = x.dtype;
        var x32 = x.to(ScalarType.Float32);
        using var epsilon = eps.ToScalar(); // a local, not an implicit Scalar the GC may finalize mid-call (see GlmBlockLayer)
        var normed = x32 * (x32 * x32).mean(new long[] { -1 }, keepdim: true).add_(epsilon).rsqrt_();
        return castBeforeWeight ? weight * normed.to(dtype) : (weight * normed).to(dtype);
    }


    // ---- IHiddenStateNetwork (embeddings): the forward pass without the output head, stopped after a chosen block. ----

    public int LayerCount => _layers.Count;

    public Tensor HiddenStates(Tensor inputIds, Tensor positionIds, int layers)
    {
        if (layers < 0 || layers > _layers.Count)
            throw new ArgumentOutOfRangeException(nameof(layers), layers, $"expected 0..{_layers.Count}");
        long b = inputIds.shape[0], s = inputIds.shape[1];
        var x = _wordEmbeddings.Weight.index_select(0, inputIds.reshape(-1)).view(b, s, -1);
        var (cos, sin) = _rope.Gather(positionIds);
        for (int i = 0; i < layers; i++)
            x = _layers[i].Forward(x, positionIds, cos, sin, _rope, null, i, null, _hfNormRounding);
        return layers == _layers.Count ? RmsNorm(x, _finalNorm.Weight, _cfg.NormEps, _hfNormRounding) : x;
    }

    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights() =>
        named_parameters().Select(p => (p.name, (Tensor)p.parameter));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rope.Dispose();
            _decodeStep?.Dispose();
            if (!ReferenceEquals(_outputLayer, _wordEmbeddings) && _cfg.TiedEmbeddings) _outputLayer.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>One pre-norm block: attention and SwiGLU MLP with residuals (glm4 adds post-sublayer "sandwich" norms).</summary>
internal sealed class ChatGlmBlock : nn.Module
{
    private readonly GlmConfig _cfg;
    private readonly Weights _inputNorm, _postAttnNorm, _qkv, _dense, _gateUp, _down;
    private readonly Weights? _postSelfAttnNorm, _postMlpNorm;
    private readonly int _index;
    private readonly float _scale;

    internal Weights InputNorm => _inputNorm;
    internal Weights PostAttentionNorm => _postAttnNorm;
    internal Weights Qkv => _qkv;
    internal Weights Dense => _dense;
    internal Weights GateUp => _gateUp;
    internal Weights Down => _down;
    internal Weights? PostSelfAttentionNorm => _postSelfAttnNorm;
    internal Weights? PostMlpNorm => _postMlpNorm;
    internal float AttentionScale => _scale;

    public ChatGlmBlock(GlmConfig cfg, WeightReader w, int index) : base($"layer{index}")
    {
        _cfg = cfg;
        _index = index;
        int h = cfg.HiddenSize, qkvOut = (cfg.NumHeads + 2 * cfg.NumKvHeads) * cfg.HeadDim;
        var n = new ChatGlmCheckpointNames(index);
        _inputNorm = new Weights(w.Read(n.InputNorm, h));
        _qkv = new Weights(w.ReadLinear(n.QkvWeight, qkvOut, h), cfg.QkvBias ? w.Read(n.QkvBias, qkvOut) : null);
        _dense = new Weights(w.ReadLinear(n.Dense, h, cfg.NumHeads * cfg.HeadDim), cfg.LinearBias ? w.Read(n.DenseBias, h) : null);
        _postAttnNorm = new Weights(w.Read(n.PostAttnNorm, h));
        _gateUp = new Weights(w.ReadLinear(n.GateUp, 2L * cfg.FfnHiddenSize, h), cfg.LinearBias ? w.Read(n.GateUpBias, 2L * cfg.FfnHiddenSize) : null);
        _down = new Weights(w.ReadLinear(n.Down, h, cfg.FfnHiddenSize), cfg.LinearBias ? w.Read(n.DownBias, h) : null);
        if (cfg.Layout == GlmLayout.HfGlm4)
        {
            _postSelfAttnNorm = new Weights(w.Read(n.PostSelfAttnNorm, h));
            _postMlpNorm = new Weights(w.Read(n.PostMlpNorm, h));
        }
        _scale = 1.0f / MathF.Sqrt(cfg.HeadDim);

        var attn = new Container("self_attention");
        attn.Add("query_key_value", _qkv);
        attn.Add("dense", _dense);
        var mlp = new Container("mlp");
        mlp.Add("dense_h_to_4h", _gateUp);
        mlp.Add("dense_4h_to_h", _down);
        register_module("input_layernorm", _inputNorm);
        register_module("self_attention", attn);
        register_module("post_attention_layernorm", _postAttnNorm);
        register_module("mlp", mlp);
        if (_postSelfAttnNorm is not null) register_module("post_self_attn_layernorm", _postSelfAttnNorm);
        if (_postMlpNorm is not null) register_module("post_mlp_layernorm", _postMlpNorm);
    }

    public Tensor Forward(Tensor x, Tensor positionIds, Tensor cos, Tensor sin, RotaryEmbedding rope, KvCache? cache, int layer, Tensor? mask, bool hfNorm)
    {
        long b = x.shape[0], s = x.shape[1];
        int nh = _cfg.NumHeads, g = _cfg.NumKvHeads, d = _cfg.HeadDim;
        double eps = _cfg.NormEps;

        var h = ChatGlmModel.RmsNorm(x, _inputNorm.Weight, eps, hfNorm);
        long t = DecodeProfiler.Start();
        var qkv = _qkv.Linear(h);
        DecodeProfiler.Stop(DecodeSection.QkvProjection, t);
        t = DecodeProfiler.Start();
        bool rotated = rope.TryApplyInPlace(qkv, nh + g, d, positionIds); // Q and K heads rotated in qkv (managed loop)
        var q = qkv.narrow(2, 0, nh * d).view(b, s, nh, d).transpose(1, 2);
        var k = qkv.narrow(2, nh * d, g * d).view(b, s, g, d).transpose(1, 2);
        var v = qkv.narrow(2, (nh + g) * d, g * d).view(b, s, g, d).transpose(1, 2);
        if (!rotated)
        {
            q = rope.Apply(q, cos, sin);
            k = rope.Apply(k, cos, sin);
        }
        DecodeProfiler.Stop(DecodeSection.Rotary, t);
        t = DecodeProfiler.Start();
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        DecodeProfiler.Stop(DecodeSection.KvCacheAppend, t);

        t = DecodeProfiler.Start();
        var ctx = Attention(q, k, v, mask, causal: cache is null || cache.Length == 0);
        DecodeProfiler.Stop(DecodeSection.Attention, t);
        x = ProjectAndAdd(_dense, ctx.transpose(1, 2).reshape(b, s, nh * d), x, _postSelfAttnNorm, DecodeSection.OutputProjection, hfNorm);

        h = ChatGlmModel.RmsNorm(x, _postAttnNorm.Weight, eps, hfNorm);
        t = DecodeProfiler.Start();
        // Prompts on the engine's GEMM apply SwiGLU in its epilogue (the gate/up product is never stored).
        var m = _gateUp.TryLinearSwiGlu(h, _cfg.FfnHiddenSize);
        if (m is not null) DecodeProfiler.Stop(DecodeSection.MlpProjections, t);
        else
        {
            var gateUp = _gateUp.Linear(h);
            DecodeProfiler.Stop(DecodeSection.MlpProjections, t);
            t = DecodeProfiler.Start();
            m = CpuDecodeOps.TrySwiGlu(gateUp, _cfg.FfnHiddenSize)
                ?? F.silu(gateUp.narrow(2, 0, _cfg.FfnHiddenSize)) * gateUp.narrow(2, _cfg.FfnHiddenSize, _cfg.FfnHiddenSize);
            DecodeProfiler.Stop(DecodeSection.SwiGlu, t);
        }
        return ProjectAndAdd(_down, m, x, _postMlpNorm, DecodeSection.MlpProjections, hfNorm);
    }

    /// <summary>
    /// residual + norm(layer(input)): the sublayer's output projection and the residual add. Without a sandwich norm, prompts on
    /// the engine's GEMM add the residual in its epilogue (same bits, one pass fewer).
    /// </summary>
    private Tensor ProjectAndAdd(Weights layer, Tensor input, Tensor residual, Weights? norm, DecodeSection section, bool hfNorm)
    {
        long t = DecodeProfiler.Start();
        var sum = norm is null ? layer.TryLinearAddTo(input, residual) : null;
        if (sum is not null)
        {
            DecodeProfiler.Stop(section, t);
            return sum;
        }
        var o = layer.Linear(input);
        DecodeProfiler.Stop(section, t);
        if (norm is not null) o = ChatGlmModel.RmsNorm(o, norm.Weight, _cfg.NormEps, hfNorm);
        t = DecodeProfiler.Start();
        var x = CpuDecodeOps.TryAdd(residual, o) ?? residual + o;
        DecodeProfiler.Stop(DecodeSection.Residual, t);
        return x;
    }

    /// <summary>
    /// Scaled dot-product attention with grouped KV heads (head h uses KV head h / groupSize). Single-token decode uses a
    /// grouped matmul (no K/V expansion; SDPA is slow there in bf16); an unmasked prompt (causal over the cache) the managed
    /// loop of <see cref="CpuDecodeOps.TryPrefillAttention"/>; anything else SDPA with K/V expanded.
    /// </summary>
    private Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal)
    {
        long b = q.shape[0], nh = q.shape[1], s = q.shape[2], d = q.shape[3];
        long g = k.shape[1], t = k.shape[2], group = nh / g;
        if (s == 1)
        {
            if (CpuDecodeOps.TryAttention(q, k, v, _scale, mask) is { } fused) return fused;
            var qg = q.reshape(b, g, group, d);
            using var scale = _scale.ToScalar();
            using var masked = float.NegativeInfinity.ToScalar();
            var scores = matmul(qg, k.transpose(2, 3)).mul_(scale).to(ScalarType.Float32);
            if (mask is not null) scores = scores.masked_fill(mask.view(b, 1, 1, t).logical_not(), masked);
            var probs = scores.softmax(-1).to(v.dtype);
            return matmul(probs, v).reshape(b, nh, 1, d);
        }
        if (mask is null && CpuDecodeOps.TryPrefillAttention(q, k, v, _scale) is { } prefill) return prefill;
        if (group > 1)
        {
            k = k.repeat_interleave(group, 1);
            v = v.repeat_interleave(group, 1);
        }
        if (mask is null && causal && s == t)
            return F.scaled_dot_product_attention(q, k, v, is_casual: true);
        mask ??= CausalMask(s, t, q.device);
        return F.scaled_dot_product_attention(q, k, v, attn_mask: mask);
    }

    /// <summary>Boolean mask [1, 1, s, t]: query i (at absolute position t−s+i) may see keys 0..t−s+i.</summary>
    internal static Tensor CausalMask(long s, long t, Device device) =>
        ones(new long[] { s, t }, dtype: ScalarType.Bool, device: device).tril(t - s).view(1, 1, s, t);
}

/// <summary>A named grouping module so parameter names mirror the checkpoint's hierarchy.</summary>
internal sealed class Container : nn.Module
{
    public Container(string name) : base(name) { }
    public void Add(string name, nn.Module child) => register_module(name, child);
}

/// <summary>A term added to a <see cref="Weights"/> linear layer's output, e.g. a LoRA adapter's (dropout(x)·Aᵀ·Bᵀ)·α/r.</summary>
internal interface ILinearAdapter
{
    /// <summary>The additive term for input <paramref name="x"/> [..., in]; returns [..., out] in x's dtype.</summary>
    Tensor Delta(Tensor x);
}
