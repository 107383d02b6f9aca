using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;

namespace Glm.Engine.Tests.Modeling;

public class LeftToRightFillTests
{
    private const int Vocab = 24; // 16 text ids: every 1- and 2-token fill can be scored one by one
    private static readonly int[] PartA = [Cls, 10, 11, 14, 15, Mask, 12, 13];
    private static readonly int[] Control = [Mask, SMask, GMask, Sop, Eop];

    private static GlmModel SmallModel(long seed)
    {
        var cfg = TinyConfig() with { VocabSize = Vocab };
        return Model(cfg, RandomTensors(cfg, seed));
    }

    /// <summary>
    /// log P(span, right | left) by one full forward pass per fill: Part A = <c>[CLS] 10 11 [gMASK]</c>, Part B = sop, the two
    /// left tokens moved into Part B, the span and the right context (the inference rule of <c>ComputeLogits</c>).
    /// </summary>
    private static double FillLogProb(GlmModel model, int[] span)
    {
        int[] prefix = [Cls, 10, 11, GMask, Sop, 14, 15];
        var ids = prefix.Concat(span).Concat([12, 13]).ToList();
        var logits = model.ComputeLogits(ids);
        double logProb = 0;
        for (int i = prefix.Length; i < ids.Count; i++) logProb -= GlmModel.TokenNll(logits, i - 1, ids[i]);
        return logProb;
    }

    private static IEnumerable<int[]> AllFills()
    {
        var text = Enumerable.Range(0, Vocab).Except(Control).ToArray();
        return text.Select(a => new[] { a }).Concat(text.SelectMany(a => text.Select(b => new[] { a, b })));
    }

    [Fact]
    public void AnExhaustiveSearchReturnsTheFillThatBestExplainsBothSides()
    {
        using var model = SmallModel(3);
        var expected = AllFills().MaxBy(span => FillLogProb(model, span))!;
        // Every prefix and every last token kept: exact over fills of ≤ 2 tokens. The candidates share one cached prefix
        // (Part A, sop and the left tail), so agreement with the full passes also checks that cache's broadcast rows.
        var found = model.BestBlankFillLeftToRight(PartA, maxTokens: 2, beamWidth: Vocab, candidatesPerPrefix: Vocab, leftTokensInPartB: 2);
        Assert.Equal(expected, found);

        // Every score the search computed is the full-pass log-probability of that fill.
        var scored = model.ScoreBlankFillsLeftToRight(PartA, 2, 3, 4, 8, 2);
        Assert.Equal(4 + 3 * 4, scored.Count);
        foreach (var (span, score) in scored) Assert.Equal(FillLogProb(model, span), score, 4);
    }

    [Fact]
    public void TheRightContextChangesTheChoiceAndANarrowSearchNeverBeatsTheExhaustiveOne()
    {
        using var model = SmallModel(9);
        var narrow = model.BestBlankFillLeftToRight(PartA, maxTokens: 2, beamWidth: 2, candidatesPerPrefix: 2, leftTokensInPartB: 2);
        var wide = model.BestBlankFillLeftToRight(PartA, maxTokens: 2, beamWidth: Vocab, candidatesPerPrefix: Vocab, leftTokensInPartB: 2);
        Assert.InRange(narrow.Count, 1, 2);
        Assert.True(FillLogProb(model, narrow.ToArray()) <= FillLogProb(model, wide.ToArray()) + 1e-9);
        Assert.DoesNotContain(wide, Control.Contains);

        // Different right contexts after the same left side: at least one of them must move the exact search's choice,
        // or the right side is not being read.
        var choices = new[] { 12, 13, 16, 17, 18, 19 }.Select(r => string.Join(",", model.BestBlankFillLeftToRight(
            [Cls, 10, 11, 14, 15, Mask, r, r], maxTokens: 2, beamWidth: Vocab, candidatesPerPrefix: Vocab, leftTokensInPartB: 2)));
        Assert.True(choices.Distinct().Count() > 1);
    }

    [Fact]
    public void TextFillingSplicesEachSearchedFillInTurn()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = Model(tokenizer: tokenizer);
        string filled = model.FillBlanksLeftToRight("ab [MASK] cd [sMASK] e", maxTokens: 2);

        // Same by hand: the first blank with the second still masked (the right side stops at it), then the second.
        var ids = new List<int>(tokenizer.Encode("ab ")) { Mask };
        ids.AddRange(tokenizer.Encode(" cd "));
        ids.Add(SMask);
        ids.AddRange(tokenizer.Encode(" e"));
        foreach (int blank in new[] { Mask, SMask })
        {
            var span = model.BestBlankFillLeftToRight([Cls, .. ids], maxTokens: 2);
            Assert.InRange(span.Count, 1, 2);
            Assert.DoesNotContain(span, tokenizer.IsSpecial);
            int at = ids.IndexOf(blank);
            ids.RemoveAt(at);
            ids.InsertRange(at, span);
        }
        Assert.Equal(tokenizer.Decode(ids, skipSpecialTokens: true), filled);
        Assert.StartsWith("ab ", filled);
        Assert.EndsWith(" e", filled);
        Assert.Contains("none of", Assert.Throws<GlmException>(() => model.FillBlanksLeftToRight("no blank here")).Message);
    }

    [Fact]
    public void BadArgumentsAreNamed()
    {
        using var model = SmallModel(5);
        var noBlank = Assert.Throws<GlmException>(() => model.BestBlankFillLeftToRight([Cls, 10, 11, 12]));
        Assert.Contains("[MASK]", noBlank.Message);
        Assert.Contains("maxTokens 0", Assert.Throws<GlmException>(() => model.BestBlankFillLeftToRight(PartA, maxTokens: 0)).Message);
        Assert.Contains("rightTokens -1", Assert.Throws<GlmException>(() => model.BestBlankFillLeftToRight(PartA, rightTokens: -1)).Message);
        Assert.Contains("candidatesPerPrefix 0", Assert.Throws<GlmException>(() => model.BestBlankFillLeftToRight(PartA, candidatesPerPrefix: 0)).Message);
    }
}
