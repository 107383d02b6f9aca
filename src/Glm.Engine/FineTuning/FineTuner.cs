using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Glm.Engine.Checkpoints;
using Glm.Engine.Runtime;
using Glm.Engine.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Glm.Engine.FineTuning;

/// <summary>
/// Fine-tunes a loaded <see cref="GlmModel"/> on a <see cref="FineTuningTask"/> (chat SFT, cloze classification) with LoRA
/// adapters or all parameters, in the loop style of <see cref="GlmPretrainer"/>: AdamW, linear warm-up + cosine decay,
/// gradient clipping and accumulation, validation every N steps with early stopping on the task's primary metric,
/// resumable checkpoints in <c>&lt;out&gt;/checkpoint</c> (adapter or weights, optimizer moments, step, losses, early-stopping
/// state, torch RNG; the data order is a pure function of seed and step), progress reports and <c>&lt;out&gt;/loss.png</c>.
/// Outputs: <c>&lt;out&gt;/adapter</c> (PEFT) or <c>&lt;out&gt;/model</c>, and <c>&lt;out&gt;/best</c> at the best validation metric.
/// The model is held exclusively (its forward gate) during the run.
/// </summary>
public sealed class FineTuner
{
    private const string StateFile = "finetune_state.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private readonly FineTunerOptions _o;

    /// <summary>Creates a fine-tuner; the options are validated here.</summary>
    public FineTuner(FineTunerOptions options)
    {
        options.Validate();
        _o = options;
    }

    /// <summary>
    /// Trains until <see cref="FineTunerOptions.Steps"/>, early stopping, or cancellation (checked between steps); a checkpoint
    /// is written before returning. With LoRA the trained adapters stay attached to <paramref name="model"/> and are returned
    /// in <see cref="FineTuneOutcome.Adapters"/> (dispose them to restore the base model).
    /// </summary>
    public FineTuneOutcome Run(GlmModel model, FineTuningTask task, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = _o;
        TorchRuntime.EnsureInitialized();
        if (task.TrainCount == 0) throw new GlmException("the fine-tuning task has no training examples.");
        Directory.CreateDirectory(o.OutputFolder);
        string checkpointFolder = Path.Combine(o.OutputFolder, "checkpoint"), bestFolder = Path.Combine(o.OutputFolder, "best");
        string? resumeFrom = o.Resume ? FindCheckpoint(checkpointFolder) : null;
        var state = resumeFrom is null ? new FineTuneState() : LoadState(resumeFrom);
        torch.manual_seed(o.Seed);
        if (resumeFrom is not null && state.TorchRngState.Length > 0)
        {
            using var rng = tensor(Convert.FromBase64String(state.TorchRngState), dtype: ScalarType.Byte);
            set_rng_state(rng);
        }

        model.ForwardGate.Wait(cancellationToken);
        LoraAdapterSet? lora = null;
        var network = (nn.Module)model.Network;
        try
        {
            List<Parameter> parameters;
            if (o.Method == FineTuneMethod.Lora)
            {
                lora = resumeFrom is null
                    ? LoraAdapterSet.Attach(model, o.Lora with { BaseModel = o.Lora.BaseModel ?? model.Source }, o.Seed)
                    : LoraAdapterSet.Load(model, resumeFrom);
                lora.Train(true);
                parameters = lora.Parameters.ToList();
            }
            else
            {
                if (model.Quantization != GlmQuantization.None)
                    throw new GlmException($"{model.Source} has int8 weights; full fine-tuning needs an unquantized model (LoRA works on int8 bases but cannot be merged into them).");
                if (resumeFrom is not null) CopyWeights(model, resumeFrom);
                parameters = network.named_parameters().Select(p => p.parameter).ToList();
                foreach (var p in parameters) p.requires_grad_(true);
            }
            using var optimizer = torch.optim.AdamW(new[]
            {
                new AdamW.ParamGroup(parameters.Where(p => o.Method == FineTuneMethod.Lora || p.dim() >= 2), o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay),
                new AdamW.ParamGroup(parameters.Where(p => o.Method == FineTuneMethod.Full && p.dim() < 2), o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, 0),
            }, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay);
            if (resumeFrom is not null) optimizer.load_state_dict(Path.Combine(resumeFrom, TrainingCheckpoint.OptimizerFile));
            var schedule = new LearningRateSchedule(o.LearningRate, o.MinLearningRate, o.WarmupSteps, o.Steps);
            long trainable = parameters.Sum(p => p.numel());
            var baseReport = new TrainingProgress { Event = TrainingEvent.Started, Step = state.Step, TotalSteps = o.Steps };
            progress?.Report(baseReport with
            {
                Message = (resumeFrom is null ? "fresh start" : $"resumed from {resumeFrom} at step {state.Step}") +
                          $"; {o.Method}, {trainable:N0} trainable parameters, {task.TrainCount} training examples",
            });

            var clock = Stopwatch.StartNew();
            bool interrupted = false, stoppedEarly = false, saved = false;
            var evaluations = new List<FineTuneEvaluation>();
            while (state.Step < o.Steps)
            {
                if (cancellationToken.IsCancellationRequested) { interrupted = true; break; }
                double lr = schedule.At(state.Step);
                foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
                optimizer.zero_grad();
                double lossSum = 0;
                for (int micro = 0; micro < o.GradientAccumulation; micro++)
                {
                    long first = ((long)state.Step * o.GradientAccumulation + micro) * o.BatchSize;
                    var indices = Enumerable.Range(0, o.BatchSize).Select(i => DataIndex(first + i, task.TrainCount)).ToList();
                    using var scope = NewDisposeScope();
                    var loss = task.Loss(model, indices);
                    (loss / o.GradientAccumulation).backward();
                    lossSum += loss.item<float>();
                }
                double gradNorm = o.GradientClip > 0 ? torch.nn.utils.clip_grad_norm_(parameters, o.GradientClip) : double.NaN;
                optimizer.step();
                state.Step++;
                saved = false;
                double stepLoss = lossSum / o.GradientAccumulation;
                state.Losses.Add(stepLoss);
                var stepReport = baseReport with { Event = TrainingEvent.Step, Step = state.Step, Loss = stepLoss, LearningRate = lr, GradientNorm = gradNorm };
                if (state.Step % o.LogEvery == 0 || state.Step == o.Steps) progress?.Report(stepReport);

                if (task.HasEvaluation && ((o.EvalEvery > 0 && state.Step % o.EvalEvery == 0) || state.Step == o.Steps))
                {
                    var evaluation = Evaluate(model, task, lora, state.Step);
                    evaluations.Add(evaluation);
                    state.Evaluations.Add(evaluation);
                    double metric = evaluation.Metrics[task.PrimaryMetric];
                    bool better = state.BestMetric is not double best || (task.HigherIsBetter ? metric > best : metric < best);
                    if (better)
                    {
                        state.BestMetric = metric;
                        state.BestStep = state.Step;
                        state.BadEvaluations = 0;
                        SaveWeights(bestFolder, model, lora);
                    }
                    else state.BadEvaluations++;
                    progress?.Report(stepReport with
                    {
                        Event = TrainingEvent.Evaluation, Evaluation = new EvaluationResult(state.Step, evaluation.Loss, null, 0),
                        Message = string.Join(", ", evaluation.Metrics.Select(m => $"{m.Key} {m.Value:F4}")) + (better ? " (best)" : ""),
                    });
                    if (o.EarlyStoppingPatience > 0 && state.BadEvaluations >= o.EarlyStoppingPatience) { stoppedEarly = true; break; }
                }
                if (o.CheckpointEvery > 0 && state.Step % o.CheckpointEvery == 0 && state.Step < o.Steps)
                {
                    SaveCheckpoint(checkpointFolder, model, lora, optimizer, state);
                    saved = true;
                    progress?.Report(stepReport with { Event = TrainingEvent.Checkpoint, Message = checkpointFolder });
                }
            }
            if (!saved) SaveCheckpoint(checkpointFolder, model, lora, optimizer, state);
            string lossPng = Path.Combine(o.OutputFolder, "loss.png");
            LossCurvePlot.Save(lossPng, state.Losses, state.Evaluations.Select(e => new EvaluationResult(e.Step, e.Loss, null, 0)).ToList());
            string? output = null;
            if (!interrupted)
            {
                output = Path.Combine(o.OutputFolder, lora is null ? "model" : "adapter");
                SaveWeights(output, model, lora);
            }
            progress?.Report(baseReport with
            {
                Event = TrainingEvent.Finished, Step = state.Step, Loss = state.Losses.Count > 0 ? state.Losses[^1] : double.NaN,
                Message = (interrupted ? $"interrupted; checkpoint in {checkpointFolder}" : stoppedEarly ? $"stopped early; output in {output}" : $"done; output in {output}")
                          + $" ({clock.Elapsed.TotalSeconds:F1} s)",
            });
            var result = new FineTuneResult
            {
                StepsCompleted = state.Step, Interrupted = interrupted, StoppedEarly = stoppedEarly, Losses = state.Losses.ToList(),
                Evaluations = evaluations, BestMetric = state.BestMetric ?? double.NaN, BestStep = state.BestStep, TrainableParameters = trainable,
                OutputFolder = output, BestFolder = state.BestMetric is null ? null : bestFolder, CheckpointFolder = checkpointFolder, LossCurvePng = lossPng,
            };
            lora?.Train(false);
            return new FineTuneOutcome(result, lora);
        }
        catch
        {
            lora?.Dispose();
            throw;
        }
        finally
        {
            if (o.Method == FineTuneMethod.Full)
                foreach (var (_, p) in network.named_parameters()) p.requires_grad_(false);
            model.ForwardGate.Release();
        }
    }

    /// <summary>Index of the <paramref name="global"/>-th training draw: epoch e visits a seeded permutation of all examples.</summary>
    private int DataIndex(long global, int count)
    {
        long epoch = global / count;
        if (epoch != _permEpoch || _perm is null || _perm.Length != count)
        {
            _perm = Enumerable.Range(0, count).ToArray();
            new Random(unchecked((int)(_o.Seed * 1_000_003L + epoch * 7919L))).Shuffle(_perm); // stable across processes (exact resume)
            _permEpoch = epoch;
        }
        return _perm[global % count];
    }
    private int[]? _perm;
    private long _permEpoch = -1;

    private FineTuneEvaluation Evaluate(GlmModel model, FineTuningTask task, LoraAdapterSet? lora, int step)
    {
        lora?.Train(false);
        try
        {
            using var noGrad = torch.no_grad();
            return task.Evaluate(model, step, _o.BatchSize);
        }
        finally { lora?.Train(true); }
    }

    private static void SaveWeights(string folder, GlmModel model, LoraAdapterSet? lora)
    {
        if (lora is not null) { lora.Save(folder); return; }
        model.Save(folder);
        if (Directory.Exists(model.Source))
            foreach (var file in Directory.GetFiles(model.Source))
            {
                string name = Path.GetFileName(file);
                if (name == "config.json" || name.EndsWith(".safetensors") || name.EndsWith(".bin") || name.EndsWith(".index.json")) continue;
                File.Copy(file, Path.Combine(folder, name), overwrite: true);
            }
    }

    private static void SaveCheckpoint(string folder, GlmModel model, LoraAdapterSet? lora, OptimizerHelper optimizer, FineTuneState state) =>
        TrainingCheckpoint.WriteAtomically(folder, StateFile, tmp =>
        {
            if (lora is not null) lora.Save(tmp);
            else model.Save(tmp);
        }, optimizer, rng =>
        {
            state.TorchRngState = rng;
            return JsonSerializer.Serialize(state, Json);
        });

    private static string? FindCheckpoint(string folder) => TrainingCheckpoint.Find(folder, StateFile);

    private static FineTuneState LoadState(string folder)
    {
        string path = Path.Combine(folder, StateFile);
        try { return JsonSerializer.Deserialize<FineTuneState>(File.ReadAllText(path), Json) ?? throw new GlmException($"{path}: empty state; expected a JSON object."); }
        catch (JsonException ex) { throw new GlmException($"{path}: malformed fine-tuning state ({ex.Message}).", ex); }
    }

    /// <summary>Overwrites the model's weights with a full-fine-tuning checkpoint's (same names and shapes as Save wrote).</summary>
    private static void CopyWeights(GlmModel model, string folder)
    {
        using var reader = CheckpointReader.Open(folder);
        using var noGrad = torch.no_grad();
        foreach (var (name, t) in model.NamedWeights(model.Config.Layout))
        {
            if (!reader.Contains(name)) throw new GlmException($"{folder}: tensor '{name}' is missing; expected a checkpoint of this model.");
            using var loaded = reader.Load(name, t.dtype);
            if (!loaded.shape.SequenceEqual(t.shape))
                throw new GlmException($"{folder}: tensor '{name}' has shape [{string.Join(", ", loaded.shape)}]; the model has [{string.Join(", ", t.shape)}].");
            t.copy_(loaded);
        }
    }
}

/// <summary>The result of a run and, for LoRA, the trained adapters (still attached; dispose to detach).</summary>
/// <param name="Result">Steps, losses, evaluations and output folders.</param>
/// <param name="Adapters">The LoRA adapters, or null for full fine-tuning.</param>
public sealed record FineTuneOutcome(FineTuneResult Result, LoraAdapterSet? Adapters);

/// <summary>Resume state besides weights and optimizer moments.</summary>
internal sealed class FineTuneState
{
    public int Step { get; set; }
    public List<double> Losses { get; set; } = new();
    public List<FineTuneEvaluation> Evaluations { get; set; } = new();
    public double? BestMetric { get; set; }
    public int BestStep { get; set; }
    public int BadEvaluations { get; set; }
    public string TorchRngState { get; set; } = "";
}
