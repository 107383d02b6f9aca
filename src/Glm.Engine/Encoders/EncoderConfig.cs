using System.Text.Json;
using System.Text.Json.Nodes;

namespace Glm.Engine.Encoders;

/// <summary>The two encoder families the engine runs: BERT (bge-*-zh) and XLM-RoBERTa (bge-m3, bge-reranker).</summary>
public enum EncoderFamily
{
    /// <summary>model_type <c>bert</c>: learned absolute positions from 0, token types, WordPiece vocabulary.</summary>
    Bert,
    /// <summary>model_type <c>xlm-roberta</c>: positions offset by <c>pad_token_id + 1</c>, one token type, SentencePiece.</summary>
    XlmRoberta,
}

/// <summary>
/// The fields of a Hugging Face BERT / XLM-RoBERTa <c>config.json</c> the encoder needs. Only post-LayerNorm blocks with
/// absolute positions and exact (erf) GELU are supported; other values are rejected with the field named.
/// </summary>
public sealed record EncoderConfig
{
    /// <summary>BERT or XLM-RoBERTa.</summary>
    public EncoderFamily Family { get; init; }
    /// <summary>Vocabulary rows of <c>embeddings.word_embeddings.weight</c>.</summary>
    public int VocabSize { get; init; }
    /// <summary>Model width.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Number of transformer blocks.</summary>
    public int NumLayers { get; init; }
    /// <summary>Attention heads per block.</summary>
    public int NumHeads { get; init; }
    /// <summary>Width of the feed-forward layer.</summary>
    public int IntermediateSize { get; init; }
    /// <summary>Rows of the position table (XLM-R: usable length is this minus <c>pad_token_id + 1</c>).</summary>
    public int MaxPositions { get; init; }
    /// <summary>Rows of the token-type table (2 for BERT, 1 for XLM-R).</summary>
    public int TypeVocabSize { get; init; }
    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-12;
    /// <summary>Padding token id (also the XLM-R position padding index).</summary>
    public int PadTokenId { get; init; }
    /// <summary>Number of classifier outputs (sequence-classification checkpoints; 1 for rerankers).</summary>
    public int NumLabels { get; init; } = 1;
    /// <summary>First entry of <c>architectures</c>, or empty.</summary>
    public string Architecture { get; init; } = "";

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>
    /// Longest token sequence (specials included) the position table allows: <see cref="MaxPositions"/> for BERT,
    /// <see cref="MaxPositions"/> − pad_token_id − 1 for XLM-R.
    /// </summary>
    public int MaxSequenceLength => Family == EncoderFamily.XlmRoberta ? MaxPositions - PadTokenId - 1 : MaxPositions;

    /// <summary>Reads and validates <c>config.json</c> in <paramref name="folder"/>.</summary>
    public static EncoderConfig Load(string folder)
    {
        var config = JsonFields.Load(Path.Combine(folder, "config.json"), "An encoder folder needs config.json next to its weights (HF layout).");
        return FromJson(config.Json, config.Source);
    }

    /// <summary>Builds a config from parsed JSON; <paramref name="source"/> names the file in error messages.</summary>
    public static EncoderConfig FromJson(JsonObject json, string source)
    {
        var r = new JsonFields(json, source);
        string modelType = r.Str("model_type");
        var family = modelType switch
        {
            "bert" => EncoderFamily.Bert,
            "xlm-roberta" or "roberta" => EncoderFamily.XlmRoberta,
            _ => throw new GlmException($"{source}: model_type '{modelType}' is not an encoder this engine runs; expected bert or xlm-roberta."),
        };
        string act = r.StrOr("hidden_act", "gelu");
        if (act != "gelu")
            throw new GlmException($"{source}: hidden_act '{act}' is not supported; expected gelu (exact erf GELU, as BERT/XLM-R use).");
        string posType = r.StrOr("position_embedding_type", "absolute");
        if (posType != "absolute")
            throw new GlmException($"{source}: position_embedding_type '{posType}' is not supported; expected absolute.");
        var archs = json["architectures"] as JsonArray;
        int numLabels = r.IntOr("num_labels", json["id2label"] is JsonObject labels ? labels.Count : 1);
        var cfg = new EncoderConfig
        {
            Family = family,
            VocabSize = r.Int("vocab_size"),
            HiddenSize = r.Int("hidden_size"),
            NumLayers = r.Int("num_hidden_layers"),
            NumHeads = r.Int("num_attention_heads"),
            IntermediateSize = r.Int("intermediate_size"),
            MaxPositions = r.Int("max_position_embeddings"),
            TypeVocabSize = r.IntOr("type_vocab_size", family == EncoderFamily.Bert ? 2 : 1),
            LayerNormEps = r.DoubleOr("layer_norm_eps", family == EncoderFamily.Bert ? 1e-12 : 1e-5),
            PadTokenId = r.IntOr("pad_token_id", family == EncoderFamily.Bert ? 0 : 1),
            NumLabels = numLabels,
            Architecture = archs is { Count: > 0 } ? archs[0]?.GetValue<string>() ?? "" : "",
        };
        return cfg.Validated(source);
    }

    /// <summary>Checks sizes; throws <see cref="GlmException"/> naming the field otherwise.</summary>
    public EncoderConfig Validated(string source)
    {
        void Positive(string field, int v)
        {
            if (v <= 0) throw new GlmException($"{source}: {field} = {v}; expected a positive integer.");
        }
        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("num_hidden_layers", NumLayers);
        Positive("num_attention_heads", NumHeads);
        Positive("intermediate_size", IntermediateSize);
        Positive("max_position_embeddings", MaxPositions);
        Positive("type_vocab_size", TypeVocabSize);
        Positive("num_labels", NumLabels);
        if (HiddenSize % NumHeads != 0)
            throw new GlmException($"{source}: hidden_size {HiddenSize} is not divisible by num_attention_heads {NumHeads}.");
        if (PadTokenId < 0 || PadTokenId >= VocabSize)
            throw new GlmException($"{source}: pad_token_id {PadTokenId} is outside the vocabulary [0, {VocabSize}).");
        if (MaxSequenceLength < 3)
            throw new GlmException($"{source}: max_position_embeddings {MaxPositions} leaves room for {MaxSequenceLength} tokens; expected at least 3.");
        return this;
    }

    /// <summary>The config.json text for this config (tests and conversions write tiny models with it).</summary>
    public string ToJson(IReadOnlyList<string>? architectures = null)
    {
        var o = new JsonObject
        {
            ["model_type"] = Family == EncoderFamily.Bert ? "bert" : "xlm-roberta",
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["intermediate_size"] = IntermediateSize,
            ["max_position_embeddings"] = MaxPositions,
            ["type_vocab_size"] = TypeVocabSize,
            ["layer_norm_eps"] = LayerNormEps,
            ["pad_token_id"] = PadTokenId,
            ["hidden_act"] = "gelu",
            ["num_labels"] = NumLabels,
        };
        if (architectures is not null) o["architectures"] = new JsonArray(architectures.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray());
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
