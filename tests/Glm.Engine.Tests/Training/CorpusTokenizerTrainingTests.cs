using System.Diagnostics;
using Glm.Engine.Tokenization.Training;
using Glm.Engine.Training.Data;
using Xunit.Abstractions;

namespace Glm.Engine.Tests.Training;

/// <summary>Full-corpus tokenizer training: the measured run behind the reported vocab size and chars/token.</summary>
file sealed class SynchronousProgress(Action<BpeTrainingProgress> report) : IProgress<BpeTrainingProgress>
{
    public void Report(BpeTrainingProgress value) => report(value);
}

public class CorpusTokenizerTrainingTests(ITestOutputHelper output)
{
    [LongTrainingFact("data/corpus")]
    public void TrainOnSharedCorpusAndMeasureHeldOutCharsPerToken()
    {
        string corpus = TrainingData.SharedPath("data/corpus");
        string outDir = Environment.GetEnvironmentVariable("GLMSK_BPE_OUT") is { Length: > 0 } o ? o : TrainingData.TempDir();
        int vocabSize = int.TryParse(Environment.GetEnvironmentVariable("GLMSK_BPE_VOCAB"), out int v) ? v : 16000;
        long maxChars = long.TryParse(Environment.GetEnvironmentVariable("GLMSK_BPE_MAXCHARS"), out long m) ? m : 0;
        var options = new BpeTrainingOptions { VocabSize = vocabSize, MaxTrainingChars = maxChars };
        var watch = Stopwatch.StartNew();
        string log = Path.Combine(outDir, "training.log");
        Directory.CreateDirectory(outDir);
        void Log(string line) { output.WriteLine(line); File.AppendAllText(log, line + "\n"); }
        var vocab = BpeTokenizerTrainer.TrainFromFiles(CorpusSplit.ListCorpusFiles(corpus), options, outDir,
            new SynchronousProgress(p => { if (p.Merges % 1000 == 0) Log($"{watch.Elapsed.TotalSeconds,6:F1}s {p.Stage} {p.Merges}/{p.TargetMerges} last={p.LastPairCount} words={p.DistinctWords}"); }));
        double trainSeconds = watch.Elapsed.TotalSeconds;

        var tok = OwnBpeTokenizer.Load(outDir);
        var split = CorpusSplit.Load(corpus);
        long chars = 0, tokens = 0;
        foreach (var doc in split.Validation)
        {
            var ids = tok.Encode(doc.Text);
            Assert.Equal(doc.Text, tok.Decode(ids));
            chars += doc.Text.Length; tokens += ids.Count;
        }
        int singleCharTokens = Enumerable.Range(0, tok.RankCount).Count(id => { var s = tok.Decode([id]); return s.Length == 1 && s[0] is >= (char)0x4E00 and <= (char)0x9FFF; });
        int multiCharTokens = Enumerable.Range(0, tok.RankCount).Count(id => { var s = tok.Decode([id]); return s.Length >= 2 && s.All(c => c >= 0x4E00 && c <= 0x9FFF); });
        Log($"train {trainSeconds:F1}s, vocab {tok.VocabSize} ({tok.RankCount} ranks), held-out {split.Validation.Count} docs {chars} chars {tokens} tokens, chars/token {(double)chars / tokens:F3}, han single-char tokens {singleCharTokens}, han multi-char tokens {multiCharTokens}, out {outDir}");
        Assert.Equal(vocabSize, vocab.VocabSize);

        Assert.True((double)chars / tokens > 1.2);
    }

    /// <summary>Needs GLMSK_BPE_OUT = a folder holding a tokenizer trained by the test above.</summary>
    [LongTrainingFact("data/corpus")]
    public void NGramBaselinesOnHeldOutCorpus()
    {
        string dir = Environment.GetEnvironmentVariable("GLMSK_BPE_OUT") ?? "";
        Assert.True(File.Exists(Path.Combine(dir, BpeTokenizerTrainer.RankFileName)), $"GLMSK_BPE_OUT='{dir}' holds no trained tokenizer");
        var tok = OwnBpeTokenizer.Load(dir);
        var split = CorpusSplit.Load(TrainingData.SharedPath("data/corpus"));
        var watch = Stopwatch.StartNew();
        var trainIds = new List<IReadOnlyList<int>>();
        foreach (var doc in split.Train) trainIds.Add(tok.Encode(doc.Text));
        double encodeSeconds = watch.Elapsed.TotalSeconds;
        var ngram = NGramBaseline.Train(trainIds, tok.VocabSize);
        double uni = 0, bi = 0;
        long chars = 0, tokens = 0;
        foreach (var doc in split.Validation)
        {
            var ids = tok.Encode(doc.Text);
            uni += ngram.UnigramNllBits(ids); bi += ngram.BigramNllBits(ids);
            chars += doc.Text.Length; tokens += ids.Count;
        }
        string line = $"n-gram: encode train {encodeSeconds:F1}s ({trainIds.Sum(t => (long)t.Count)} tokens), total {watch.Elapsed.TotalSeconds:F1}s; held-out {chars} chars {tokens} tokens: bits/char unigram {uni / chars:F3}, bigram KN {bi / chars:F3}";
        output.WriteLine(line);
        File.AppendAllText(Path.Combine(dir, "training.log"), line + "\n");
        Assert.True(bi < uni);
    }
}
