using System.Diagnostics;
using Glm.Engine.Modeling;
using Glm.Engine.Runtime;
using Glm.Engine.Training.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Glm.Engine.Training;

/// <summary>
/// Pretrains an original-GLM model from scratch with the autoregressive blank-infilling objective: samples from an
/// <see cref="ITrainingSampleSource"/> are collated by <see cref="BlankInfillingCollator"/>, the loss is the mean NLL over
/// Part-B targets (loss mask 1, labels not shifted), optimised with AdamW under linear warm-up + cosine decay, gradient
/// clipping and accumulation. Held-out evaluation reports loss and bits per character; checkpoints in
/// <c>&lt;out&gt;/checkpoint/</c> resume exactly (weights, optimizer moments and step, schedule step, data cursor,
/// collator RNG, torch RNG); cancellation saves a checkpoint and returns. The final model is a GLM folder in
/// <c>&lt;out&gt;/model/</c>, the loss curve <c>&lt;out&gt;/loss.png</c>.
/// </summary>
public sealed class GlmPretrainer
{
    private readonly GlmPretrainingOptions _options;

    /// <summary>Creates a trainer; the options are validated here.</summary>
    public GlmPretrainer(GlmPretrainingOptions options)
    {
        options.Validate();
        _options = options;
    }

    /// <summary>
    /// Our own GLM shape: FFN 4H, LayerNorm eps 1e-5, tanh GELU (as THUDM/GLM trained), the collator's control-token ids
    /// recorded in config.json, eos = &lt;|endoftext|&gt;.
    /// </summary>
    public static GlmConfig OwnModelConfig(int vocabSize, int hidden, int layers, int heads, int maxSequenceLength, GlmSpecialTokens tokens) => new()
    {
        Layout = GlmLayout.OriginalGlm,
        ModelType = "glm",
        NumLayers = layers,
        HiddenSize = hidden,
        NumHeads = heads,
        NumKvHeads = heads,
        HeadDim = hidden / heads,
        FfnHiddenSize = 4 * hidden,
        VocabSize = vocabSize,
        NormEps = 1e-5,
        QkvBias = true,
        LinearBias = true,
        TiedEmbeddings = true,
        MaxPositions = maxSequenceLength,
        EosTokenIds = new[] { tokens.Eos },
        PadTokenId = tokens.Pad,
        Gelu = GeluVariant.Tanh,
        BlankTokens = new GlmBlankTokenIds(tokens.Mask, tokens.SentenceMask, tokens.GenerationMask, tokens.Sop, tokens.Eop),
    };

    /// <summary><see cref="Run"/> on a worker thread.</summary>
    public Task<TrainingResult> RunAsync(ITrainingSampleSource train, ITrainingSampleSource? eval,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Run(train, eval, progress, cancellationToken), CancellationToken.None);

    /// <summary>
    /// Trains until <see cref="GlmPretrainingOptions.Steps"/> optimizer steps are done (continuing a checkpoint when
    /// <see cref="GlmPretrainingOptions.Resume"/> is set) or <paramref name="cancellationToken"/> fires (checked between
    /// optimizer steps, so the step in progress completes); in both cases a checkpoint is written before returning.
    /// </summary>
    public TrainingResult Run(ITrainingSampleSource train, ITrainingSampleSource? eval,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = _options;
        TorchRuntime.EnsureInitialized();
        torch.set_num_threads(o.Threads);
        Directory.CreateDirectory(o.OutputFolder);
        string checkpointFolder = Path.Combine(o.OutputFolder, "checkpoint");
        var computeDType = o.DType is "bf16" or "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var loadOptions = new GlmLoadOptions { DType = "fp32", Device = o.Device, Seed = o.Seed };

        torch.manual_seed(o.Seed);
        string? resumeFrom = o.Resume ? TrainingCheckpoint.Find(checkpointFolder) : null;
        var state = resumeFrom is null ? new TrainerState { Seed = o.Seed } : TrainingCheckpoint.LoadState(resumeFrom);
        string? startFrom = resumeFrom ?? o.StartFrom;
        using var model = startFrom is null
            ? GlmModel.CreateRandom(o.Model, loadOptions, "pretraining")
            : GlmModel.Load(startFrom, loadOptions);
        if (startFrom is not null) CheckSameShape(model.Config, startFrom, resumeFrom is not null);
        string? initialisation = null;
        if (resumeFrom is null && o.StartFrom is not null)
        {
            CheckSameBlankTokens(model.Config, o.StartFrom);
            if (o.Initialization == GlmInitialization.LocalAttention)
                initialisation = LocalAttentionGraft.Apply(model, o.QueryKeyGain, o.Seed, Math.Min(o.GraftLayers, model.Config.NumLayers), neighbourHeads: o.GraftNeighbourHeads).ToString();
        }
        else if (resumeFrom is null && o.Initialization == GlmInitialization.LocalAttention)
        {
            LocalAttentionInitialization.Apply(model, o.QueryKeyGain, o.Seed);
            initialisation = $"{o.Initialization} initialisation (gain {o.QueryKeyGain:G3})";
        }
        var network = (GlmBlockModel)model.Network;
        network.ComputeDType = computeDType;
        network.UseFusedAttention = o.FusedAttention;
        var parameters = network.EnableTraining().Select(p => p.Parameter).ToList();

        // Megatron convention: no weight decay on biases and LayerNorm parameters (1-D tensors).
        using var optimizer = torch.optim.AdamW(new[]
        {
            new AdamW.ParamGroup(parameters.Where(p => p.dim() >= 2), o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay),
            new AdamW.ParamGroup(parameters.Where(p => p.dim() < 2), o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, 0),
        }, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay);
        var collator = new BlankInfillingCollator(o.SpecialTokens, o.Collator, (ulong)o.Seed, o.SentenceEndTokenIds);
        if (resumeFrom is not null)
        {
            optimizer.load_state_dict(Path.Combine(resumeFrom, TrainingCheckpoint.OptimizerFile));
            collator.RestoreState(state.CollatorState);
            TrainingCheckpoint.RestoreTorchRng(state);
        }
        var lengthWarmup = new SequenceLengthWarmup(o.SequenceLengthWarmupSteps, o.SequenceLengthWarmupStart);
        var schedule = new LearningRateSchedule(o.LearningRate, o.MinLearningRate, o.WarmupSteps, o.Steps);
        long parameterCount = parameters.Sum(p => p.numel());
        double peak = GemmBenchmark.MeasureGFlops(o.Model.HiddenSize, computeDType, network.Device, o.PeakMeasureSeconds);
        var baseReport = new TrainingProgress { Event = TrainingEvent.Started, Step = state.Step, TotalSteps = o.Steps, PeakGFlops = peak };
        progress?.Report(baseReport with
        {
            Message = (resumeFrom is not null ? $"resumed from {resumeFrom} at step {state.Step}" : o.StartFrom is not null ? $"fresh start from the weights of {o.StartFrom}" : "fresh start") +
                      $"; {parameterCount:N0} parameters, {computeDType}" + (double.IsNaN(peak) ? "" : $", GEMM peak {peak:F1} GFLOP/s") +
                      (initialisation is null ? "" : $"; {initialisation}") +
                      (o.SequenceLengthWarmupSteps > 0 ? $"; sequence-length warm-up from {o.SequenceLengthWarmupStart} tokens over {o.SequenceLengthWarmupSteps} steps" : ""),
        });

        using var data = train.ReadFrom(state.DataCursor).GetEnumerator();
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        bool interrupted = false, savedAtCurrentStep = false;
        double lastLoss = state.Losses.Count > 0 ? state.Losses[^1] : double.NaN, tokensPerSecond = 0;
        EvaluationResult? lastEval = state.Evaluations.LastOrDefault();
        var evaluations = new List<EvaluationResult>();

        // Continued pretraining: where the held-out metrics start is the baseline the run is judged against.
        if (resumeFrom is null && o.StartFrom is not null && eval is not null && o.EvalEvery > 0)
        {
            lastEval = Evaluate(network, eval, 0);
            evaluations.Add(lastEval);
            state.Evaluations.Add(lastEval);
            progress?.Report(baseReport with { Event = TrainingEvent.Evaluation, Evaluation = lastEval });
        }

        while (state.Step < o.Steps)
        {
            if (cancellationToken.IsCancellationRequested) { interrupted = true; break; }
            double lr = schedule.At(state.Step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            optimizer.zero_grad();
            double nllSum = 0;
            long scored = 0;
            for (int micro = 0; micro < o.GradientAccumulation; micro++)
            {
                var samples = new List<int[]>(o.BatchSize);
                for (int i = 0; i < o.BatchSize; i++)
                {
                    if (!data.MoveNext())
                        throw new GlmException($"the training sample source ended after {state.DataCursor} samples; expected an endless (cycling) source.");
                    samples.Add(data.Current);
                    tokens += data.Current.Length;
                    state.DataCursor++;
                }
                int fullLength = samples.Max(x => x.Length), chunkLength = lengthWarmup.ChunkLength(state.Step, fullLength);
                var batch = collator.Collate(chunkLength < fullLength ? SequenceLengthWarmup.Split(samples, chunkLength, o.SpecialTokens.Cls) : samples);
                using var scope = NewDisposeScope();
                var (sum, count) = GlmTrainingStep.MaskedNll(network, batch);
                if (count == 0) continue;
                (sum / count / o.GradientAccumulation).backward();
                nllSum += sum.item<float>();
                scored += count;
            }
            double gradNorm = o.GradientClip > 0 ? torch.nn.utils.clip_grad_norm_(parameters, o.GradientClip) : double.NaN;
            // A diverged step would write NaN into the weights and, at the next checkpoint, over the last good one: stop first.
            if (!double.IsFinite(nllSum) || (o.GradientClip > 0 && !double.IsFinite(gradNorm)))
                throw new GlmException($"training diverged at step {state.Step + 1}: loss {nllSum / Math.Max(1, scored):G4}, gradient norm {gradNorm:G4} " +
                    $"at learning rate {lr:G3}. The weights were not updated and nothing was saved: the last checkpoint in {checkpointFolder}, " +
                    "if any, is unchanged; resume with a lower --lr (or --dtype fp32).");
            optimizer.step();
            state.Step++;
            savedAtCurrentStep = false;
            lastLoss = scored > 0 ? nllSum / scored : double.NaN;
            state.Losses.Add(lastLoss);
            tokensPerSecond = tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            var stepReport = baseReport with
            {
                Event = TrainingEvent.Step, Step = state.Step, Loss = lastLoss, LearningRate = lr, GradientNorm = gradNorm,
                TokensPerSecond = tokensPerSecond, AchievedGFlops = 6.0 * parameterCount * tokensPerSecond / 1e9, Evaluation = lastEval,
            };
            if (state.Step % o.LogEvery == 0 || state.Step == o.Steps) progress?.Report(stepReport);

            if (eval is not null && ((o.EvalEvery > 0 && state.Step % o.EvalEvery == 0) || state.Step == o.Steps))
            {
                lastEval = Evaluate(network, eval, state.Step);
                evaluations.Add(lastEval);
                // Long runs on a small corpus can start to overfit: keep the weights of the lowest held-out loss so far.
                bool best = state.Evaluations.All(e => lastEval.Loss < e.Loss);
                state.Evaluations.Add(lastEval);
                progress?.Report(stepReport with { Event = TrainingEvent.Evaluation, Evaluation = lastEval });
                if (best)
                {
                    SaveModel(model, Path.Combine(o.OutputFolder, BestModelFolder));
                    progress?.Report(stepReport with { Event = TrainingEvent.Checkpoint, Message = $"best held-out loss so far ({lastEval.Loss:F4}): {BestModelFolder}/" });
                }
            }
            if (o.CheckpointEvery > 0 && state.Step % o.CheckpointEvery == 0 && state.Step < o.Steps)
            {
                SaveCheckpoint(checkpointFolder, model, optimizer, collator, state);
                savedAtCurrentStep = true;
                progress?.Report(stepReport with { Event = TrainingEvent.Checkpoint, Message = checkpointFolder });
            }
        }

        if (!savedAtCurrentStep) SaveCheckpoint(checkpointFolder, model, optimizer, collator, state);
        string lossPng = Path.Combine(o.OutputFolder, "loss.png");
        LossCurvePlot.Save(lossPng, state.Losses, state.Evaluations);
        string? modelFolder = null;
        if (!interrupted)
        {
            modelFolder = Path.Combine(o.OutputFolder, "model");
            SaveModel(model, modelFolder);
        }
        double achieved = 6.0 * parameterCount * tokensPerSecond / 1e9;
        progress?.Report(baseReport with
        {
            Event = TrainingEvent.Finished, Step = state.Step, Loss = lastLoss, TokensPerSecond = tokensPerSecond,
            AchievedGFlops = achieved, Evaluation = lastEval,
            Message = interrupted ? $"interrupted; checkpoint in {checkpointFolder}" : $"done; model in {modelFolder}",
        });
        return new TrainingResult
        {
            StepsCompleted = state.Step, Interrupted = interrupted, FinalLoss = lastLoss, Evaluations = evaluations,
            Losses = state.Losses.ToList(), TokensPerSecond = tokensPerSecond, AchievedGFlops = achieved, PeakGFlops = peak,
            Parameters = parameterCount, ModelFolder = modelFolder, CheckpointFolder = checkpointFolder, LossCurvePng = lossPng,
        };
    }

    /// <summary>Run sub-folder with the model of the lowest held-out loss so far (config, weights, tokenizer files).</summary>
    public const string BestModelFolder = "best-model";

    private void SaveModel(GlmModel model, string folder)
    {
        // Write next to the target and swap, so an interrupt never leaves a half-written model folder behind.
        string staging = folder + ".tmp";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        model.Save(staging);
        foreach (var file in _options.TokenizerFiles)
            File.Copy(file, Path.Combine(staging, Path.GetFileName(file)), overwrite: true);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(staging, folder);
    }

    private static void SaveCheckpoint(string folder, GlmModel model, OptimizerHelper optimizer, BlankInfillingCollator collator, TrainerState state)
    {
        state.CollatorState = collator.SaveState();
        TrainingCheckpoint.Save(folder, model, optimizer, state);
    }

    private void CheckSameBlankTokens(GlmConfig loaded, string folder)
    {
        var t = _options.SpecialTokens;
        var expected = new GlmBlankTokenIds(t.Mask, t.SentenceMask, t.GenerationMask, t.Sop, t.Eop);
        if (loaded.BlankTokens != expected)
            throw new GlmException($"{folder}: the model's blank tokens ({loaded.BlankTokens?.ToString() ?? "none in config.json"}) differ from the tokenizer's " +
                $"({expected}); expected a model trained with the same tokenizer.");
    }

    private void CheckSameShape(GlmConfig loaded, string folder, bool resuming)
    {
        var expected = GlmBlockNames.ExpectedShapes(_options.Model);
        var found = GlmBlockNames.ExpectedShapes(loaded);
        bool same = expected.Count == found.Count && expected.All(p => found.TryGetValue(p.Key, out var s) && s.SequenceEqual(p.Value));
        if (!same)
            throw new GlmException($"{folder}: the checkpoint's model (hidden {loaded.HiddenSize}, {loaded.NumLayers} layers, vocab {loaded.VocabSize}) " +
                $"differs from the configured one (hidden {_options.Model.HiddenSize}, {_options.Model.NumLayers} layers, vocab {_options.Model.VocabSize}); " +
                (resuming ? "expected the same shape to resume, or delete the checkpoint folder to start over." : "expected the same shape to continue its pretraining."));
    }

    /// <summary>
    /// Held-out loss: the first <see cref="GlmPretrainingOptions.EvalSamples"/> samples, collated by a collator with a fixed
    /// seed (the same blanks every evaluation, and the training collator's RNG is untouched).
    /// </summary>
    private EvaluationResult Evaluate(GlmBlockModel network, ITrainingSampleSource eval, int step)
    {
        var o = _options;
        var collator = new BlankInfillingCollator(o.SpecialTokens, o.Collator, (ulong)o.Seed ^ 0x5EED_5EEDUL, o.SentenceEndTokenIds);
        using var noGrad = torch.no_grad();
        double nll = 0, characters = 0, firstNll = 0;
        long scored = 0, firstTokens = 0;
        foreach (var chunk in eval.ReadFrom(0).Take(o.EvalSamples).Chunk(o.BatchSize))
        {
            var batch = collator.Collate(chunk);
            using var scope = NewDisposeScope();
            var (tokenNll, rows) = GlmTrainingStep.ScoredNll(network, batch);
            var values = tokenNll.cpu().data<float>().ToArray();
            var text = new List<int>();
            for (int i = 0; i < values.Length; i++)
            {
                long row = rows[i];
                nll += values[i];
                if (batch.BlockPositionIds[row] == 1) { firstNll += values[i]; firstTokens++; }
                if (batch.TargetIds[row] != o.SpecialTokens.Eop) text.Add(batch.TargetIds[row]);
            }
            scored += rows.Length;
            characters += o.CountCharacters is not null ? o.CountCharacters(text) : (o.CharactersPerToken ?? 0) * text.Count;
        }
        if (scored == 0) throw new GlmException("evaluation scored no tokens; expected held-out samples with at least 3 tokens.");
        double? bpc = characters > 0 ? nll / Math.Log(2) / characters : null;
        return new EvaluationResult(step, nll / scored, bpc, scored) { FirstTokenLoss = firstTokens > 0 ? firstNll / firstTokens : null };
    }
}
