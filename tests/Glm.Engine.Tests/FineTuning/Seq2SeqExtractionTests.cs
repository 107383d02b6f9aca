using Glm.Engine.FineTuning;
using Glm.Engine.Generation;
using Glm.Engine.Tests.Modeling;

namespace Glm.Engine.Tests.FineTuning;

/// <summary>Copy-only generation (<see cref="SourceVocabulary"/>) and model-ranked clause extraction (<see cref="Seq2SeqExtraction"/>).</summary>
public sealed class Seq2SeqExtractionTests
{
    private static readonly Seq2SeqEncoder Encoder = new() { MaxLength = 64, MaxTargetTokens = 16 };

    private static Seq2SeqSample Sample(CharTestTokenizer tokenizer, string source, string target = "x") =>
        Seq2SeqTask.Encode(tokenizer, Encoder, [new Seq2SeqExample(source, target, "t", 1)])[0];

    [Fact]
    public void ClausesSplitAtChineseAndAsciiPunctuationButNotAtDecimalPoints()
    {
        Assert.Equal(["本文研究了3.5 GHz频段", "提出一种新方法", "仿真结果表明方法有效"],
            Seq2SeqExtraction.Clauses("本文研究了3.5 GHz频段，提出一种新方法;仿真结果表明方法有效."));
        Assert.Equal(["Navier-Stokes方程", "边界元耦合方法"], Seq2SeqExtraction.Clauses("Navier-Stokes方程,边界元耦合方法。"));
        // Short pieces (< 4 characters) and repeats are dropped; order is kept.
        Assert.Equal(["第一个分句", "第二个分句"], Seq2SeqExtraction.Clauses("诊断:第一个分句;第一个分句。第二个分句！好"));
        // No clause long enough: the whole (trimmed) source, so a hypothesis always exists.
        Assert.Equal(["短,句"], Seq2SeqExtraction.Clauses(" 短,句 "));
        Assert.Empty(Seq2SeqExtraction.Clauses("  "));
    }

    [Fact]
    public void MeanNllOfABatchOfCandidatesEqualsEachCandidateScoredAlone()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = GlmBlockTestSupport.Model(seed: 4, tokenizer: tokenizer);
        var sample = Sample(tokenizer, "abc def ghi");
        var candidates = new[] { "abc", "def gh", "i", "hgfedcba" }.Select(c => tokenizer.Encode(c).ToArray()).ToList();
        var batched = Seq2SeqExtraction.MeanNll(model, sample.PartA, candidates);
        Assert.Equal(candidates.Count, batched.Length);
        for (int k = 0; k < candidates.Count; k++)
        {
            // The fine-tuning loss of the same sample (target = candidate): summed NLL over candidate tokens and eop.
            var (sum, count) = Seq2SeqTask.SummedNll(model, [sample with { Target = candidates[k] }]);
            Assert.Equal(candidates[k].Length + 1, count);
            Assert.Equal(sum.item<float>() / count, batched[k], 4);
        }
        Assert.True(batched.Distinct().Count() == batched.Length, "different candidates should score differently on a random model");
    }

    [Fact]
    public void BestClauseIsTheClauseWithTheLowestMeanNll()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = GlmBlockTestSupport.Model(seed: 7, tokenizer: tokenizer);
        const string source = "abcd efg,hijk lm;nopq.rstu vwx";
        var partA = Sample(tokenizer, "abcd efg hijk lm nopq rstu vwx").PartA;
        var clauses = Seq2SeqExtraction.Clauses(source);
        Assert.Equal(4, clauses.Count);
        var scores = Seq2SeqExtraction.MeanNll(model, partA, clauses.Select(c => tokenizer.Encode(c).ToArray()).ToList());
        Assert.Equal(clauses[Array.IndexOf(scores, scores.Min())], Seq2SeqExtraction.BestClause(model, partA, source));
    }

    [Fact]
    public void SourceVocabularyOpensOnlyTokensMadeOfSourceCharactersAndTheStopId()
    {
        var tokenizer = new CharTestTokenizer();
        var vocabulary = new SourceVocabulary(tokenizer, 80, [GlmBlockTestSupport.Eop]);
        Assert.Equal(80, vocabulary.VocabSize);
        var allowed = vocabulary.Allowed("cab bac");
        var open = Enumerable.Range(0, allowed.Length).Where(id => allowed[id]).ToList();
        var expected = "abc ".Select(c => tokenizer.Encode(c.ToString())[0]).Append(GlmBlockTestSupport.Eop).Order().ToList();
        Assert.Equal(expected, open);

        var logits = Enumerable.Range(0, 80).Select(i => (float)i).ToArray();
        SourceVocabulary.Apply(logits, allowed);
        Assert.All(Enumerable.Range(0, 80), id => Assert.Equal(allowed[id], !float.IsNegativeInfinity(logits[id])));
    }

    [Fact]
    public void CopyOnlyGreedyDecodingNeverLeavesTheSourceCharacters()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = GlmBlockTestSupport.Model(seed: 9, tokenizer: tokenizer);
        var vocabulary = new SourceVocabulary(tokenizer, model.Config.VocabSize, [GlmBlockTestSupport.Eop]);
        int leavesWithoutConstraint = 0;
        foreach (var source in new[] { "abcab", "jjjjj", "acegi", "bdfhj", "aaaab", "hgfed" })
        {
            var partA = Sample(tokenizer, source).PartA;
            var free = tokenizer.Decode(Seq2SeqTask.GreedyBlank(model, partA, 20), skipSpecialTokens: true);
            var copied = tokenizer.Decode(Seq2SeqTask.GreedyBlank(model, partA, 20, constraint: vocabulary.For(CopyConstraint.Characters, source)), skipSpecialTokens: true);
            if (free.Any(c => !source.Contains(c))) leavesWithoutConstraint++;
            Assert.All(copied, c => Assert.Contains(c, source));
        }
        Assert.True(leavesWithoutConstraint > 0, "the random model should write characters outside the source without the constraint (else the test proves nothing)");
    }

    [Fact]
    public void EvaluationWithExtractionReportsSourceClausesAndRejectsGenerationOptions()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = GlmBlockTestSupport.Model(seed: 3, tokenizer: tokenizer);
        // Part A holds the source without punctuation (the test alphabet has none); Source keeps the clause marks.
        var samples = new[] { "abcd,efgh;ijkl", "mnop.qrst,uvwx" }.Select(s => Sample(tokenizer, s.Replace(',', ' ').Replace(';', ' ').Replace('.', ' '), "ab") with { Source = s }).ToList();
        var report = Seq2SeqTask.Score(model, samples, new Seq2SeqEvalOptions { ExtractClause = true, GenerateLimit = 2 });
        Assert.Equal(2, report.Predictions.Count);
        Assert.All(report.Predictions, p => Assert.Contains(p.Hypothesis, Seq2SeqExtraction.Clauses(p.Source)));
        Assert.All(report.Predictions, p => Assert.Equal(3, Seq2SeqExtraction.Clauses(p.Source).Count));
        Assert.NotNull(report.RougeL);

        Assert.Contains("Copy and NoRepeatNgram only apply to generation",
            Assert.Throws<GlmException>(() => new Seq2SeqEvalOptions { ExtractClause = true, Copy = CopyConstraint.Span }.Validate()).Message);
    }

    [Fact]
    public void SpanCopyingProducesOnePieceOfTheSourceAndMinNewTokensDelaysTheEnd()
    {
        var tokenizer = new CharTestTokenizer();
        using var model = GlmBlockTestSupport.Model(seed: 11, tokenizer: tokenizer);
        var vocabulary = new SourceVocabulary(tokenizer, model.Config.VocabSize, [GlmBlockTestSupport.Eop]);
        int nonTrivial = 0;
        foreach (var source in new[] { "abcab jjj", "acegi bdf", "hgfed cba", "zyx wvu tsr" })
        {
            var partA = Sample(tokenizer, source).PartA;
            var span = tokenizer.Decode(Seq2SeqTask.GreedyBlank(model, partA, 12, constraint: vocabulary.For(CopyConstraint.Span, source)), skipSpecialTokens: true);
            Assert.Contains(span, source);
            var longer = Seq2SeqTask.GreedyBlank(model, partA, 12, constraint: vocabulary.For(CopyConstraint.Span, source), minNewTokens: 4);
            var text = tokenizer.Decode(longer, skipSpecialTokens: true);
            Assert.Contains(text, source);
            // At least 4 tokens, unless the span reached the end of the source (then only the end token was left).
            Assert.True(longer.Length >= 4 || source.EndsWith(text, StringComparison.Ordinal), $"{source}: '{text}'");
            if (span.Length > 1) nonTrivial++;
        }
        Assert.True(nonTrivial > 0, "some spans should be longer than one character");
        // The end of the source leaves only the stop id: an empty source ends at once.
        var empty = new float[model.Config.VocabSize];
        vocabulary.For(CopyConstraint.Span, "")!.Restrict(empty, []);
        Assert.Equal([GlmBlockTestSupport.Eop], Enumerable.Range(0, empty.Length).Where(id => !float.IsNegativeInfinity(empty[id])));
        Assert.Contains("MinNewTokens = 9", Assert.Throws<GlmException>(() => new Seq2SeqEvalOptions { MaxNewTokens = 8, MinNewTokens = 9 }.Validate()).Message);
    }

    [Fact]
    public void OracleClauseIsTheClosestClauseAndReplacesTrainingTargets()
    {
        const string source = "本文介绍了一种方法，基于深度学习的图像分割方法研究，实验表明效果良好。";
        Assert.Equal("基于深度学习的图像分割方法研究", Seq2SeqExtraction.OracleClause(source, "深度学习图像分割方法研究"));
        var examples = new[] { new Seq2SeqExample(source, "深度学习图像分割", "f", 1), new Seq2SeqExample("  ", "标题", "f", 2) };
        var relabelled = Seq2SeqExtraction.WithOracleTargets(examples);
        Assert.Equal("基于深度学习的图像分割方法研究", relabelled[0].Target);
        Assert.Equal("标题", relabelled[1].Target); // no clause: the target stays
        Assert.Equal(examples[0].Line, relabelled[0].Line);
    }
}
