using System.Text;
using Glm.Engine.Tokenization.Training;
using Glm.Engine.Training.Data;
using Microsoft.ML.Tokenizers;

namespace Glm.Engine.Tests.Training;

public class BpeTokenizerTrainerTests
{
    private static readonly string[] TinyCorpus =
    [
        "你好，世界。你好，朋友。", "世界很大，朋友很多。", "我们的朋友在世界各地。", "你好你好你好。",
        "天下大势，分久必合，合久必分。", "话说天下大势，分久必合。",
    ];

    private static (OwnBpeTokenizer Tokenizer, string Dir) TrainTiny(int vocab = 400)
    {
        string dir = TrainingData.TempDir();
        var texts = Enumerable.Repeat(TinyCorpus, 20).SelectMany(t => t);
        BpeTokenizerTrainer.Save(BpeTokenizerTrainer.Train(texts, new BpeTrainingOptions { VocabSize = vocab }), dir);
        return (OwnBpeTokenizer.Load(dir), dir);
    }

    [Fact]
    public void ClassicExampleMergesInFrequencyOrder()
    {
        // "aaabdaaabac": aa (4, overlapping) → then ab vs Za tie (2 each), lower pair key wins (a,b) → then "aa"+"ab".
        var vocab = BpeTokenizerTrainer.Train(["aaabdaaabac"], new BpeTrainingOptions { VocabSize = 1000, MinPairFrequency = 2 });
        Assert.Equal(259, vocab.Ranks.Count);
        Assert.Equal("aa", Encoding.ASCII.GetString(vocab.Ranks[256]));
        Assert.Equal("ab", Encoding.ASCII.GetString(vocab.Ranks[257]));
        Assert.Equal("aaab", Encoding.ASCII.GetString(vocab.Ranks[258]));
        for (int b = 0; b < 256; b++) Assert.Equal([(byte)b], vocab.Ranks[b]);
    }

    [Fact]
    public void FrequentWordsBecomeSingleTokensAndVocabSizeIsExact()
    {
        var (tok, _) = TrainTiny(340);
        Assert.Single(tok.Encode("你好"));
        Assert.Single(tok.Encode("朋友"));
        Assert.Equal(340, tok.VocabSize);
        Assert.Equal(340 - BpeTokenizerTrainer.SpecialTokenNames.Count, tok.RankCount);
        // A target beyond what pairs with frequency ≥ 2 can supply stops early instead of inventing merges.
        var (small, _) = TrainTiny(5000);
        Assert.True(small.VocabSize < 5000);
    }

    [Fact]
    public void RoundTripsUnseenTextWithoutUnknowns()
    {
        var (tok, _) = TrainTiny();
        foreach (var text in new[] { "你好，世界。", "完全没见过的字：龘䶮 and English, émoji 😀\n\t  tabs", "[MASK]<|endoftext|><|user|>" })
        {
            var ids = tok.Encode(text);
            Assert.All(ids, id => Assert.False(tok.IsSpecial(id))); // special-token text is plain text
            Assert.Equal(text, tok.Decode(ids));
        }
    }

    [Fact]
    public void SpecialTokensFollowTheRanksAndDecodeAsStrings()
    {
        var (tok, _) = TrainTiny();
        int n = tok.RankCount;
        Assert.Equal(n, tok.SpecialTokenId("[MASK]"));
        Assert.Equal(n + 3, tok.SpecialTokenId("sop"));
        Assert.Equal(n + 3, tok.SpecialTokenId("<sop>"));
        Assert.Equal(n + 12, tok.SpecialTokenId("<|observation|>"));
        Assert.Null(tok.SpecialTokenId("<|nonexistent|>"));
        var special = tok.SpecialTokens;
        Assert.Equal(new GlmSpecialTokens(n + 6, n, n + 1, n + 2, n + 3, n + 4, n + 5, n + 8), special);
        var ids = new List<int> { special.GenerationMask, special.Sop };
        ids.AddRange(tok.Encode("你好"));
        Assert.Equal("[gMASK]<sop>你好", tok.Decode(ids));
        Assert.Equal("你好", tok.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void MicrosoftTiktokenLoadsTheRankFileWithSameIds()
    {
        var (tok, dir) = TrainTiny();
        using var stream = File.OpenRead(Path.Combine(dir, BpeTokenizerTrainer.RankFileName));
        var tiktoken = TiktokenTokenizer.Create(stream, new RegexPreTokenizer(new System.Text.RegularExpressions.Regex(tok.Pattern), null), null, new Dictionary<string, int>());
        const string text = "话说天下大势，分久必合，合久必分。你好朋友！";
        var ids = tiktoken.EncodeToIds(text);
        Assert.Equal(tok.Encode(text), ids);
        Assert.Equal(text, tiktoken.Decode(ids));
        Assert.True(ids.Count < Encoding.UTF8.GetByteCount(text) / 2, $"{ids.Count} tokens: merges should compress well below bytes");
    }

    [Fact]
    public void ChunkedEncodingOfLongTextEqualsWholeTextEncoding()
    {
        var (tok, dir) = TrainTiny();
        using var stream = File.OpenRead(Path.Combine(dir, BpeTokenizerTrainer.RankFileName));
        var whole = TiktokenTokenizer.Create(stream, new RegexPreTokenizer(new System.Text.RegularExpressions.Regex(tok.Pattern), null), null, new Dictionary<string, int>());
        var rng = new GlmRandom(1);
        string[] breaks = ["\n", "\n\n", "  \n", "。\n", "\n　　", "\n \n", " "];
        var sb = new StringBuilder();
        while (sb.Length < 60000) sb.Append(TinyCorpus[rng.NextInt(TinyCorpus.Length)]).Append(breaks[rng.NextInt(breaks.Length)]);
        string text = sb.ToString();
        var ids = tok.Encode(text);
        Assert.Equal(whole.EncodeToIds(text), ids);
        Assert.Equal(text, tok.Decode(ids));
    }

    [Fact]
    public void TrainingIsDeterministic()
    {
        var o = new BpeTrainingOptions { VocabSize = 350 };
        var a = BpeTokenizerTrainer.Train(TinyCorpus, o);
        var b = BpeTokenizerTrainer.Train(TinyCorpus.Reverse(), o);
        Assert.Equal(a.Ranks.Select(Convert.ToBase64String), b.Ranks.Select(Convert.ToBase64String));
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        var ex = Assert.Throws<GlmException>(() => BpeTokenizerTrainer.Train(TinyCorpus, new BpeTrainingOptions { VocabSize = 100 }));
        Assert.Contains("VocabSize = 100", ex.Message);
        string dir = TrainingData.TempDir();
        ex = Assert.Throws<GlmException>(() => OwnBpeTokenizer.Load(dir));
        Assert.Contains(BpeTokenizerTrainer.RankFileName, ex.Message);
        var (_, good) = TrainTiny();
        File.AppendAllText(Path.Combine(good, BpeTokenizerTrainer.RankFileName), "!!notbase64 999\n");
        ex = Assert.Throws<GlmException>(() => OwnBpeTokenizer.Load(good));
        Assert.Contains("rank_count", ex.Message);
    }

    [TrainingDataFact("data/corpus/luxun/nahan.txt")]
    public void TrainsOnRealChineseAndRoundTripsHeldOutText()
    {
        string dir = TrainingData.TempDir();
        var files = new[] { "data/corpus/luxun/nahan.txt", "data/corpus/luxun/panghuang.txt" }.Select(TrainingData.SharedPath);
        var vocab = BpeTokenizerTrainer.TrainFromFiles(files, new BpeTrainingOptions { VocabSize = 3000 }, dir);
        Assert.Equal(3000, vocab.VocabSize);
        var tok = OwnBpeTokenizer.Load(dir);
        var heldOut = CorpusSplit.SplitFile("nahan.txt", File.ReadAllText(TrainingData.SharedPath("data/corpus/luxun/nahan.txt")), 0.02, true).Validation;
        string text = heldOut.Single().Text;
        var ids = tok.Encode(text);
        Assert.Equal(text, tok.Decode(ids));
        double charsPerToken = (double)text.Length / ids.Count;
        Assert.True(charsPerToken > 1.0, $"chars/token {charsPerToken:F3}");
        Assert.Single(tok.Encode("的"));
        Assert.Single(tok.Encode("我们"));
    }
}

public class OwnTokenizerPipelineTests
{
    [Fact]
    public void OwnTokenizerFeedsPackedStreamAndCollatorInEveryMode()
    {
        string dir = TrainingData.TempDir();
        string[] docs =
        [
            "话说天下大势，分久必合，合久必分。周末七国分争，并入于秦。及秦灭之后，楚、汉分争，又并入于汉。",
            "我们的朋友在世界各地。你好，世界！世界很大；朋友很多。",
        ];
        BpeTokenizerTrainer.Save(BpeTokenizerTrainer.Train(Enumerable.Repeat(docs, 5).SelectMany(d => d), new BpeTrainingOptions { VocabSize = 1000 }), dir);
        var tok = OwnBpeTokenizer.Load(dir);
        var ends = BlankInfillingCollator.FindSentenceEndTokenIds(tok);
        Assert.Contains(tok.Encode("。")[0], ends);
        Assert.DoesNotContain(tok.Encode("天")[^1], ends);

        var stream = PackedSampleStream.FromDocuments(docs.Select(d => new CorpusDocument("t", d)), tok, 40, tok.SpecialTokens);
        var samples = new[] { stream.Next(), stream.Next() };
        var collator = new BlankInfillingCollator(tok.SpecialTokens, new BlankInfillingOptions(), seed: 5, sentenceEndTokenIds: ends);
        foreach (var mode in Enum.GetValues<BlankInfillingMode>())
        {
            var batch = collator.Collate(samples, mode);
            for (int b = 0; b < samples.Length; b++)
            {
                int o = b * batch.Length;
                var row = batch.TargetIds.AsSpan(o, batch.Length).ToArray();
                var loss = batch.LossMask.AsSpan(o, batch.Length).ToArray();
                // Scored targets are text ids, eos or eop only; their text is a part of the sample.
                var scored = row.Where((_, i) => loss[i] > 0).Where(id => id != tok.SpecialTokens.Eop && id != tok.SpecialTokens.Eos).ToList();
                Assert.NotEmpty(scored);
                Assert.All(scored, id => Assert.False(tok.IsSpecial(id)));
                Assert.Contains(tok.Decode(scored.Take(1)), tok.Decode(samples[b]));
            }
        }
    }
}
