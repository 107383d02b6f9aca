namespace Glm.Engine.Training;

/// <summary>What a progress report is about.</summary>
public enum TrainingEvent
{
    /// <summary>The GEMM peak was measured, before the first step.</summary>
    Started,
    /// <summary>An optimizer step finished.</summary>
    Step,
    /// <summary>A held-out evaluation finished (<see cref="TrainingProgress.Evaluation"/> is set).</summary>
    Evaluation,
    /// <summary>A checkpoint was written.</summary>
    Checkpoint,
    /// <summary>Training ended (completed or interrupted).</summary>
    Finished,
}

/// <summary>Held-out evaluation after some step.</summary>
/// <param name="Step">Optimizer steps done when it ran.</param>
/// <param name="Loss">Mean NLL (nats) per scored token.</param>
/// <param name="BitsPerCharacter">Total NLL in bits / characters of the scored text; null without a character count.</param>
/// <param name="ScoredTokens">Tokens scored (loss mask 1).</param>
public sealed record EvaluationResult(int Step, double Loss, double? BitsPerCharacter, long ScoredTokens)
{
    /// <summary>
    /// Mean NLL (nats) of the first token of each Part-B segment (block position 1): the only target that can come from Part A
    /// alone, so it shows whether the model reads the blank's context (pretraining only; null elsewhere).
    /// </summary>
    public double? FirstTokenLoss { get; init; }
}

/// <summary>A progress report for the host to render.</summary>
public sealed record TrainingProgress
{
    /// <summary>What happened.</summary>
    public required TrainingEvent Event { get; init; }
    /// <summary>Optimizer steps done.</summary>
    public required int Step { get; init; }
    /// <summary>Optimizer steps planned.</summary>
    public required int TotalSteps { get; init; }
    /// <summary>Training loss of the last step (mean NLL per scored token), NaN before the first.</summary>
    public double Loss { get; init; } = double.NaN;
    /// <summary>Learning rate of the last step.</summary>
    public double LearningRate { get; init; }
    /// <summary>Gradient norm before clipping.</summary>
    public double GradientNorm { get; init; }
    /// <summary>
    /// Sample tokens read from the source per second (before collation adds sop/mask tokens and padding), averaged since
    /// the run (or resume) started; the figure the 6·N·tokens/s FLOP estimate uses.
    /// </summary>
    public double TokensPerSecond { get; init; }
    /// <summary>Achieved training GFLOP/s = 6 · parameters · tokens/s / 1e9.</summary>
    public double AchievedGFlops { get; init; }
    /// <summary>Measured GEMM peak of this machine in the training dtype, GFLOP/s.</summary>
    public double PeakGFlops { get; init; }
    /// <summary>Latest evaluation, on <see cref="TrainingEvent.Evaluation"/> reports (and carried afterwards).</summary>
    public EvaluationResult? Evaluation { get; init; }
    /// <summary>Free text (checkpoint path, reason for stopping).</summary>
    public string? Message { get; init; }
}

/// <summary>Outcome of <see cref="GlmPretrainer.Run"/>.</summary>
public sealed record TrainingResult
{
    /// <summary>Optimizer steps done in total (including steps before a resume).</summary>
    public required int StepsCompleted { get; init; }
    /// <summary>True when cancellation stopped the run before the last step.</summary>
    public required bool Interrupted { get; init; }
    /// <summary>Loss of the last step.</summary>
    public required double FinalLoss { get; init; }
    /// <summary>Every evaluation of this run, in order.</summary>
    public required IReadOnlyList<EvaluationResult> Evaluations { get; init; }
    /// <summary>Training losses by step (all steps, including those before a resume).</summary>
    public required IReadOnlyList<double> Losses { get; init; }
    /// <summary>Average input tokens per second of this run.</summary>
    public required double TokensPerSecond { get; init; }
    /// <summary>6 · parameters · tokens/s in GFLOP/s.</summary>
    public required double AchievedGFlops { get; init; }
    /// <summary>Measured 512×H · H×H GEMM rate in the training dtype.</summary>
    public required double PeakGFlops { get; init; }
    /// <summary>Parameters of the model.</summary>
    public required long Parameters { get; init; }
    /// <summary>The GLM folder of the final model (null when interrupted).</summary>
    public string? ModelFolder { get; init; }
    /// <summary>The resumable checkpoint folder.</summary>
    public required string CheckpointFolder { get; init; }
    /// <summary>The loss-curve PNG.</summary>
    public string? LossCurvePng { get; init; }

    /// <summary>Achieved / peak (model FLOP utilisation against the measured GEMM peak).</summary>
    public double PeakRatio => PeakGFlops > 0 ? AchievedGFlops / PeakGFlops : double.NaN;
}
