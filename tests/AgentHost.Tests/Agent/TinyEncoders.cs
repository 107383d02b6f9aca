using System.Text;
using Glm.Engine.Checkpoints;
using Glm.Engine.Encoders;
using Glm.Engine.Runtime;

namespace AgentHost.Tests.Agent;

/// <summary>
/// Tiny random BERT folders (config.json, model.safetensors, vocab.txt) for wiring tests; the minimal part of
/// tests/Glm.Engine.Tests/Encoders/EncoderTestSupport.
/// </summary>
internal static class TinyEncoders
{
    /// <summary>Line i = id i; CJK chars of the test documents, the rest become [UNK].</summary>
    public static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        "北", "京", "大", "学", "中", "国", "孔", "乙", "己", "酒", "店", "钱", "鲁", "迅", "先", "生", "故", "乡", "瓜", "。", "，",
    ];

    public static EncoderConfig Config(int numLabels = 1) => new()
    {
        Family = EncoderFamily.Bert, VocabSize = 40, HiddenSize = 32, NumLayers = 2, NumHeads = 4, IntermediateSize = 64,
        MaxPositions = 64, TypeVocabSize = 2, LayerNormEps = 1e-12, PadTokenId = 0, NumLabels = numLabels,
    };

    /// <summary>A BERT sentence-embedding folder (hidden size 32) whose query instruction is <paramref name="queryInstruction"/>.</summary>
    public static string WriteEmbeddingModel(string folder, long seed = 7, string queryInstruction = "北京：")
    {
        Write(folder, Config(), seed, EncoderHead.None, "BertModel");
        File.WriteAllText(Path.Combine(folder, "config_sentence_transformers.json"), "{\"prompts\": {\"query\": \"" + queryInstruction + "\", \"document\": \"\"} }");
        return folder;
    }

    /// <summary>A BERT cross-encoder folder (BertForSequenceClassification, one label).</summary>
    public static string WriteReranker(string folder, long seed = 21)
    {
        Write(folder, Config(), seed, EncoderHead.BertClassifier, "BertForSequenceClassification");
        return folder;
    }

    private static void Write(string folder, EncoderConfig cfg, long seed, EncoderHead head, string architecture, bool pooler = false)
    {
        TorchRuntime.EnsureInitialized();
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), cfg.ToJson([architecture]));
        var tensors = EncoderWeights.Random(cfg, seed, "", pooler, head);
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        File.WriteAllText(Path.Combine(folder, "vocab.txt"), string.Join("\n", Vocab) + "\n", new UTF8Encoding(false));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": true, "strip_accents": null, "tokenize_chinese_chars": true}""");
    }
}
