using System.Text.Json.Nodes;
using Glm.Engine.Encoders;
using static Glm.Engine.Tests.Encoders.EncoderTestSupport;

namespace Glm.Engine.Tests.Encoders;

public class EncoderConfigTests
{
    // The config.json fields published with BAAI/bge-small-zh-v1.5 and BAAI/bge-reranker-base (extra fields ignored).
    private const string BgeSmallZh = """
        {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "classifier_dropout": null, "directionality": "bidi",
         "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 512, "id2label": {"0": "LABEL_0"}, "initializer_range": 0.02,
         "intermediate_size": 2048, "label2id": {"LABEL_0": 0}, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
         "model_type": "bert", "num_attention_heads": 8, "num_hidden_layers": 4, "pad_token_id": 0, "pooler_fc_size": 768,
         "position_embedding_type": "absolute", "torch_dtype": "float32", "type_vocab_size": 2, "use_cache": true, "vocab_size": 21128}
        """;

    private const string BgeRerankerBase = """
        {"architectures": ["XLMRobertaForSequenceClassification"], "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu",
         "hidden_size": 768, "id2label": {"0": "LABEL_0"}, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
         "max_position_embeddings": 514, "model_type": "xlm-roberta", "num_attention_heads": 12, "num_hidden_layers": 12,
         "pad_token_id": 1, "position_embedding_type": "absolute", "type_vocab_size": 1, "vocab_size": 250002}
        """;

    [Fact]
    public void ReadsPublishedBgeConfigs()
    {
        var small = EncoderConfig.FromJson((JsonObject)JsonNode.Parse(BgeSmallZh)!, "bge-small-zh/config.json");
        Assert.Equal((EncoderFamily.Bert, 512, 4, 8, 64, 2048, 21128), (small.Family, small.HiddenSize, small.NumLayers, small.NumHeads, small.HeadDim, small.IntermediateSize, small.VocabSize));
        Assert.Equal(512, small.MaxSequenceLength);
        Assert.Equal(1, small.NumLabels);
        var reranker = EncoderConfig.FromJson((JsonObject)JsonNode.Parse(BgeRerankerBase)!, "bge-reranker-base/config.json");
        Assert.Equal(EncoderFamily.XlmRoberta, reranker.Family);
        Assert.Equal(512, reranker.MaxSequenceLength); // 514 positions − (padding_idx 1 + 1)
        Assert.Equal(1e-5, reranker.LayerNormEps);
        Assert.Equal("XLMRobertaForSequenceClassification", reranker.Architecture);
    }

    [Fact]
    public void RoundTripsThroughToJsonAndRejectsBadSizes()
    {
        var cfg = TinyXlmr();
        Assert.Equal(cfg, EncoderConfig.FromJson((JsonObject)JsonNode.Parse(cfg.ToJson())!, "x") with { Architecture = "" });
        var json = (JsonObject)JsonNode.Parse(cfg.ToJson())!;
        json["num_attention_heads"] = 5;
        Assert.Contains("hidden_size 32 is not divisible by num_attention_heads 5", Assert.Throws<GlmException>(() => EncoderConfig.FromJson(json, "c.json")).Message);
        json["num_attention_heads"] = "four";
        Assert.Contains("c.json: field 'num_attention_heads' = \"four\"; expected an integer", Assert.Throws<GlmException>(() => EncoderConfig.FromJson(json, "c.json")).Message);
        json.Remove("num_attention_heads");
        Assert.Contains("'num_attention_heads' is missing", Assert.Throws<GlmException>(() => EncoderConfig.FromJson(json, "c.json")).Message);
    }

    [Fact]
    public void Bf16EmbeddingsStayCloseToFp32()
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, TinyBert(), 4);
        using var fp32 = EncoderEmbeddingModel.Load(dir.Path);
        using var bf16 = EncoderEmbeddingModel.Load(dir.Path, new() { DType = "bf16" });
        var texts = new[] { "北京大学", "Hello北京World! unaffable" };
        var a = fp32.Embed(texts, false);
        var b = bf16.Embed(texts, false);
        for (int i = 0; i < texts.Length; i++) Assert.True(Dot(a[i], b[i]) > 0.99, $"cosine {Dot(a[i], b[i])}");
        Assert.Contains("dtype 'int8'", Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path, new() { DType = "int8" })).Message);
    }
}
