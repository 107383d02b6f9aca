using Glm.Engine.FineTuning;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Modeling;
using Glm.Engine.Training;

namespace Glm.Engine.Tests.FineTuning;

public sealed class FineTunerTests : IDisposable
{
    private const int Cls = GlmBlockTestSupport.Cls, Mask = GlmBlockTestSupport.Mask, Eos = GlmBlockTestSupport.Eos;
    private readonly string _dir = Directory.CreateTempSubdirectory("finetune").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Toy task: the label is decided by the first content token (8–11 → 0, 12–15 → 1); other tokens are noise.</summary>
    private static (List<ClozeSample> Samples, int[][] Verbalizers) ToyCloze()
    {
        var rng = new Random(3);
        var samples = new List<ClozeSample>();
        for (int i = 0; i < 16; i++)
        {
            int key = 8 + (i % 8), label = key < 12 ? 0 : 1;
            samples.Add(new ClozeSample([Cls, key, 20 + rng.Next(30), Mask, 20 + rng.Next(30), Eos], label));
        }
        return (samples, [[60, 61], [62, 63]]);
    }

    private FineTunerOptions Options(string name, int steps) => new()
    {
        OutputFolder = Path.Combine(_dir, name), Method = FineTuneMethod.Lora, Steps = steps, BatchSize = 8, LearningRate = 2e-2,
        WarmupSteps = 2, GradientClip = 1.0, Lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = "query_key_value|dense" }, Seed = 5,
    };

    [Fact]
    public void TinyLoraClozeRunImprovesTrainingAccuracy()
    {
        using var model = GlmBlockTestSupport.Model(seed: 21);
        var (samples, verbalizers) = ToyCloze();
        var task = new ClozeClassificationTask(samples, samples, verbalizers);
        var before = task.EvaluateTrain(model, 0, 16);
        var reports = new List<TrainingProgress>();
        var outcome = new FineTuner(Options("cloze", 30) with { EvalEvery = 10 }).Run(model, task, new SyncProgress(reports));
        using var adapters = outcome.Adapters!;
        var after = task.EvaluateTrain(model, 30, 16);
        Assert.True(after.Metrics["accuracy"] >= 0.9 && after.Metrics["accuracy"] > before.Metrics["accuracy"],
            $"accuracy {before.Metrics["accuracy"]:F3} → {after.Metrics["accuracy"]:F3}");
        Assert.True(after.Loss < before.Loss);
        Assert.Equal(3, outcome.Result.Evaluations.Count);
        Assert.Contains(reports, r => r.Event == TrainingEvent.Evaluation && r.Message!.Contains("macro_f1"));
        Assert.True(File.Exists(Path.Combine(outcome.Result.OutputFolder!, LoraAdapterSet.WeightsFile)));
        Assert.True(File.Exists(outcome.Result.LossCurvePng));
        Assert.True(File.Exists(Path.Combine(outcome.Result.BestFolder!, LoraAdapterSet.ConfigFile)));

        // The saved adapter reproduces the trained model on a fresh copy of the base.
        using var fresh = GlmBlockTestSupport.Model(seed: 21);
        using var loaded = LoraAdapterSet.Load(fresh, outcome.Result.OutputFolder!);
        Assert.Equal(after.Metrics["accuracy"], task.EvaluateTrain(fresh, 30, 16).Metrics["accuracy"]);
    }

    [Fact]
    public void ResumeContinuesExactlyAndEarlyStoppingStops()
    {
        var (samples, verbalizers) = ToyCloze();
        var task = new ClozeClassificationTask(samples, null, verbalizers);
        List<double> straight;
        using (var model = GlmBlockTestSupport.Model(seed: 4))
        {
            var o = new FineTuner(Options("straight", 6)).Run(model, task);
            o.Adapters!.Dispose();
            straight = o.Result.Losses.ToList();
        }
        // Interrupt after 3 steps via cancellation, then resume on a fresh base model.
        using (var model = GlmBlockTestSupport.Model(seed: 4))
        {
            using var cts = new CancellationTokenSource();
            var progress = new SyncProgress(r => { if (r.Event == TrainingEvent.Step && r.Step == 3) cts.Cancel(); });
            var first = new FineTuner(Options("split", 6)).Run(model, task, progress, cts.Token);
            first.Adapters!.Dispose();
            Assert.True(first.Result.Interrupted);
            Assert.Equal(3, first.Result.StepsCompleted);
        }
        using (var model = GlmBlockTestSupport.Model(seed: 4))
        {
            var second = new FineTuner(Options("split", 6) with { Resume = true }).Run(model, task);
            second.Adapters!.Dispose();
            Assert.Equal(6, second.Result.StepsCompleted);
            for (int i = 0; i < 6; i++) Assert.Equal(straight[i], second.Result.Losses[i], 4);
        }
        // Early stopping: a validation set whose labels contradict training never improves after the first evaluation.
        var flipped = samples.Select(s => s with { Label = 1 - s.Label }).ToList();
        using (var model = GlmBlockTestSupport.Model(seed: 4))
        {
            var o = new FineTuner(Options("early", 40) with { EvalEvery = 2, EarlyStoppingPatience = 2 })
                .Run(model, new ClozeClassificationTask(samples, flipped, verbalizers));
            o.Adapters!.Dispose();
            Assert.True(o.Result.StoppedEarly, $"ran {o.Result.StepsCompleted} steps; metrics {string.Join(" ", o.Result.Evaluations.Select(e => e.Metrics["accuracy"]))}");
            Assert.True(o.Result.StepsCompleted < 40);
        }
    }

    [Fact]
    public void FullFineTuningOfChatSamplesLowersTheLossAndSavesAModel()
    {
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 8 });
        var samples = new List<ChatSftSample>
        {
            new([1, 7, 9, 30, 31, 32, 2], [false, false, false, true, true, true, true]),
            new([1, 8, 40, 41, 2], [false, false, true, true, true]),
        };
        var task = new ChatSftTask(samples, samples);
        var outcome = new FineTuner(new FineTunerOptions
        {
            OutputFolder = Path.Combine(_dir, "full"), Method = FineTuneMethod.Full, Steps = 12, BatchSize = 2, LearningRate = 3e-3, EvalEvery = 4,
        }).Run(model, task);
        Assert.Null(outcome.Adapters);
        var evals = outcome.Result.Evaluations;
        Assert.True(evals[^1].Loss < evals[0].Loss, $"validation loss {evals[0].Loss:F3} → {evals[^1].Loss:F3}");
        Assert.All(((TorchSharp.torch.nn.Module)model.Network).named_parameters(), p => Assert.False(p.parameter.requires_grad));
        using var saved = GlmModel.Load(outcome.Result.OutputFolder!, new GlmLoadOptions { DType = "fp32", Device = "cpu" });
        Assert.Equal(model.ComputeLogits([1, 7, 9])[2, 30], saved.ComputeLogits([1, 7, 9])[2, 30], 4);
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public SyncProgress(List<TrainingProgress> into) : this(into.Add) { }
        public void Report(TrainingProgress value) => onReport(value);
    }
}
