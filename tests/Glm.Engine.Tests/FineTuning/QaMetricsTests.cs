using Glm.Engine.FineTuning.GroundedQa;

namespace Glm.Engine.Tests.FineTuning;

public class QaMetricsTests
{
    [Theory]
    // Hand-computed: L = longest common contiguous run of characters after normalisation.
    [InlineData("十九个钱", "十九个钱", 1.0, 1.0)]              // identical
    [InlineData("“十九个钱。”", " 十九 个钱", 1.0, 1.0)]        // quotes, full stop and spaces are deleted
    [InlineData("十九个", "十九个钱", 0.0, 6.0 / 7)]            // L = 3: P = 3/3, R = 3/4 → F1 = 2·1·0.75/1.75 = 6/7
    [InlineData("欠十九个钱呢", "十九个钱", 0.0, 0.8)]          // L = 4: P = 4/6, R = 4/4 → 2·(2/3)/(5/3) = 0.8
    [InlineData("孔乙己", "十九个钱", 0.0, 0.0)]                // nothing in common
    [InlineData("九十", "十九", 0.0, 0.5)]                      // contiguous, not bag of characters: L = 1 → P = R = 1/2
    [InlineData("ABC-d", "abcd", 1.0, 1.0)]                     // lower-cased; ASCII '-' deleted as in the CMRC script
    [InlineData("", "十九个钱", 0.0, 0.0)]                      // empty prediction
    public void ExactMatchAndF1(string prediction, string reference, double em, double f1)
    {
        Assert.Equal(em, QaMetrics.ExactMatch(prediction, reference));
        Assert.Equal(f1, QaMetrics.F1(prediction, reference), 10);
    }

    [Fact]
    public void BestReferenceCountsAndCharactersOutsideTheBmpAreOneToken()
    {
        Assert.Equal(1.0, QaMetrics.ExactMatch("北京", new[] { "上海", "北京。" }));
        Assert.Equal(1.0, QaMetrics.F1("北京", new[] { "上海", "北京" }));
        // U+20000 is one character: L = 2 (𠀀a vs 𠀀ab): P = 2/2, R = 2/3 → 0.8.
        Assert.Equal(0.8, QaMetrics.F1("\U00020000a", "\U00020000ab"), 10);
        Assert.Throws<GlmException>(() => QaMetrics.F1("x", Array.Empty<string>()));
    }

    [Fact]
    public void ScoreboardAveragesTimesHundred()
    {
        var board = new QaScoreboard();
        board.Add("十九个钱", new[] { "十九个钱" }, stopped: true);   // EM 1, F1 1
        board.Add("十九个", new[] { "十九个钱" }, stopped: false);    // EM 0, F1 6/7
        Assert.Equal(2, board.Count);
        Assert.Equal(50, board.ExactMatch, 10);
        Assert.Equal(100 * (1 + 6.0 / 7) / 2, board.F1, 10);
        Assert.Equal(50, board.StoppedRate, 10);
    }
}
