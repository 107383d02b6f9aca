using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;

namespace Glm.Engine.Tests.Modeling;

public class BestBlankFillTests
{
    private const int Vocab = 24; // 16 text ids: an exhaustive check over every 1- and 2-token fill stays fast
    private static readonly int[] PartA = [Cls, 10, 11, Mask, 12, 13, Eos];

    private static GlmModel SmallModel(long seed)
    {
        var cfg = TinyConfig() with { VocabSize = Vocab };
        return Model(cfg, RandomTensors(cfg, seed));
    }

    /// <summary>log P(span, eop | Part A) by one full forward pass per fill (the inference rule of <c>ComputeLogits</c>).</summary>
    private static double FillLogProb(GlmModel model, int[] span)
    {
        var ids = new List<int>(PartA) { Sop };
        ids.AddRange(span);
        var logits = model.ComputeLogits(ids);
        double logProb = 0;
        for (int i = 0; i <= span.Length; i++)
            logProb -= GlmModel.TokenNll(logits, PartA.Length + i, i < span.Length ? span[i] : Eop);
        return logProb;
    }

    [Fact]
    public void AnExhaustiveBeamReturnsTheMostProbableFillOfEveryLength()
    {
        using var model = SmallModel(11);
        // Without a tokenizer only the blank tokens (masks, sop, eop) are known to be control tokens.
        int[] control = [Mask, SMask, GMask, Sop, Eop];
        var textIds = Enumerable.Range(0, Vocab).Except(control).ToArray();
        var all = textIds.Select(a => new[] { a }).Concat(textIds.SelectMany(a => textIds.Select(b => new[] { a, b })));
        var expected = all.MaxBy(span => FillLogProb(model, span))!;

        // A beam as wide as the vocabulary keeps every 1-token prefix, so the search is exact for fills of ≤ 2 tokens.
        var found = model.BestBlankFill(PartA, maxTokens: 2, beamWidth: Vocab);
        Assert.Equal(expected, found);
        Assert.DoesNotContain(found, control.Contains);
    }

    [Fact]
    public void ANarrowBeamNeverBeatsTheExhaustiveOneAndBadArgumentsAreRejected()
    {
        using var model = SmallModel(5);
        var narrow = model.BestBlankFill(PartA, maxTokens: 2, beamWidth: 2);
        var wide = model.BestBlankFill(PartA, maxTokens: 2, beamWidth: Vocab);
        Assert.InRange(narrow.Count, 1, 2);
        Assert.True(FillLogProb(model, narrow.ToArray()) <= FillLogProb(model, wide.ToArray()) + 1e-9);
        Assert.Throws<GlmException>(() => model.BestBlankFill([Cls, 10, 11, Eos]));
        Assert.Throws<GlmException>(() => model.BestBlankFill(PartA, maxTokens: 0));
    }
}
