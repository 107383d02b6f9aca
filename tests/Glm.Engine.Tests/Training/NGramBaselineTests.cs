using Glm.Engine.Training.Data;

namespace Glm.Engine.Tests.Training;

public class NGramBaselineTests
{
    // Corpus 0 1 0 2, V = 3, D = 0.5. Hand-computed: N1+(••) = 4 distinct bigrams (S0, 01, 10, 02);
    // P_cont = (max(N1+(•w) − D, 0) + D·3/3) / 4 → 0: (1.5 + .5)/4 = .5, 1: .25, 2: .25.
    private static readonly NGramBaseline Tiny = NGramBaseline.Train([new[] { 0, 1, 0, 2 }], 3, discount: 0.5, unigramAlpha: 1);

    [Fact]
    public void UnigramIsAddOneSmoothed()
    {
        Assert.Equal(3.0 / 7, Tiny.UnigramProbability(0), 12);
        Assert.Equal(2.0 / 7, Tiny.UnigramProbability(2), 12);
        Assert.Equal(-Math.Log2(3.0 / 7) - Math.Log2(2.0 / 7), Tiny.UnigramNllBits([0, 1]), 12);
    }

    [Fact]
    public void KneserNeyMatchesHandComputation()
    {
        Assert.Equal(0.5, Tiny.ContinuationProbability(0), 12);
        Assert.Equal(0.25, Tiny.ContinuationProbability(1), 12);
        // Context 0: c = 2, two followers: P(1|0) = (1 − .5 + .5·2·.25)/2.
        Assert.Equal(0.375, Tiny.BigramProbability(0, 1), 12);
        Assert.Equal(0.375, Tiny.BigramProbability(0, 2), 12);
        Assert.Equal(0.25, Tiny.BigramProbability(0, 0), 12);
        // Start context: c = 1, one follower.
        Assert.Equal(0.75, Tiny.BigramProbability(-1, 0), 12);
        Assert.Equal(0.125, Tiny.BigramProbability(-1, 1), 12);
        // Unseen context 2 backs off to the continuation distribution.
        Assert.Equal(0.5, Tiny.BigramProbability(2, 0), 12);
        Assert.Equal(-2 * Math.Log2(0.75) - 2 * Math.Log2(0.375), Tiny.BigramNllBits([0, 1, 0, 2]), 12);
    }

    [Fact]
    public void BigramDistributionsSumToOneOnRandomCorpus()
    {
        var rng = new GlmRandom(3);
        var seqs = Enumerable.Range(0, 50).Select(_ => Enumerable.Range(0, 30).Select(_ => rng.NextInt(20)).ToArray()).ToList();
        var model = NGramBaseline.Train(seqs, 25);
        for (int v = -1; v < 25; v++)
            Assert.Equal(1.0, Enumerable.Range(0, 25).Sum(w => model.BigramProbability(v, w)), 9);
        Assert.Equal(1.0, Enumerable.Range(0, 25).Sum(model.UnigramProbability), 9);
        // The bigram model must beat the unigram one on its own (Markov-free) training data only slightly, never be absurd.
        Assert.True(model.BigramNllBits(seqs[0]) < 30 * Math.Log2(25));
    }

    [Fact]
    public void FillsBlanksFromContext()
    {
        var seqs = new List<int[]>();
        for (int i = 0; i < 10; i++) { seqs.Add([1, 2, 3]); seqs.Add([5, 6, 7, 8]); }
        seqs.Add([1, 4, 3]);
        var model = NGramBaseline.Train(seqs, 10);
        Assert.Equal([2], model.PredictSpan([1], [3], 1));
        Assert.Equal([6, 7], model.PredictSpan([5], [8], 2));
        Assert.Equal([6, 7], model.PredictSpanAnyLength([9, 5], [8, 9], maxLength: 3));
    }

    [Fact]
    public void OutOfRangeIdsAreRejected()
    {
        var ex = Assert.Throws<GlmException>(() => NGramBaseline.Train([new[] { 0, 7 }], 5));
        Assert.Contains("id 7", ex.Message);
        Assert.Throws<GlmException>(() => Tiny.BigramNllBits([0, 3]));
    }
}
