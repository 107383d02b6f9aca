using Glm.Engine.FineTuning;

namespace Glm.Engine.Tests.FineTuning;

public sealed class TextMetricsTests
{
    [Fact]
    public void CharactersAreNfkcCodePointsWithoutWhitespace()
    {
        Assert.Equal(TextMetrics.Characters("a,b"), TextMetrics.Characters(" a，b\t"));          // full-width comma → ','
        Assert.Equal(new[] { (int)'北', (int)'京', (int)'。' }, TextMetrics.Characters("北 京。"));
        Assert.NotEqual(TextMetrics.Characters("。"), TextMetrics.Characters("."));
    }

    [Fact]
    public void RougeLMatchesHandValues()
    {
        Assert.Equal(3, TextMetrics.LongestCommonSubsequence([1, 2, 3, 4, 5], [1, 3, 5]));
        Assert.Equal(0, TextMetrics.LongestCommonSubsequence([], [1]));
        // 我爱北京 vs 我在北京: LCS 我北京 = 3 of 4 and 4 → P = R = F = 0.75.
        var same = TextMetrics.RougeL("我爱北京", "我在北京");
        Assert.Equal(0.75, same.Precision, 10);
        Assert.Equal(0.75, same.Recall, 10);
        Assert.Equal(0.75, same.F, 10);
        // hyp 我北京天安门 (6), ref 我爱北京 (4): LCS 3 → P 0.5, R 0.75, F = 2·0.5·0.75/1.25 = 0.6.
        var s = TextMetrics.RougeL("我北京天安门", "我爱北京");
        Assert.Equal(0.5, s.Precision, 10);
        Assert.Equal(0.75, s.Recall, 10);
        Assert.Equal(0.6, s.F, 10);
        Assert.Equal(1.0, TextMetrics.RougeL("a b，c", "ab,c").F, 10);
        Assert.Equal(0.0, TextMetrics.RougeL("", "ab").F);
        // Corpus value = mean of the per-example scores: (0.75 + 0.6) / 2.
        Assert.Equal(0.675, TextMetrics.MeanRougeL(["我爱北京", "我北京天安门"], ["我在北京", "我爱北京"]).F, 10);
    }

    [Fact]
    public void BleuMatchesHandValues()
    {
        Assert.Equal(100.0, TextMetrics.CorpusBleu(["abcd"], ["abcd"]).Score, 8);
        // abcde vs abcdf: p1 4/5, p2 3/4, p3 2/3, p4 1/2, c = r → BP 1.
        var b = TextMetrics.CorpusBleu(["abcde"], ["abcdf"]);
        Assert.Equal(100 * Math.Pow(4.0 / 5 * 3.0 / 4 * 2.0 / 3 * 1.0 / 2, 0.25), b.Score, 8);
        double[] expected = [80.0, 75.0, 200.0 / 3, 50.0];
        for (int n = 0; n < 4; n++) Assert.Equal(expected[n], b.Precisions[n], 8);
        Assert.Equal(1.0, b.BrevityPenalty, 10);
        // Short hypothesis: all precisions 1, BP = exp(1 − 6/4).
        var shortHyp = TextMetrics.CorpusBleu(["abcd"], ["abcdef"]);
        Assert.Equal(100 * Math.Exp(-0.5), shortHyp.Score, 8);
        Assert.Equal(4, shortHyp.HypothesisLength);
        Assert.Equal(6, shortHyp.ReferenceLength);
        // Clipping: aaaa vs a → p1 = 1/4, p2 = 0 → BLEU 0 without smoothing; sacreBLEU exp smoothing: 1/(2·3), 1/(4·2), 1/(8·1).
        var clipped = TextMetrics.CorpusBleu(["aaaa"], ["a"]);
        Assert.Equal(25.0, clipped.Precisions[0], 10);
        Assert.Equal(0.0, clipped.Score);
        Assert.Equal(100 * Math.Pow(1.0 / 4 * 1.0 / 6 * 1.0 / 8 * 1.0 / 8, 0.25), TextMetrics.CorpusBleu(["aaaa"], ["a"], smoothing: BleuSmoothing.Exp).Score, 8);
        // Corpus level: counts are summed before dividing (ab/ab + cd/ce, orders 1–2): p1 = 3/4, p2 = 1/2.
        Assert.Equal(100 * Math.Sqrt(3.0 / 4 * 1.0 / 2), TextMetrics.CorpusBleu(["ab", "cd"], ["ab", "ce"], maxOrder: 2).Score, 8);
        Assert.Equal(0.0, TextMetrics.CorpusBleu([""], ["ab"]).Score);
        Assert.Throws<ArgumentException>(() => TextMetrics.CorpusBleu(["a"], []));
    }

    [Fact]
    public void PerplexityIsExpOfMeanNll()
    {
        Assert.Equal(4.0, TextMetrics.Perplexity(3 * Math.Log(4), 3), 10);
        Assert.True(double.IsNaN(TextMetrics.Perplexity(1, 0)));
    }

    [Fact]
    public void BagOfCharsClassifierBeatsChanceOnSeparableData()
    {
        // Three classes, each marked by its own characters among shared noise characters.
        var rng = new Random(1);
        string[] keys = ["甲乙丙", "丁戊己", "庚辛壬"];
        const string noise = "的了是在有和人这中大为上个国";
        (string, string) Make(int c) =>
            (string.Concat(Enumerable.Range(0, 6).Select(i => i % 3 == 0 ? keys[c][rng.Next(3)] : noise[rng.Next(noise.Length)])), $"c{c}");
        var train = Enumerable.Range(0, 90).Select(i => Make(i % 3)).ToList();
        var test = Enumerable.Range(0, 30).Select(i => Make(i % 3)).ToList();
        var clf = BagOfCharsClassifier.Train(train, new BagOfCharsOptions { Epochs = 5, Seed = 3 });
        Assert.Equal(["c0", "c1", "c2"], clf.Labels);
        var gold = test.Select(t => clf.Labels.ToList().IndexOf(t.Item2)).ToList();
        var predicted = test.Select(t => clf.Predict(t.Item1)).ToList();
        double accuracy = ClassificationMetrics.Accuracy(gold, predicted);
        Assert.True(accuracy >= 0.9, $"accuracy {accuracy:F3} (chance 0.333)");
        // Seeded: a second run predicts the same.
        var again = BagOfCharsClassifier.Train(train, new BagOfCharsOptions { Epochs = 5, Seed = 3 });
        Assert.Equal(predicted, test.Select(t => again.Predict(t.Item1)).ToList());
    }

    [Fact]
    public void LeadBaselineTakesTheMeanLengthOfNormalisedCharacters()
    {
        Assert.Equal(3, TextBaselines.MeanCharacterLength(["ab", "a b c d"])); // 2 and 4 → 3
        Assert.Equal(2, TextBaselines.MeanCharacterLength(["a", "ab"]));       // 1.5 rounds away from zero
        Assert.Equal("一种基", TextBaselines.Lead("一种 基于平方和", 3));
    }
}
