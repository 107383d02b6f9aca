using System.Text.Json;
using System.Text.Json.Nodes;

namespace Glm.Engine.Modeling;

/// <summary>Which checkpoint layout a model folder uses (tensor names, fused or split projections, norms).</summary>
public enum GlmLayout
{
    /// <summary>THUDM remote-code ChatGLM layout (ChatGLM2/3, GLM-4-9B-chat): <c>transformer.encoder.layers.N...</c>, fused QKV.</summary>
    ChatGlm,
    /// <summary>transformers-native <c>glm</c> (GlmForCausalLM): <c>model.layers.N.self_attn.q_proj</c>..., Llama-style names.</summary>
    HfGlm,
    /// <summary>transformers-native <c>glm4</c> (Glm4ForCausalLM, GLM-4-0414): HfGlm plus sandwich norms.</summary>
    HfGlm4,
    /// <summary>Original THUDM GLM (glm-large-chinese, glm-10b-chinese, and our own from-scratch models).</summary>
    OriginalGlm,
}

/// <summary>GELU flavour of the original-GLM MLP.</summary>
public enum GeluVariant
{
    /// <summary>Exact GELU, x·Φ(x) with erf (HF remote code <c>modeling_glm.py</c>).</summary>
    Erf,
    /// <summary>Tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³))) (THUDM/GLM training).</summary>
    Tanh,
}

/// <summary>Original-GLM control-token ids recorded in config.json; any may be null (then the tokenizer is asked).</summary>
/// <param name="Mask">[MASK] (mask_token_id).</param>
/// <param name="SentenceMask">[sMASK] (smask_token_id).</param>
/// <param name="GenerationMask">[gMASK] (gmask_token_id).</param>
/// <param name="Sop">&lt;|startofpiece|&gt; (sop_token_id).</param>
/// <param name="Eop">&lt;|endofpiece|&gt; (eop_token_id).</param>
public sealed record GlmBlankTokenIds(int? Mask, int? SentenceMask, int? GenerationMask, int? Sop, int? Eop)
{
    internal static GlmBlankTokenIds? FromConfig(int? mask, int? sMask, int? gMask, int? sop, int? eop) =>
        mask is null && sMask is null && gMask is null && sop is null && eop is null ? null : new(mask, sMask, gMask, sop, eop);
}

/// <summary>
/// Architecture facts of a GLM-family decoder, normalised from the several <c>config.json</c> dialects
/// (see ../shared/reference/glm-formats.md §2.1, §3.1, §4.2).
/// </summary>
public sealed record GlmConfig
{
    /// <summary>Checkpoint layout.</summary>
    public required GlmLayout Layout { get; init; }
    /// <summary>Number of transformer blocks.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Model width H.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads (ChatGLM "multi_query_group_num"); equals <see cref="NumHeads"/> without GQA.</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Per-head dimension (ChatGLM "kv_channels").</summary>
    public required int HeadDim { get; init; }
    /// <summary>FFN inner size (SwiGLU: each of gate and up).</summary>
    public required int FfnHiddenSize { get; init; }
    /// <summary>(Padded) vocabulary size = rows of the embedding.</summary>
    public required int VocabSize { get; init; }
    /// <summary>Norm epsilon.</summary>
    public required double NormEps { get; init; }
    /// <summary>RoPE base (10000 × rope_ratio for ChatGLM; rope_theta for HF).</summary>
    public double RopeBase { get; init; } = 10000;
    /// <summary>Number of rotated dims per head (GLM: half the head dim).</summary>
    public int RotaryDim { get; init; }
    /// <summary>Bias on the QKV projection.</summary>
    public bool QkvBias { get; init; } = true;
    /// <summary>Bias on the other linear layers (dense, MLP).</summary>
    public bool LinearBias { get; init; }
    /// <summary>Output head shares the word embeddings.</summary>
    public bool TiedEmbeddings { get; init; }
    /// <summary>Longest supported sequence (positions beyond it are out of range).</summary>
    public required int MaxPositions { get; init; }
    /// <summary>Token ids that end generation.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
    /// <summary>Padding id.</summary>
    public int PadTokenId { get; init; }
    /// <summary>dtype the checkpoint declares (float32, float16, bfloat16).</summary>
    public string TorchDtype { get; init; } = "float32";
    /// <summary>model_type as written in config.json.</summary>
    public string ModelType { get; init; } = "";
    /// <summary>
    /// Original GLM only: GELU variant of the MLP (config.json <c>"gelu"</c>: "erf" or "tanh"). Absent = erf, as the HF remote
    /// code computes it for released checkpoints; our own models are trained with tanh, as THUDM/GLM was (pitfall 21).
    /// </summary>
    public GeluVariant Gelu { get; init; } = GeluVariant.Erf;
    /// <summary>Original GLM only: blank-infilling control-token ids from config.json (<c>mask_token_id</c>, ...); null = ask the tokenizer.</summary>
    public GlmBlankTokenIds? BlankTokens { get; init; }

    /// <summary>
    /// How the checkpoint's linear weights are stored (config.json <c>"quantization": {"method": "int8", ...}</c>); a loaded
    /// model reports what it holds in memory.
    /// </summary>
    public GlmQuantization Quantization { get; init; }

    /// <summary>Query heads per KV head.</summary>
    public int GroupSize => NumHeads / NumKvHeads;

    /// <summary>Reads and validates <c>config.json</c> in <paramref name="folder"/>.</summary>
    public static GlmConfig Load(string folder)
    {
        var config = JsonFields.Load(Path.Combine(folder, "config.json"), "A model folder needs config.json next to its weights (HF layout).");
        return FromJson(config.Json, config.Source);
    }

    /// <summary>Builds a config from parsed JSON; <paramref name="source"/> names the file in error messages.</summary>
    public static GlmConfig FromJson(JsonObject json, string source)
    {
        var r = new JsonFields(json, source);
        string modelType = r.Str("model_type");
        var archs = json["architectures"] as JsonArray;
        string arch = archs is { Count: > 0 } ? archs[0]?.GetValue<string>() ?? "" : "";
        var quantization = json["quantization"] is JsonObject q
            ? GlmQuantizationNames.Parse(q["method"]?.GetValue<string>() ?? throw new GlmException($"{source}: field 'quantization' has no 'method'; expected {{\"method\": \"int8\", ...}}."))
            : GlmQuantization.None;
        var cfg = modelType switch
        {
            "chatglm" => ChatGlm(r, modelType),
            "glm" when arch.StartsWith("GLMModel", StringComparison.Ordinal) || arch.StartsWith("GLMFor", StringComparison.Ordinal) || json.ContainsKey("num_layers") => OriginalGlm(r, modelType),
            "glm" => HfGlm(r, modelType, GlmLayout.HfGlm),
            "glm4" => HfGlm(r, modelType, GlmLayout.HfGlm4),
            _ => throw new GlmException($"{source}: model_type '{modelType}' is not supported; expected chatglm, glm or glm4."),
        };
        return cfg with { Quantization = quantization };
    }

    private static GlmConfig ChatGlm(JsonFields r, string modelType)
    {
        int hidden = r.Int("hidden_size");
        int heads = r.Int("num_attention_heads");
        int headDim = r.IntOr("kv_channels", hidden / heads);
        bool mqa = r.BoolOr("multi_query_attention", false);
        int vocab = r.Has("padded_vocab_size") ? r.Int("padded_vocab_size") : r.Int("vocab_size");
        if (!r.BoolOr("rmsnorm", true))
            throw new GlmException($"{r.Source}: rmsnorm=false (LayerNorm ChatGLM variants) is not supported.");
        if (r.BoolOr("apply_residual_connection_post_layernorm", false))
            throw new GlmException($"{r.Source}: apply_residual_connection_post_layernorm=true is not supported.");
        return new GlmConfig
        {
            Layout = GlmLayout.ChatGlm,
            ModelType = modelType,
            NumLayers = r.Int("num_layers"),
            HiddenSize = hidden,
            NumHeads = heads,
            NumKvHeads = mqa ? r.Int("multi_query_group_num") : heads,
            HeadDim = headDim,
            FfnHiddenSize = r.Int("ffn_hidden_size"),
            VocabSize = vocab,
            NormEps = r.DoubleOr("layernorm_epsilon", 1e-5),
            RopeBase = 10000.0 * r.DoubleOr("rope_ratio", 1.0),
            RotaryDim = headDim / 2,
            QkvBias = r.BoolOr("add_qkv_bias", false) || r.BoolOr("add_bias_linear", false),
            LinearBias = r.BoolOr("add_bias_linear", false),
            TiedEmbeddings = r.BoolOr("tie_word_embeddings", false),
            MaxPositions = r.Int("seq_length"),
            EosTokenIds = r.IntList("eos_token_id"),
            PadTokenId = r.IntOr("pad_token_id", 0),
            TorchDtype = r.StrOr("torch_dtype", "float32"),
        }.Validated(r.Source);
    }

    private static GlmConfig HfGlm(JsonFields r, string modelType, GlmLayout layout)
    {
        int hidden = r.Int("hidden_size");
        int heads = r.Int("num_attention_heads");
        int headDim = r.IntOr("head_dim", hidden / heads);
        double partial = r.DoubleOr("partial_rotary_factor", 0.5);
        return new GlmConfig
        {
            Layout = layout,
            ModelType = modelType,
            NumLayers = r.Int("num_hidden_layers"),
            HiddenSize = hidden,
            NumHeads = heads,
            NumKvHeads = r.IntOr("num_key_value_heads", heads),
            HeadDim = headDim,
            FfnHiddenSize = r.Int("intermediate_size"),
            VocabSize = r.Int("vocab_size"),
            NormEps = r.DoubleOr("rms_norm_eps", 1e-5),
            RopeBase = r.DoubleOr("rope_theta", 10000.0),
            RotaryDim = (int)(headDim * partial),
            QkvBias = r.BoolOr("attention_bias", true),
            LinearBias = false,
            TiedEmbeddings = r.BoolOr("tie_word_embeddings", false),
            MaxPositions = r.IntOr("max_position_embeddings", 131072),
            EosTokenIds = r.IntList("eos_token_id"),
            PadTokenId = r.IntOr("pad_token_id", 0),
            TorchDtype = r.StrOr("torch_dtype", "float32"),
        }.Validated(r.Source);
    }

    private static GlmConfig OriginalGlm(JsonFields r, string modelType)
    {
        int hidden = r.Int("hidden_size");
        int heads = r.Int("num_attention_heads");
        if (r.BoolOr("relative_encoding", false))
            throw new GlmException($"{r.Source}: relative_encoding=true (Transformer-XL GLM) is not supported.");
        if (!r.BoolOr("block_position_encoding", true))
            throw new GlmException($"{r.Source}: block_position_encoding=false is not supported; expected true (2D positions).");
        return new GlmConfig
        {
            Layout = GlmLayout.OriginalGlm,
            ModelType = modelType,
            NumLayers = r.Int("num_layers"),
            HiddenSize = hidden,
            NumHeads = heads,
            NumKvHeads = heads,
            HeadDim = hidden / heads,
            FfnHiddenSize = r.IntOr("intermediate_size", 4 * hidden),
            VocabSize = r.Int("vocab_size"),
            NormEps = r.DoubleOr("layernorm_epsilon", 1e-5),
            QkvBias = true,
            LinearBias = true,
            TiedEmbeddings = true,
            MaxPositions = r.Int("max_sequence_length"),
            EosTokenIds = r.Has("eos_token_id") ? r.IntList("eos_token_id") : Array.Empty<int>(),
            PadTokenId = r.IntOr("pad_token_id", 0),
            TorchDtype = r.StrOr("torch_dtype", "float32"),
            Gelu = r.StrOr("gelu", "erf") switch
            {
                "erf" or "gelu" => GeluVariant.Erf,
                "tanh" or "gelu_new" or "gelu_pytorch_tanh" => GeluVariant.Tanh,
                var other => throw new GlmException($"{r.Source}: field 'gelu' = \"{other}\"; expected \"erf\" or \"tanh\"."),
            },
            BlankTokens = GlmBlankTokenIds.FromConfig(r.IntOrNull("mask_token_id"), r.IntOrNull("smask_token_id"),
                r.IntOrNull("gmask_token_id"), r.IntOrNull("sop_token_id"), r.IntOrNull("eop_token_id")),
        }.Validated(r.Source);
    }

    private GlmConfig Validated(string source)
    {
        void Positive(string field, long value)
        {
            if (value <= 0) throw new GlmException($"{source}: {field} = {value}; expected a positive number.");
        }
        Positive("num_layers", NumLayers); Positive("hidden_size", HiddenSize); Positive("num_attention_heads", NumHeads);
        Positive("num_key_value_heads", NumKvHeads); Positive("head_dim", HeadDim); Positive("vocab_size", VocabSize);
        Positive("ffn_hidden_size", FfnHiddenSize); Positive("max positions", MaxPositions);
        if (NumHeads % NumKvHeads != 0)
            throw new GlmException($"{source}: {NumHeads} attention heads cannot be grouped over {NumKvHeads} key/value heads; expected a divisor.");
        if (Layout != GlmLayout.OriginalGlm && (RotaryDim <= 0 || RotaryDim % 2 != 0 || RotaryDim > HeadDim))
            throw new GlmException($"{source}: rotary dimension {RotaryDim} (head_dim {HeadDim}); expected an even number ≤ head_dim.");
        return this;
    }

    /// <summary>Writes this config as a config.json in the layout's own dialect.</summary>
    public JsonObject ToJson()
    {
        var eos = new JsonArray(EosTokenIds.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray());
        var json = Layout switch
        {
            GlmLayout.ChatGlm => new JsonObject
            {
                ["model_type"] = "chatglm", ["architectures"] = new JsonArray("ChatGLMModel"),
                ["num_layers"] = NumLayers, ["hidden_size"] = HiddenSize, ["num_attention_heads"] = NumHeads,
                ["kv_channels"] = HeadDim, ["multi_query_attention"] = NumKvHeads != NumHeads,
                ["multi_query_group_num"] = NumKvHeads, ["ffn_hidden_size"] = FfnHiddenSize,
                ["padded_vocab_size"] = VocabSize, ["layernorm_epsilon"] = NormEps, ["rope_ratio"] = RopeBase / 10000.0,
                ["add_qkv_bias"] = QkvBias, ["add_bias_linear"] = LinearBias, ["rmsnorm"] = true,
                ["apply_residual_connection_post_layernorm"] = false, ["post_layer_norm"] = true,
                ["tie_word_embeddings"] = TiedEmbeddings, ["seq_length"] = MaxPositions, ["eos_token_id"] = eos,
                ["pad_token_id"] = PadTokenId, ["torch_dtype"] = TorchDtype,
            },
            GlmLayout.HfGlm or GlmLayout.HfGlm4 => new JsonObject
            {
                ["model_type"] = Layout == GlmLayout.HfGlm ? "glm" : "glm4",
                ["architectures"] = new JsonArray(Layout == GlmLayout.HfGlm ? "GlmForCausalLM" : "Glm4ForCausalLM"),
                ["num_hidden_layers"] = NumLayers, ["hidden_size"] = HiddenSize, ["num_attention_heads"] = NumHeads,
                ["num_key_value_heads"] = NumKvHeads, ["head_dim"] = HeadDim, ["intermediate_size"] = FfnHiddenSize,
                ["vocab_size"] = VocabSize, ["rms_norm_eps"] = NormEps, ["rope_theta"] = RopeBase,
                ["partial_rotary_factor"] = (double)RotaryDim / HeadDim, ["attention_bias"] = QkvBias,
                ["tie_word_embeddings"] = TiedEmbeddings, ["max_position_embeddings"] = MaxPositions,
                ["hidden_act"] = "silu", ["eos_token_id"] = eos, ["pad_token_id"] = PadTokenId, ["torch_dtype"] = TorchDtype,
            },
            _ => new JsonObject
            {
                ["model_type"] = "glm", ["architectures"] = new JsonArray("GLMModel"),
                ["num_layers"] = NumLayers, ["hidden_size"] = HiddenSize, ["num_attention_heads"] = NumHeads,
                ["intermediate_size"] = FfnHiddenSize, ["vocab_size"] = VocabSize, ["layernorm_epsilon"] = NormEps,
                ["max_sequence_length"] = MaxPositions, ["block_position_encoding"] = true, ["relative_encoding"] = false,
                ["eos_token_id"] = eos, ["pad_token_id"] = PadTokenId, ["torch_dtype"] = TorchDtype,
                ["gelu"] = Gelu == GeluVariant.Tanh ? "tanh" : "erf",
                ["mask_token_id"] = BlankTokens?.Mask, ["smask_token_id"] = BlankTokens?.SentenceMask,
                ["gmask_token_id"] = BlankTokens?.GenerationMask, ["sop_token_id"] = BlankTokens?.Sop,
                ["eop_token_id"] = BlankTokens?.Eop,
            },
        };
        // Unknown optional ids (e.g. no blank tokens recorded) are left out rather than written as null.
        foreach (var key in json.Where(p => p.Value is null).Select(p => p.Key).ToList()) json.Remove(key);
        if (Quantization == GlmQuantization.Int8)
            json["quantization"] = new JsonObject
            {
                ["method"] = "int8", ["scheme"] = "per_output_channel_symmetric", ["weight_dtype"] = "int8",
                ["scale_suffix"] = Glm.Engine.Modeling.Quantization.Int8Quantizer.ScaleSuffix, ["scale_dtype"] = "float32",
            };
        return json;
    }
}
