using Glm.Engine.Training.Data;

namespace Glm.Engine.Tests.Training;

public class BlankInfillingCollatorTests
{
    private static readonly GlmSpecialTokens Ids = GlmSpecialTokens.GlmChinese;
    private const int M = 50003, Sop = 50006, Eop = 50007;
    // The paper's example x1..x6 (ids 11..16), spans [x3] and [x5, x6].
    private static readonly int[] X = [11, 12, 13, 14, 15, 16];

    private static BlankInfillingCollator NewCollator(BlankInfillingOptions? o = null, ulong seed = 1) =>
        new(Ids, o ?? new BlankInfillingOptions(), seed, sentenceEndTokenIds: new HashSet<int> { 7 });

    [Fact]
    public void PaperExample_SpanX3First()
    {
        var s = NewCollator().MakeBlockData(X, [(2, 3), (4, 6)], M);
        Assert.Equal([11, 12, M, 14, M, Sop, 13, Sop, 15, 16], s.InputIds);
        Assert.Equal([11, 12, M, 14, M, 13, Eop, 15, 16, Eop], s.TargetIds);
        Assert.Equal([0, 1, 2, 3, 4, 2, 2, 4, 4, 4], s.PositionIds);
        Assert.Equal([0, 0, 0, 0, 0, 1, 2, 1, 2, 3], s.BlockPositionIds);
        Assert.Equal([0f, 0, 0, 0, 0, 1, 1, 1, 1, 1], s.LossMask);
        Assert.Equal(5, s.Sep);
    }

    [Fact]
    public void PaperExample_SpanX5X6First()
    {
        var s = NewCollator().MakeBlockData(X, [(4, 6), (2, 3)], M);
        Assert.Equal([11, 12, M, 14, M, Sop, 15, 16, Sop, 13], s.InputIds);
        Assert.Equal([11, 12, M, 14, M, 15, 16, Eop, 13, Eop], s.TargetIds);
        Assert.Equal([0, 1, 2, 3, 4, 4, 4, 4, 2, 2], s.PositionIds);
        Assert.Equal([0, 0, 0, 0, 0, 1, 2, 3, 1, 2], s.BlockPositionIds);
        Assert.Equal([0f, 0, 0, 0, 0, 1, 1, 1, 1, 1], s.LossMask);
        Assert.Equal(5, s.Sep);
    }

    [Fact]
    public void PaperExample_AttentionMask()
    {
        var mask = BlankInfillingSample.BuildAttentionMask(5, 10);
        int[,] expected =
        {
            { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 },
            { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 },
            { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 },
            { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
        };
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++)
                Assert.True(expected[i, j] == mask[i, j], $"mask[{i},{j}] = {mask[i, j]}, expected {expected[i, j]}");
    }

    [Fact]
    public void XoshiroMatchesReferenceVector()
    {
        // xoshiro256** from state {1, 2, 3, 4}: reference outputs of the published C implementation.
        var rng = GlmRandom.FromState("0000000000000001:0000000000000002:0000000000000003:0000000000000004");
        Assert.Equal(11520UL, rng.NextUInt64());
        Assert.Equal(0UL, rng.NextUInt64());
        Assert.Equal(1509978240UL, rng.NextUInt64());
        Assert.Equal(1215971899390074240UL, rng.NextUInt64());
    }

    [Fact]
    public void RngStateRejectsGarbage()
    {
        var ex = Assert.Throws<GlmException>(() => GlmRandom.FromState("12:zz"));
        Assert.Contains("12:zz", ex.Message);
    }

    [Fact]
    public void SpanLengthsFollowTruncatedPoissonAndReachRatio()
    {
        var c = NewCollator(seed: 42);
        Assert.Equal(3 / (1 - Math.Exp(-3)), c.ExpectedSpanLength, 6);
        long sum = 0, count = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            int len = 200 + trial;
            var lengths = c.DrawSpanLengths(len);
            Assert.True(lengths.Sum() >= (int)(0.15 * len));
            Assert.True(lengths.Sum() - lengths[^1] < (int)(0.15 * len), "drawing must stop as soon as the budget is reached");
            Assert.All(lengths, k => Assert.InRange(k, 1, 39));
            sum += lengths.Sum(); count += lengths.Count;
        }
        // ~ 11,000 draws; sd of the mean ≈ 1.6 / sqrt(11000) ≈ 0.015.
        Assert.InRange((double)sum / count, c.ExpectedSpanLength - 0.07, c.ExpectedSpanLength + 0.07);
    }

    [Fact]
    public void SpansNeverOverlapTouchOrHitClsAndLastToken()
    {
        var c = NewCollator(seed: 7);
        for (int trial = 0; trial < 300; trial++)
        {
            int len = 20 + trial * 3;
            var tokens = Sample(len);
            var lengths = c.DrawSpanLengths(len);
            var spans = c.SampleSpansInDocuments(tokens, lengths).OrderBy(s => s.Start).ToList();
            Assert.Equal(lengths.Count, spans.Count); // single document: all spans fit at a 15% ratio
            Assert.True(spans[0].Start >= 1);
            Assert.True(spans[^1].End <= len - 1);
            for (int i = 1; i < spans.Count; i++) Assert.True(spans[i].Start >= spans[i - 1].End + 1);
        }
    }

    [Fact]
    public void SpanModeSamplesReconstructTheTextAndMaskAtLeast15Percent()
    {
        var c = NewCollator(new BlankInfillingOptions { SpanProbability = 1, SentenceProbability = 0 }, seed: 3);
        for (int trial = 0; trial < 50; trial++)
        {
            var samples = new[] { Sample(64 + trial), Sample(300) };
            var batch = c.Collate(samples);
            Assert.Equal(BlankInfillingMode.Span, batch.Mode);
            for (int b = 0; b < samples.Length; b++)
            {
                var (rebuilt, masked) = Reconstruct(batch, b, M);
                Assert.Equal(samples[b], rebuilt);
                Assert.True(masked >= (int)(0.15 * samples[b].Length), $"masked {masked} of {samples[b].Length}");
            }
        }
    }

    [Fact]
    public void SentenceModeMasksWholeSentences()
    {
        var c = NewCollator(new BlankInfillingOptions { SpanProbability = 0, SentenceProbability = 1 }, seed: 5);
        // Sentences of 5 tokens each ending with id 7 (the sentence-end token).
        var tokens = new List<int> { Ids.Cls };
        for (int s = 0; s < 20; s++) { tokens.AddRange([100 + s, 200, 300, 400]); tokens.Add(7); }
        var batch = c.Collate([tokens.ToArray()]);
        Assert.Equal(BlankInfillingMode.Sentence, batch.Mode);
        var (rebuilt, masked) = Reconstruct(batch, 0, 50008);
        Assert.Equal(tokens, rebuilt);
        Assert.True(masked >= 15 && masked % 5 == 0, $"masked {masked}");
        // Every Part-B segment is one full sentence: 5 tokens + eop.
        int segments = batch.InputIds.Skip(batch.Seps[0]).Take(batch.Length - batch.Seps[0]).Count(id => id == Sop);
        Assert.Equal(masked / 5, segments);
    }

    [Fact]
    public void DocumentModePrefixLayout()
    {
        var c = NewCollator();
        var tokens = Sample(10);
        var s = c.MakePrefixSuffixData(tokens, 4); // source = 6 tokens
        int G = Ids.GenerationMask;
        Assert.Equal(tokens[..6].Concat([G, Sop]).Concat(tokens[6..9]), s.InputIds);
        Assert.Equal(tokens[..6].Concat([G]).Concat(tokens[6..]), s.TargetIds);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6], s.PositionIds);
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], s.BlockPositionIds);
        Assert.Equal([0f, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1], s.LossMask);
        Assert.Equal(7, s.Sep);
    }

    [Fact]
    public void DocumentModeBatchesPadAndGenerateAtLeastMinRatio()
    {
        var c = NewCollator(new BlankInfillingOptions { SpanProbability = 0, SentenceProbability = 0 }, seed: 11);
        for (int trial = 0; trial < 30; trial++)
        {
            var samples = new[] { Sample(40), Sample(25) };
            var batch = c.Collate(samples);
            Assert.Equal(BlankInfillingMode.Document, batch.Mode);
            for (int b = 0; b < 2; b++)
            {
                float scored = batch.LossMask.Skip(b * batch.Length).Take(batch.Length).Sum();
                Assert.True(scored >= (int)(0.25 * 25), $"scored {scored}");
                // Prefix layout gives length+1 tokens, block layout length+2; everything after is zero padding.
                var row = batch.LossMask.Skip(b * batch.Length).Take(batch.Length).ToList();
                int own = row.LastIndexOf(1f) + 1;
                Assert.Contains(own, new[] { samples[b].Length + 1, samples[b].Length + 2 });
                for (int i = own; i < batch.Length; i++)
                {
                    Assert.Equal(0, batch.InputIds[b * batch.Length + i]);
                    Assert.Equal(0f, batch.LossMask[b * batch.Length + i]);
                }
            }
        }
    }

    [Fact]
    public void SameSeedSameBatchesAndStateResumesExactly()
    {
        var samples = new[] { Sample(80), Sample(120) };
        var a = NewCollator(seed: 99);
        var b = NewCollator(seed: 99);
        Assert.Equal(a.Collate(samples).InputIds, b.Collate(samples).InputIds);
        string state = a.SaveState();
        var expected = Enumerable.Range(0, 5).Select(_ => a.Collate(samples).InputIds).ToList();
        var resumed = NewCollator(seed: 12345);
        resumed.RestoreState(state);
        foreach (var e in expected) Assert.Equal(e, resumed.Collate(samples).InputIds);
    }

    [Fact]
    public void SampleWithoutClsIsRejected()
    {
        var ex = Assert.Throws<GlmException>(() => NewCollator().Collate([new[] { 5, 6, 7, 8 }]));
        Assert.Contains("[CLS]", ex.Message);
    }

    [Fact]
    public void SentenceModeWithoutSentenceEndsIsRejected() =>
        Assert.Throws<GlmException>(() => new BlankInfillingCollator(Ids, new BlankInfillingOptions()));

    private static int[] Sample(int length) =>
        [Ids.Cls, .. Enumerable.Range(0, length - 1).Select(i => 1000 + i)];

    /// <summary>Puts each Part-B span back in place of the Part-A mask with the same position id.</summary>
    private static (List<int> Text, int Masked) Reconstruct(BlankInfillingBatch batch, int row, int maskId)
    {
        int o = row * batch.Length, sep = batch.Seps[row];
        var spansByPosition = new Dictionary<int, List<int>>();
        int masked = 0;
        for (int i = sep; i < batch.Length && batch.LossMask[o + i] > 0; i++)
        {
            Assert.Equal(Sop, batch.InputIds[o + i]);
            int pos = batch.PositionIds[o + i];
            var span = new List<int>();
            for (; batch.TargetIds[o + i] != Eop; i++)
            {
                Assert.Equal(pos, batch.PositionIds[o + i]);
                Assert.Equal(span.Count + 1, batch.BlockPositionIds[o + i]);
                span.Add(batch.TargetIds[o + i]);
                Assert.Equal(span[^1], batch.InputIds[o + i + 1]); // teacher forcing: next input = this target
            }
            spansByPosition.Add(pos, span);
            masked += span.Count;
        }
        var text = new List<int>();
        for (int i = 0; i < sep; i++)
        {
            Assert.Equal(0, batch.BlockPositionIds[o + i]);
            Assert.Equal(0f, batch.LossMask[o + i]);
            if (batch.InputIds[o + i] == maskId) text.AddRange(spansByPosition[batch.PositionIds[o + i]]);
            else text.Add(batch.InputIds[o + i]);
        }
        return (text, masked);
    }
}
