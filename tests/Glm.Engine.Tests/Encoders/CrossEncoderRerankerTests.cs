using Glm.Engine.Encoders;
using static Glm.Engine.Tests.Encoders.EncoderTestSupport;

namespace Glm.Engine.Tests.Encoders;

public class CrossEncoderRerankerTests
{
    private static readonly string[] Passages =
        ["北京大学", "Hello北京World! unaffable", "中国，大学。2024年", "ab", "北京大学 hello world 中国 2024"];

    [Fact]
    public void XlmRobertaScoresMatchTheReferenceAndFollowPassageOrder()
    {
        using var dir = new EncoderTempDir();
        var cfg = TinyXlmr();
        WriteModel(dir.Path, cfg, 21, prefix: "roberta.", head: EncoderHead.RobertaClassifier);
        using var reranker = CrossEncoderReranker.Load(dir.Path);
        var scores = reranker.Score("北京", Passages);
        Assert.Equal(Passages.Length, scores.Length);

        // Reference: <s> q </s></s> p </s>, head = out_proj(tanh(dense(h[0]))).
        var w = EncoderWeights.Random(cfg, 21, "roberta.", head: EncoderHead.RobertaClassifier);
        for (int i = 0; i < Passages.Length; i++)
        {
            var ids = reranker.Tokenizer.EncodePair("北京", Passages[i], reranker.MaxLength).Ids;
            Assert.Equal([0, 5, 2, 2], ids.Take(4));
            var h = EncoderReference.Hidden(w, cfg, ids, prefix: "roberta.");
            var dense = EncoderReference.Linear(w, "classifier.dense", EncoderReference.RowD(h, 0)).Select(Math.Tanh).ToArray();
            double expected = EncoderReference.Linear(w, "classifier.out_proj", dense)[0];
            Assert.Equal(expected, scores[i], 4);
        }
        foreach (var t in w.Values) t.Dispose();

        // Scoring a permutation permutes the scores.
        int[] perm = [3, 0, 4, 2, 1];
        var permuted = reranker.Score("北京", perm.Select(i => Passages[i]).ToList());
        for (int j = 0; j < perm.Length; j++) Assert.Equal(scores[perm[j]], permuted[j], 5);
        Assert.True(scores.Distinct().Count() == scores.Length, "different passages should score differently");
    }

    [Fact]
    public void BertCrossEncoderUsesTokenTypesAndThePooler()
    {
        using var dir = new EncoderTempDir();
        var cfg = TinyBert();
        WriteModel(dir.Path, cfg, 31, prefix: "bert.", head: EncoderHead.BertClassifier);
        using var reranker = CrossEncoderReranker.Load(dir.Path, new RerankerOptions { Sigmoid = true, BatchSize = 2 });
        var scores = reranker.Score("北京 hello", Passages);
        var w = EncoderWeights.Random(cfg, 31, "bert.", head: EncoderHead.BertClassifier);
        for (int i = 0; i < Passages.Length; i++)
        {
            var pair = reranker.Tokenizer.EncodePair("北京 hello", Passages[i], reranker.MaxLength);
            Assert.Contains(1, pair.TypeIds);
            var h = EncoderReference.Hidden(w, cfg, pair.Ids, pair.TypeIds, "bert.");
            var pooled = EncoderReference.Linear(w, "bert.pooler.dense", EncoderReference.RowD(h, 0)).Select(Math.Tanh).ToArray();
            double logit = EncoderReference.Linear(w, "classifier", pooled)[0];
            Assert.Equal(1 / (1 + Math.Exp(-logit)), scores[i], 5);
        }
        foreach (var t in w.Values) t.Dispose();
    }

    [Fact]
    public void NonRerankerCheckpointsAreRejected()
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, TinyXlmr(), 1);
        var ex = Assert.Throws<GlmException>(() => CrossEncoderReranker.Load(dir.Path));
        Assert.Contains("classifier.out_proj.weight", ex.Message);

        WriteModel(dir.Path, TinyXlmr() with { NumLabels = 3 }, 1, head: EncoderHead.RobertaClassifier);
        Assert.Contains("num_labels = 3", Assert.Throws<GlmException>(() => CrossEncoderReranker.Load(dir.Path)).Message);

        WriteModel(dir.Path, TinyXlmr(), 1, head: EncoderHead.RobertaClassifier);
        File.Delete(dir.File("sentencepiece.bpe.model"));
        Assert.Contains("sentencepiece.bpe.model", Assert.Throws<GlmException>(() => CrossEncoderReranker.Load(dir.Path)).Message);
    }

    [Fact]
    public void EmptyPassageListGivesNoScores()
    {
        using var dir = new EncoderTempDir();
        WriteModel(dir.Path, TinyXlmr(), 2, head: EncoderHead.RobertaClassifier);
        using var reranker = CrossEncoderReranker.Load(dir.Path);
        Assert.Empty(reranker.Score("北京", []));
    }
}
