using Glm.Engine.Checkpoints;
using Glm.Engine.Encoders;
using static Glm.Engine.Tests.Encoders.EncoderTestSupport;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Encoders;

public class EncoderEmbeddingModelTests
{
    private const string Long = "Hello北京World! unaffable 中国，大学。2024年 12 ab 北京大学 hello world";

    private static EncoderEmbeddingModel LoadBert(EncoderTempDir dir, long seed = 7, string prefix = "", bool pooler = true,
        EncoderEmbeddingOptions? options = null)
    {
        WriteModel(dir.Path, TinyBert(), seed, prefix, pooler);
        return EncoderEmbeddingModel.Load(dir.Path, options);
    }

    [Fact]
    public void LoadsEveryCheckpointTensorUnderItsOwnName()
    {
        using var dir = new EncoderTempDir();
        using var model = LoadBert(dir, prefix: "bert.");
        var loaded = model.Network.NamedWeights().ToDictionary(p => p.Name, p => p.Tensor);
        using var reader = CheckpointReader.Open(dir.Path);
        Assert.Equal(reader.Names.OrderBy(n => n, StringComparer.Ordinal), loaded.Keys.OrderBy(n => n, StringComparer.Ordinal));
        foreach (var name in reader.Names)
        {
            using var expected = reader.Load(name);
            Assert.Equal(expected.shape, loaded[name].shape);
            Assert.True(expected.allclose(loaded[name], rtol: 0, atol: 0), name);
        }
        Assert.Equal(32, model.Dimension);
        Assert.Equal(64, model.MaxLength);
    }

    [Fact]
    public void MissingMisshapenAndUnexpectedTensorsAreNamed()
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, TinyBert(), 1, edit: t => { t["encoder.layer.1.output.dense.bias"].Dispose(); t.Remove("encoder.layer.1.output.dense.bias"); });
        var missing = Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path));
        Assert.Contains("'encoder.layer.1.output.dense.bias' is missing", missing.Message);

        WriteModel(dir.Path, TinyBert(), 1, edit: t => t["encoder.layer.0.intermediate.dense.weight"] = randn(63, 32));
        var shape = Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path));
        Assert.Contains("'encoder.layer.0.intermediate.dense.weight' has shape [63, 32]; expected [64, 32]", shape.Message);

        WriteModel(dir.Path, TinyBert(), 1, edit: t => t["encoder.layer.2.output.dense.bias"] = randn(32));
        var extra = Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path));
        Assert.Contains("unexpected tensor 'encoder.layer.2.output.dense.bias'", extra.Message);
    }

    [Fact]
    public void ConfigErrorsNameTheField()
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, TinyBert(), 1);
        File.WriteAllText(dir.File("config.json"), File.ReadAllText(dir.File("config.json")).Replace("\"gelu\"", "\"relu\""));
        var act = Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path));
        Assert.Contains("hidden_act 'relu'", act.Message);
        File.WriteAllText(dir.File("config.json"), "{\"model_type\": \"t5\"}");
        Assert.Contains("model_type 't5'", Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path)).Message);
        var tooLong = Assert.Throws<GlmException>(() => { WriteModel(dir.Path, TinyBert(), 1); EncoderEmbeddingModel.Load(dir.Path, new() { MaxLength = 65 }); });
        Assert.Contains("max length 65", tooLong.Message);
    }

    [Theory]
    [InlineData(EncoderFamily.Bert)]
    [InlineData(EncoderFamily.XlmRoberta)]
    public void EmbeddingsMatchANaiveReferenceForwardWithClsAndMeanPooling(EncoderFamily family)
    {
        using var dir = new EncoderTempDir();
        var cfg = family == EncoderFamily.Bert ? TinyBert() : TinyXlmr();
        WriteModel(dir.Path, cfg, 11);
        var weights = EncoderWeights.Random(cfg, 11);
        using var cls = EncoderEmbeddingModel.Load(dir.Path, new() { QueryInstruction = "" });
        using var mean = EncoderEmbeddingModel.Load(dir.Path, new() { Pooling = EncoderPooling.Mean, Normalize = false });
        Assert.Equal(EncoderPooling.Cls, cls.Pooling); // no 1_Pooling folder → CLS, as BGE
        var ids = cls.Tokenizer.Encode("北京大学 hello", 64).Ids;
        var hidden = EncoderReference.Hidden(weights, cfg, ids);
        var clsVec = cls.Embed("北京大学 hello", isQuery: false);
        Assert.True(MaxAbsDiff(EncoderReference.Row(hidden, 0, normalize: true), clsVec) < 1e-5);
        Assert.Equal(1.0, Math.Sqrt(Dot(clsVec, clsVec)), 5);
        var meanVec = mean.Embed("北京大学 hello", isQuery: false);
        Assert.True(MaxAbsDiff(EncoderReference.Mean(hidden, normalize: false), meanVec) < 1e-4);
        Assert.True(Math.Abs(Math.Sqrt(Dot(meanVec, meanVec)) - 1) > 1e-3); // not normalised when disabled
        foreach (var t in weights.Values) t.Dispose();
    }

    [Theory]
    [InlineData(EncoderFamily.Bert)]
    [InlineData(EncoderFamily.XlmRoberta)]
    public void PaddingAndBatchingDoNotChangeEmbeddings(EncoderFamily family)
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, family == EncoderFamily.Bert ? TinyBert() : TinyXlmr(), 5);
        using var model = EncoderEmbeddingModel.Load(dir.Path, new() { Pooling = EncoderPooling.Mean });
        using var oneByOne = EncoderEmbeddingModel.Load(dir.Path, new() { Pooling = EncoderPooling.Mean, BatchSize = 1 });
        var texts = new[] { "北京大学", Long, "ab", "中国，大学。", Long + Long };
        var batched = model.Embed(texts, isQuery: false);
        var single = oneByOne.Embed(texts, isQuery: false);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.True(MaxAbsDiff(model.Embed(texts[i], false), batched[i]) < 1e-5, $"text {i} alone vs padded batch");
            Assert.True(MaxAbsDiff(single[i], batched[i]) < 1e-5, $"text {i} batch size 1 vs 32");
        }
        Assert.True(MaxAbsDiff(batched[0], batched[1]) > 1e-3); // different texts differ
    }

    [Fact]
    public void QueriesGetTheInstructionPrefix()
    {
        using var dir = new EncoderTempDir();
        string folder = Path.Combine(dir.Path, "bge-small-zh-v1.5");
        Directory.CreateDirectory(folder);
        WriteModel(folder, TinyBert(), 3);
        using var model = EncoderEmbeddingModel.Load(folder);
        Assert.Equal(EncoderEmbeddingModel.ChineseQueryInstruction, model.QueryInstruction);
        var q = model.Embed("北京大学", isQuery: true);
        Assert.True(MaxAbsDiff(model.Embed(EncoderEmbeddingModel.ChineseQueryInstruction + "北京大学", false), q) < 1e-6);
        Assert.True(MaxAbsDiff(model.Embed("北京大学", false), q) > 1e-3);
        using var custom = EncoderEmbeddingModel.Load(folder, new() { QueryInstruction = "" });
        Assert.True(MaxAbsDiff(custom.Embed("北京大学", true), custom.Embed("北京大学", false)) < 1e-7);
        Assert.Equal("", EncoderEmbeddingModel.DefaultInstruction(Path.Combine(dir.Path, "bge-m3")));
    }

    [Fact]
    public void PoolingMaxLengthAndPromptAreReadFromSentenceTransformersFiles()
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, TinyBert(), 3);
        Directory.CreateDirectory(dir.File("1_Pooling"));
        File.WriteAllText(dir.File("1_Pooling/config.json"), "{\"word_embedding_dimension\": 32, \"pooling_mode_cls_token\": false, \"pooling_mode_mean_tokens\": true}");
        File.WriteAllText(dir.File("sentence_bert_config.json"), "{\"max_seq_length\": 16, \"do_lower_case\": false}");
        File.WriteAllText(dir.File("config_sentence_transformers.json"), "{\"prompts\": {\"query\": \"query: \", \"document\": \"\"}}");
        using (var model = EncoderEmbeddingModel.Load(dir.Path))
        {
            Assert.Equal(EncoderPooling.Mean, model.Pooling);
            Assert.Equal(16, model.MaxLength);
            Assert.Equal("query: ", model.QueryInstruction);
        }
        File.WriteAllText(dir.File("1_Pooling/config.json"), "{\"pooling_mode_cls_token\": false, \"pooling_mode_max_tokens\": true}");
        var ex = Assert.Throws<GlmException>(() => EncoderEmbeddingModel.Load(dir.Path));
        Assert.Contains("pooling_mode_max_tokens", ex.Message);
    }

    [Fact]
    public void BertPrefixAndBareNamesGiveTheSameModelAndLongTextsAreTruncated()
    {
        using var a = new EncoderTempDir();
        using var b = new EncoderTempDir();
        using var bare = LoadBert(a, seed: 9, pooler: false, options: new() { MaxLength = 8 });
        using var prefixed = LoadBert(b, seed: 9, prefix: "bert.", options: new() { MaxLength = 8 });
        var x = bare.Embed([Long], false)[0];
        Assert.True(MaxAbsDiff(x, prefixed.Embed([Long], false)[0]) < 1e-6);
        // Truncated to 8 tokens: text beyond the first 6 word pieces does not matter.
        Assert.True(MaxAbsDiff(x, bare.Embed(Long + " 北京北京北京", false)) < 1e-6);
    }

    [Fact]
    public void QueryKeyValueParametersAreViewsOfTheFusedWeight()
    {
        // The fused QKV GEMM must see the very tensors registered under the checkpoint names (no stale copy, no duplicate memory).
        using var dir = new EncoderTempDir();
        using var model = LoadBert(dir, seed: 1);
        var before = model.Embed("北京", false);
        model.Network.NamedWeights().Single(p => p.Name == "encoder.layer.0.attention.self.key.weight").Tensor.mul_(0.0);
        Assert.True(MaxAbsDiff(before, model.Embed("北京", false)) > 1e-4);
    }
}
