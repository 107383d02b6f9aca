namespace Glm.Engine.FineTuning;

/// <summary>Which parameters fine-tuning updates.</summary>
public enum FineTuneMethod
{
    /// <summary>LoRA adapters only; the base model stays frozen.</summary>
    Lora,
    /// <summary>Every parameter of the model (load it in fp32 for stable AdamW updates).</summary>
    Full,
}

/// <summary>Options of <see cref="FineTuner"/>.</summary>
public sealed record FineTunerOptions
{
    /// <summary>Folder for checkpoint/, best/, adapter/ or model/, and loss.png.</summary>
    public required string OutputFolder { get; init; }
    /// <summary>LoRA or full fine-tuning.</summary>
    public FineTuneMethod Method { get; init; } = FineTuneMethod.Lora;
    /// <summary>Adapter hyper-parameters (LoRA only).</summary>
    public LoraConfig Lora { get; init; } = new();
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 100;
    /// <summary>Examples per micro-batch.</summary>
    public int BatchSize { get; init; } = 4;
    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>Learning rate at the last step (cosine decay target).</summary>
    public double MinLearningRate { get; init; }
    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>AdamW weight decay (full: 2-D weights only).</summary>
    public double WeightDecay { get; init; }
    /// <summary>AdamW β₁.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β₂.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>AdamW ε.</summary>
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Gradient-norm clip; 0 = off.</summary>
    public double GradientClip { get; init; } = 1.0;
    /// <summary>Evaluate every N steps (and at the end); 0 = only at the end.</summary>
    public int EvalEvery { get; init; }
    /// <summary>Stop after this many evaluations without improvement of the primary metric; 0 = never.</summary>
    public int EarlyStoppingPatience { get; init; }
    /// <summary>Write a resumable checkpoint every N steps (always at the end); 0 = only at the end.</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>Continue from <c>&lt;out&gt;/checkpoint</c> when present.</summary>
    public bool Resume { get; init; }
    /// <summary>Report a step every N steps.</summary>
    public int LogEvery { get; init; } = 1;
    /// <summary>Seed of data order, adapter init and dropout.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Checks every field; throws <see cref="GlmException"/> naming the field and value.</summary>
    public void Validate()
    {
        void Check(bool ok, string field, object value, string expected)
        {
            if (!ok) throw new GlmException($"fine-tuning option {field} = {value}; expected {expected}.");
        }
        Check(!string.IsNullOrWhiteSpace(OutputFolder), nameof(OutputFolder), OutputFolder, "a folder");
        Check(Steps >= 1, nameof(Steps), Steps, "≥ 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "≥ 1");
        Check(GradientAccumulation >= 1, nameof(GradientAccumulation), GradientAccumulation, "≥ 1");
        Check(LearningRate > 0, nameof(LearningRate), LearningRate, "> 0");
        Check(MinLearningRate >= 0 && MinLearningRate <= LearningRate, nameof(MinLearningRate), MinLearningRate, "0 … LearningRate");
        Check(WarmupSteps >= 0 && WarmupSteps < Steps, nameof(WarmupSteps), WarmupSteps, "0 … Steps − 1");
        Check(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "≥ 0");
        Check(GradientClip >= 0, nameof(GradientClip), GradientClip, "≥ 0");
        Check(EvalEvery >= 0, nameof(EvalEvery), EvalEvery, "≥ 0");
        Check(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "≥ 0");
        Check(CheckpointEvery >= 0, nameof(CheckpointEvery), CheckpointEvery, "≥ 0");
        Check(LogEvery >= 1, nameof(LogEvery), LogEvery, "≥ 1");
        if (Method == FineTuneMethod.Lora) Lora.Validate();
    }
}

/// <summary>Outcome of <see cref="FineTuner.Run"/>.</summary>
public sealed record FineTuneResult
{
    /// <summary>Optimizer steps done in total (including those before a resume).</summary>
    public required int StepsCompleted { get; init; }
    /// <summary>True when cancellation stopped the run.</summary>
    public required bool Interrupted { get; init; }
    /// <summary>True when early stopping ended the run.</summary>
    public required bool StoppedEarly { get; init; }
    /// <summary>Training losses by step.</summary>
    public required IReadOnlyList<double> Losses { get; init; }
    /// <summary>Every validation result, in order.</summary>
    public required IReadOnlyList<FineTuneEvaluation> Evaluations { get; init; }
    /// <summary>Best primary metric seen (NaN without validation).</summary>
    public double BestMetric { get; init; } = double.NaN;
    /// <summary>Step of <see cref="BestMetric"/>.</summary>
    public int BestStep { get; init; }
    /// <summary>Trainable parameters.</summary>
    public required long TrainableParameters { get; init; }
    /// <summary>Final adapter folder (LoRA) or model folder (full); null when interrupted.</summary>
    public string? OutputFolder { get; init; }
    /// <summary>Adapter/model at the best validation metric (null without validation).</summary>
    public string? BestFolder { get; init; }
    /// <summary>The resumable checkpoint folder.</summary>
    public required string CheckpointFolder { get; init; }
    /// <summary>The loss-curve PNG.</summary>
    public required string LossCurvePng { get; init; }
}
