using Glm.Engine.Checkpoints;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Checkpoints;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;
using TorchSharp;
using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Training;

public class GlmPretrainerTests
{
    private static readonly GlmSpecialTokens Tokens = new(Cls, Mask, SMask, GMask, Sop, Eop, Eos, Eos);

    /// <summary>Repetitive text: [CLS] then a cycle of <paramref name="period"/> letters, shifted per sample.</summary>
    private static List<int[]> RepetitiveCorpus(int samples, int length = 24, int period = 5) =>
        Enumerable.Range(0, samples).Select(s =>
            new[] { Cls }.Concat(Enumerable.Range(0, length).Select(i => FirstText + (s + i) % period)).ToArray()).ToList();

    private static GlmPretrainingOptions Options(string outFolder, int steps) => new()
    {
        OutputFolder = outFolder,
        Model = GlmPretrainer.OwnModelConfig(vocabSize: 72, hidden: 32, layers: 2, heads: 4, maxSequenceLength: 64, Tokens),
        SpecialTokens = Tokens,
        Collator = new BlankInfillingOptions { SpanProbability = 0.6, SentenceProbability = 0 },
        Steps = steps,
        BatchSize = 4,
        LearningRate = 3e-3,
        MinLearningRate = 3e-4,
        WarmupSteps = 5,
        EvalEvery = 0,
        EvalSamples = 8,
        CheckpointEvery = 0,
        CharactersPerToken = 1.0,
        PeakMeasureSeconds = 0.05,
        Seed = 99,
    };

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }

    [Fact]
    public void LossDecreasesOnATinyRepetitiveCorpusAndOutputsAreWritten()
    {
        using var dir = new CheckpointTempDir();
        var scoredText = new List<int>();
        var options = Options(dir.Path, steps: 50) with { CountCharacters = ids => { scoredText.AddRange(ids); return 2L * ids.Count; } };
        var reports = new List<TrainingProgress>();
        var result = new GlmPretrainer(options).Run(new ListSampleSource(RepetitiveCorpus(32)), new ListSampleSource(RepetitiveCorpus(8)),
            new SyncProgress(reports.Add));

        Assert.False(result.Interrupted);
        Assert.Equal(50, result.StepsCompleted);
        double first = result.Losses.Take(5).Average(), last = result.Losses.TakeLast(5).Average();
        Assert.True(last < 0.5 * first, $"loss {first:F3} → {last:F3}");
        Assert.Equal(50, reports.Count(r => r.Event == TrainingEvent.Step));
        Assert.All(reports.Where(r => r.Event == TrainingEvent.Step), r => Assert.True(r.TokensPerSecond > 0 && r.LearningRate > 0));
        var evaluation = Assert.Single(result.Evaluations);
        Assert.True(evaluation.Loss < first);
        // The first Part-B token (block position 1) is scored separately: one per blank, never more than all scored tokens.
        Assert.NotNull(evaluation.FirstTokenLoss);
        Assert.InRange(evaluation.FirstTokenLoss!.Value, 1e-6, 20);
        Assert.NotEqual(evaluation.Loss, evaluation.FirstTokenLoss.Value);
        // bpc = total NLL bits / characters of the scored text (eop targets carry no text; 2 characters per token here).
        Assert.All(scoredText, id => Assert.InRange(id, FirstText, FirstText + 25));
        Assert.InRange(scoredText.Count, 1, evaluation.ScoredTokens - 1);
        Assert.Equal(evaluation.Loss * evaluation.ScoredTokens / Math.Log(2) / (2.0 * scoredText.Count), evaluation.BitsPerCharacter!.Value, 9);
        Assert.True(File.Exists(Path.Combine(dir.Path, "loss.png")) && new FileInfo(Path.Combine(dir.Path, "loss.png")).Length > 1000);
        Assert.True(File.Exists(Path.Combine(dir.Path, "checkpoint", "optimizer.bin")));
        using var trained = GlmModel.Load(result.ModelFolder!, Fp32Cpu);
        Assert.Equal(GeluVariant.Tanh, trained.Config.Gelu);
        Assert.Equal(Sop, trained.BlankTokens!.Sop);
        Assert.True(result.PeakGFlops > 0 && result.AchievedGFlops > 0);
    }

    [Fact]
    public void ADivergingRunStopsWithAClearErrorAndKeepsTheLastGoodCheckpoint()
    {
        using var dir = new CheckpointTempDir();
        int checkpointStep = 0;
        // No clipping and an absurd learning rate: the weights blow up within a few steps.
        var options = Options(dir.Path, steps: 200) with { LearningRate = 1e9, MinLearningRate = 1e9, WarmupSteps = 0, GradientClip = 0, CheckpointEvery = 1 };
        var error = Assert.Throws<GlmException>(() => new GlmPretrainer(options).Run(new ListSampleSource(RepetitiveCorpus(32)), null,
            new SyncProgress(p => { if (p.Event == TrainingEvent.Checkpoint) checkpointStep = p.Step; })));
        Assert.Contains("training diverged at step", error.Message);
        Assert.Contains("lower --lr", error.Message);
        var state = TrainingCheckpoint.LoadState(Path.Combine(dir.Path, "checkpoint"));
        Assert.Equal(checkpointStep, state.Step);
        Assert.All(state.Losses, l => Assert.True(double.IsFinite(l)));
        using var scope = NewDisposeScope();
        using var saved = CheckpointReader.Open(Path.Combine(dir.Path, "checkpoint"));
        Assert.All(saved.Names, n => Assert.True(saved.Load(n).isfinite().all().item<bool>(), n));
    }

    [Fact]
    public void TheModelOfTheLowestHeldOutLossIsKeptInBestModel()
    {
        using var dir = new CheckpointTempDir();
        var reports = new List<TrainingProgress>();
        var result = new GlmPretrainer(Options(dir.Path, steps: 40) with { EvalEvery = 10 })
            .Run(new ListSampleSource(RepetitiveCorpus(32)), new ListSampleSource(RepetitiveCorpus(8)), new SyncProgress(reports.Add));

        Assert.Equal(4, result.Evaluations.Count);
        // One save per evaluation that beat every earlier one; the first always does.
        int improvements = result.Evaluations.Select((e, i) => result.Evaluations.Take(i).All(p => e.Loss < p.Loss)).Count(x => x);
        Assert.Equal(improvements, reports.Count(r => r.Event == TrainingEvent.Checkpoint && r.Message!.Contains("best held-out loss")));
        string best = Path.Combine(dir.Path, GlmPretrainer.BestModelFolder);
        Assert.False(Directory.Exists(best + ".tmp"));
        using var scope = NewDisposeScope();
        using var bestWeights = CheckpointReader.Open(best);
        using var finalWeights = CheckpointReader.Open(result.ModelFolder!);
        // The final model is the best one exactly when the last evaluation is the minimum.
        bool lastIsBest = result.Evaluations[^1].Loss < result.Evaluations.SkipLast(1).Min(e => e.Loss);
        bool identical = bestWeights.Names.All(n => bestWeights.Load(n).eq(finalWeights.Load(n)).all().item<bool>());
        Assert.Equal(lastIsBest, identical);
        using var loaded = GlmModel.Load(best, Fp32Cpu);
        Assert.Equal(Sop, loaded.BlankTokens!.Sop);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)] // sequence-length warm-up: steps 0–4 train on chunks of 8 → 24 tokens
    public void InterruptedAndResumedRunEqualsAStraightRunBitwise(int lengthWarmupSteps)
    {
        using var dir = new CheckpointTempDir();
        var corpus = RepetitiveCorpus(10, period: 7);
        string straight = Path.Combine(dir.Path, "straight"), resumed = Path.Combine(dir.Path, "resumed");
        GlmPretrainingOptions Opts(string folder) => Options(folder, steps: 6) with
        {
            GradientAccumulation = 2, WeightDecay = 0.1, SequenceLengthWarmupSteps = lengthWarmupSteps, SequenceLengthWarmupStart = 8,
        };

        var a = new GlmPretrainer(Opts(straight)).Run(new ListSampleSource(corpus), null);

        using var cts = new CancellationTokenSource();
        var first = new GlmPretrainer(Opts(resumed)).Run(new ListSampleSource(corpus), null,
            new SyncProgress(p => { if (p.Event == TrainingEvent.Step && p.Step == 3) cts.Cancel(); }), cts.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(3, first.StepsCompleted);
        Assert.Null(first.ModelFolder);
        // Simulate a crash between the two renames of the atomic swap: only checkpoint.old is left.
        Directory.Move(Path.Combine(resumed, "checkpoint"), Path.Combine(resumed, "checkpoint.old"));
        // Fresh objects (as a new process would build them) continue from the checkpoint.
        int stepsAfterResume = 0;
        var b = new GlmPretrainer(Opts(resumed)).Run(new EnumerableSampleSource(() => corpus), null,
            new SyncProgress(p => { if (p.Event == TrainingEvent.Step) stepsAfterResume++; }));
        Assert.Equal(6, b.StepsCompleted);
        Assert.Equal(3, stepsAfterResume);
        Assert.Equal(a.Losses, b.Losses);

        using var scope = NewDisposeScope();
        using var ra = CheckpointReader.Open(a.ModelFolder!);
        using var rb = CheckpointReader.Open(b.ModelFolder!);
        Assert.Equal(ra.Names.Order(), rb.Names.Order());
        foreach (var name in ra.Names)
            Assert.True(ra.Load(name).eq(rb.Load(name)).all().item<bool>(), $"{name} differs after resume");
    }

    [Fact]
    public void Bf16TrainingRunsWithFp32MasterWeights()
    {
        using var dir = new CheckpointTempDir();
        var result = new GlmPretrainer(Options(dir.Path, steps: 3) with { DType = "bf16" })
            .Run(new ListSampleSource(RepetitiveCorpus(8)), null);
        Assert.All(result.Losses, l => Assert.True(double.IsFinite(l) && l > 0));
        Assert.Equal("float32", GlmConfig.Load(result.ModelFolder!).TorchDtype);
    }

    [Fact]
    public void BatchedMaskedLossEqualsPerSampleScoringUnderTheInferenceRule()
    {
        var cfg = GlmPretrainer.OwnModelConfig(72, 32, 2, 4, 64, Tokens);
        using var model = Model(cfg, RandomTensors(cfg, 4));
        var network = (GlmBlockModel)model.Network;
        var collator = new BlankInfillingCollator(Tokens, new BlankInfillingOptions { SpanProbability = 0, SentenceProbability = 0 }, seed: 5);
        var samples = RepetitiveCorpus(3, length: 20, period: 6).Select((s, i) => s.Take(12 + 4 * i).ToArray()).ToList();
        var batch = collator.Collate(samples, BlankInfillingMode.Document); // one gMASK each: the inference rule applies

        double expected = 0;
        long expectedCount = 0;
        for (int b = 0; b < batch.BatchSize; b++)
        {
            int length = Enumerable.Range(0, batch.Length).Last(i => batch.LossMask[b * batch.Length + i] > 0) + 1;
            var ids = batch.InputIds.Skip(b * batch.Length).Take(length).ToArray();
            var logits = model.ComputeLogits(ids);
            for (int i = 0; i < length; i++)
            {
                if (batch.LossMask[b * batch.Length + i] == 0) continue;
                var row = Enumerable.Range(0, cfg.VocabSize).Select(j => (double)logits[i, j]).ToArray();
                double max = row.Max();
                expected += max + Math.Log(row.Sum(v => Math.Exp(v - max))) - row[batch.TargetIds[b * batch.Length + i]];
                expectedCount++;
            }
        }
        foreach (bool fused in new[] { false, true })
        {
            network.UseFusedAttention = fused;
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (sum, count) = Glm.Engine.Training.GlmTrainingStep.MaskedNll(network, batch);
            Assert.Equal(expectedCount, count);
            Assert.Equal(expected, sum.item<float>(), expected * 1e-5);
            var (perToken, rows) = Glm.Engine.Training.GlmTrainingStep.ScoredNll(network, batch);
            Assert.Equal(Enumerable.Range(0, batch.LossMask.Length).Where(i => batch.LossMask[i] > 0).Select(i => (long)i), rows);
            Assert.Equal(expected, perToken.sum().item<float>(), expected * 1e-5);
        }
    }

    [Fact]
    public void ScheduleWarmsUpLinearlyThenDecaysToTheMinimum()
    {
        var s = new LearningRateSchedule(1e-3, 1e-4, WarmupSteps: 4, TotalSteps: 20);
        Assert.Equal(2.5e-4, s.At(0), 12);
        Assert.Equal(1e-3, s.At(3), 12);
        Assert.Equal(1e-3, s.At(4), 12);
        Assert.Equal(1e-4, s.At(19), 12);
        Assert.True(s.At(10) < s.At(5) && s.At(10) > s.At(15));
    }

    [Fact]
    public void BadOptionsAreRejectedWithTheFieldName()
    {
        using var dir = new CheckpointTempDir();
        var ex = Assert.Throws<GlmException>(() => new GlmPretrainer(Options(dir.Path, 5) with { DType = "fp16" }));
        Assert.Contains("DType", ex.Message);
        ex = Assert.Throws<GlmException>(() => new GlmPretrainer(Options(dir.Path, 5) with { Model = ModelPresets.Get("glm4-tiny") }));
        Assert.Contains("original-GLM", ex.Message);
        ex = Assert.Throws<GlmException>(() => new GlmPretrainer(Options(dir.Path, 5) with { SequenceLengthWarmupStart = 2 }));
        Assert.Contains("SequenceLengthWarmupStart", ex.Message);
    }
}
