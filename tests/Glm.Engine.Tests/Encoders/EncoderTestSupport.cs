using System.Text;
using Glm.Engine.Checkpoints;
using Glm.Engine.Encoders;
using Glm.Engine.Runtime;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Encoders;

/// <summary>Tiny encoder folders written by the tests: config.json, model.safetensors, vocab.txt or a SentencePiece model.</summary>
internal sealed class EncoderTempDir : IDisposable
{
    public EncoderTempDir()
    {
        TorchRuntime.EnsureInitialized();
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "glm-encoder-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class EncoderTestSupport
{
    /// <summary>A BERT vocabulary for hand-checkable WordPiece cases (line i = id i).</summary>
    public static readonly string[] BertVocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",           // 0-4
        "北", "京", "大", "学", "中", "国",                       // 5-10
        "hello", "world", "un", "##aff", "##able",               // 11-15
        "cafe", "café", "2024", "123", "1", "##2",               // 16-21
        ",", "，", "!", "。", "a", "##b", "Hello", "##ll",        // 22-29
    ];

    public static string WriteBertVocab(string folder, bool lowerCase = true, bool? stripAccents = null)
    {
        System.IO.File.WriteAllText(System.IO.Path.Combine(folder, "vocab.txt"), string.Join("\n", BertVocab) + "\n", new UTF8Encoding(false));
        string strip = stripAccents is null ? "null" : stripAccents.Value ? "true" : "false";
        System.IO.File.WriteAllText(System.IO.Path.Combine(folder, "tokenizer_config.json"),
            $"{{\"do_lower_case\": {(lowerCase ? "true" : "false")}, \"strip_accents\": {strip}, \"tokenize_chinese_chars\": true}}");
        return folder;
    }

    /// <summary>SentencePiece Unigram pieces (id, piece, score) for hand-derived Viterbi cases.</summary>
    public static readonly (string Piece, float Score, int Type)[] UnigramPieces =
    [
        ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),           // 0-2
        ("\u2581", -2.0f, 1),                                       // 3
        ("\u2581北京", -3.0f, 1), ("北", -4.0f, 1), ("京", -4.0f, 1), // 4-6
        ("大学", -3.5f, 1), ("大", -5.0f, 1), ("学", -5.0f, 1),      // 7-9
        ("\u2581ab", -1.0f, 1), ("\u2581a", -1.0f, 1), ("bcd", -1.0f, 1), ("cd", -5.0f, 1), // 10-13
        ("\u25812", -3.0f, 1), ("0", -3.0f, 1), ("24", -3.5f, 1), ("2", -3.0f, 1), ("4", -3.0f, 1), // 14-18
        ("\u2581caf", -4.0f, 1), ("é", -4.0f, 1), ("，", -2.5f, 1), (",", -2.5f, 1),       // 19-22
        ("<sep>", 0, 4),                                            // 23 user-defined
    ];

    /// <summary>Serialises a SentencePiece ModelProto (unigram, identity normalizer unless a charsmap is given).</summary>
    public static byte[] UnigramModelProto((string Piece, float Score, int Type)[] pieces, byte[]? charsMap = null)
    {
        var ms = new MemoryStream();
        foreach (var (piece, score, type) in pieces)
        {
            var p = new MemoryStream();
            WriteBytes(p, 1, Encoding.UTF8.GetBytes(piece));
            WriteKey(p, 2, 5);
            p.Write(BitConverter.GetBytes(score));
            WriteKey(p, 3, 0);
            WriteVarint(p, (ulong)type);
            WriteBytes(ms, 1, p.ToArray());
        }
        var trainer = new MemoryStream();
        WriteKey(trainer, 3, 0);
        WriteVarint(trainer, 1); // unigram
        WriteBytes(ms, 2, trainer.ToArray());
        var norm = new MemoryStream();
        WriteBytes(norm, 1, Encoding.UTF8.GetBytes(charsMap is null ? "identity" : "nmt_nfkc"));
        if (charsMap is not null) WriteBytes(norm, 2, charsMap);
        foreach (int field in new[] { 3, 4, 5 })
        {
            WriteKey(norm, field, 0);
            WriteVarint(norm, 1);
        }
        WriteBytes(ms, 3, norm.ToArray());
        return ms.ToArray();
    }

    /// <summary>
    /// The transformers tokenizer.json of the same Unigram model: vocab in fairseq order (&lt;s&gt; &lt;pad&gt; &lt;/s&gt;
    /// &lt;unk&gt;, the normal pieces, &lt;mask&gt;), specials and the user-defined piece as added tokens.
    /// </summary>
    public static string UnigramTokenizerJson((string Piece, float Score, int Type)[] pieces, byte[]? charsMap = null)
    {
        var vocab = new List<(string, float)> { ("<s>", 0), ("<pad>", 0), ("</s>", 0), ("<unk>", 0) };
        vocab.AddRange(pieces.Skip(3).Select(p => (p.Piece, p.Score)));
        vocab.Add(("<mask>", 0));
        var added = new System.Text.Json.Nodes.JsonArray();
        foreach (var (content, special) in new[] { ("<s>", true), ("<pad>", true), ("</s>", true), ("<unk>", true), ("<mask>", true) }
                     .Concat(pieces.Where(p => p.Type == 4).Select(p => (p.Piece, false))))
            added.Add(new System.Text.Json.Nodes.JsonObject { ["content"] = content, ["special"] = special });
        var root = new System.Text.Json.Nodes.JsonObject
        {
            ["added_tokens"] = added,
            ["normalizer"] = charsMap is null ? null : new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new System.Text.Json.Nodes.JsonArray(
                    new System.Text.Json.Nodes.JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = Convert.ToBase64String(charsMap) },
                    new System.Text.Json.Nodes.JsonObject { ["type"] = "Replace", ["content"] = " " }),
            },
            ["model"] = new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "Unigram",
                ["unk_id"] = 3,
                ["vocab"] = new System.Text.Json.Nodes.JsonArray(vocab.Select(v => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonArray(v.Item1, v.Item2)).ToArray()),
            },
        };
        return root.ToJsonString();
    }

    private static void WriteKey(Stream s, int field, int wire) => WriteVarint(s, (ulong)(field << 3 | wire));

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80)
        {
            s.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }
        s.WriteByte((byte)v);
    }

    private static void WriteBytes(Stream s, int field, byte[] data)
    {
        WriteKey(s, field, 2);
        WriteVarint(s, (ulong)data.Length);
        s.Write(data);
    }

    public static EncoderConfig TinyBert(int vocab = 40) => new()
    {
        Family = EncoderFamily.Bert, VocabSize = vocab, HiddenSize = 32, NumLayers = 2, NumHeads = 4, IntermediateSize = 64,
        MaxPositions = 64, TypeVocabSize = 2, LayerNormEps = 1e-12, PadTokenId = 0,
    };

    public static EncoderConfig TinyXlmr(int vocab = 30) => new()
    {
        Family = EncoderFamily.XlmRoberta, VocabSize = vocab, HiddenSize = 32, NumLayers = 2, NumHeads = 4, IntermediateSize = 64,
        MaxPositions = 66, TypeVocabSize = 1, LayerNormEps = 1e-5, PadTokenId = 1,
    };

    /// <summary>Writes config.json + model.safetensors (+ tokenizer files) of a random encoder into <paramref name="folder"/>.</summary>
    public static void WriteModel(string folder, EncoderConfig cfg, long seed, string prefix = "", bool pooler = false,
        EncoderHead head = EncoderHead.None, Action<Dictionary<string, Tensor>>? edit = null)
    {
        var arch = head switch
        {
            EncoderHead.RobertaClassifier => "XLMRobertaForSequenceClassification",
            EncoderHead.BertClassifier => "BertForSequenceClassification",
            _ => cfg.Family == EncoderFamily.Bert ? "BertModel" : "XLMRobertaModel",
        };
        System.IO.File.WriteAllText(System.IO.Path.Combine(folder, "config.json"), cfg.ToJson([arch]));
        var tensors = EncoderWeights.Random(cfg, seed, prefix, pooler, head);
        edit?.Invoke(tensors);
        SafeTensorsWriter.Save(System.IO.Path.Combine(folder, "model.safetensors"), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        if (cfg.Family == EncoderFamily.Bert) WriteBertVocab(folder);
        else System.IO.File.WriteAllBytes(System.IO.Path.Combine(folder, "sentencepiece.bpe.model"), UnigramModelProto(UnigramPieces));
    }

    public static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
