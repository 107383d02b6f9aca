using Glm.Engine.Modeling;
using Glm.Engine.Training.Data;

namespace Glm.Engine.Training;

/// <summary>Settings of a from-scratch GLM pretraining run (<see cref="GlmPretrainer"/>).</summary>
public sealed record GlmPretrainingOptions
{
    /// <summary>Output folder: <c>checkpoint/</c>, <c>model/</c>, <c>best-model/</c> (lowest held-out loss), <c>loss.png</c>.</summary>
    public required string OutputFolder { get; init; }
    /// <summary>Model shape (original-GLM layout). Use <see cref="GlmPretrainer.OwnModelConfig"/> for our defaults.</summary>
    public required GlmConfig Model { get; init; }
    /// <summary>Control-token ids for the blank-infilling collator.</summary>
    public required GlmSpecialTokens SpecialTokens { get; init; }
    /// <summary>Collator settings (mode probabilities, ratios); null = GLM defaults.</summary>
    public BlankInfillingOptions? Collator { get; init; }
    /// <summary>Token ids that end a sentence (needed when sentence mode can be drawn).</summary>
    public IReadOnlySet<int>? SentenceEndTokenIds { get; init; }

    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Samples per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches accumulated per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Final learning rate of the cosine decay.</summary>
    public double MinLearningRate { get; init; } = 1e-4;
    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>AdamW weight decay (matrices only; biases and LayerNorm are not decayed, as in Megatron).</summary>
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>Steps of sequence-length warm-up (<see cref="Data.SequenceLengthWarmup"/>); 0 = full-length samples from the start.</summary>
    public int SequenceLengthWarmupSteps { get; init; }
    /// <summary>Chunk length ([CLS] included) at the first step of the sequence-length warm-up.</summary>
    public int SequenceLengthWarmupStart { get; init; } = 32;
    /// <summary>
    /// Continued pretraining: a fresh run starts from this model folder's weights (an original-GLM model of the same shape as
    /// <see cref="Model"/>) instead of a random start. Ignored when a checkpoint is resumed.
    /// </summary>
    public string? StartFrom { get; init; }
    /// <summary>Layers (from the first, at most all of them) grafted by <see cref="LocalAttentionGraft"/> when <see cref="StartFrom"/> is combined with <see cref="GlmInitialization.LocalAttention"/>.</summary>
    public int GraftLayers { get; init; } = LocalAttentionGraft.DefaultLayers;
    /// <summary>With the graft: the first layer's heads 0/1 become look-left/look-right heads that copy the neighbour's word (<see cref="LocalAttentionGraft"/>).</summary>
    public bool GraftNeighbourHeads { get; init; }
    /// <summary>
    /// How a fresh run's weights start; ignored on resume (the checkpoint's weights are used). With <see cref="StartFrom"/>,
    /// <see cref="GlmInitialization.LocalAttention"/> means <see cref="LocalAttentionGraft"/> on the loaded weights.
    /// </summary>
    public GlmInitialization Initialization { get; init; } = GlmInitialization.Megatron;
    /// <summary>α of <see cref="GlmInitialization.LocalAttention"/>: query/key projections start near α·I.</summary>
    public double QueryKeyGain { get; init; } = LocalAttentionInitialization.DefaultQueryKeyGain;
    /// <summary>AdamW β1.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β2.</summary>
    public double Beta2 { get; init; } = 0.95;
    /// <summary>AdamW ε.</summary>
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Gradient clipping max norm (≤ 0 = off).</summary>
    public double GradientClip { get; init; } = 1.0;
    /// <summary>Seed of weights, collator and torch RNG.</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Compute dtype: fp32 or bf16 (bf16 computes in bf16 with fp32 master weights and optimizer state).</summary>
    public string DType { get; init; } = "fp32";
    /// <summary>Device: cpu, cuda, auto.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>CPU threads for libtorch.</summary>
    public int Threads { get; init; } = 2;
    /// <summary>Use fused scaled-dot-product attention (faster; equal to the reference path up to rounding).</summary>
    public bool FusedAttention { get; init; } = true;

    /// <summary>Evaluate every N steps (0 = only at the end).</summary>
    public int EvalEvery { get; init; } = 100;
    /// <summary>Held-out samples per evaluation.</summary>
    public int EvalSamples { get; init; } = 64;
    /// <summary>Characters of the scored target ids (Part-B tokens, eop excluded) for bits per character.</summary>
    public Func<IReadOnlyList<int>, long>? CountCharacters { get; init; }
    /// <summary>Alternative to <see cref="CountCharacters"/>: a measured characters-per-token figure of the tokenizer.</summary>
    public double? CharactersPerToken { get; init; }

    /// <summary>Write a checkpoint every N steps (0 = only at the end or on interrupt).</summary>
    public int CheckpointEvery { get; init; } = 200;
    /// <summary>Continue from <c>checkpoint/</c> when it exists.</summary>
    public bool Resume { get; init; } = true;
    /// <summary>Report progress every N steps.</summary>
    public int LogEvery { get; init; } = 1;
    /// <summary>Seconds to time the GEMM peak (0 = skip).</summary>
    public double PeakMeasureSeconds { get; init; } = 1.0;
    /// <summary>Files (tokenizer.tiktoken, tokenizer_config.json, ...) copied into the final model folder.</summary>
    public IReadOnlyList<string> TokenizerFiles { get; init; } = Array.Empty<string>();

    /// <summary>Throws a <see cref="GlmException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        void Check(bool ok, string field, object value, string expected)
        {
            if (!ok) throw new GlmException($"training option {field} = {value}; expected {expected}.");
        }
        Check(Model.Layout == GlmLayout.OriginalGlm, nameof(Model), Model.Layout, "an original-GLM config");
        Check(Steps > 0, nameof(Steps), Steps, "> 0");
        Check(BatchSize > 0, nameof(BatchSize), BatchSize, "> 0");
        Check(GradientAccumulation > 0, nameof(GradientAccumulation), GradientAccumulation, "> 0");
        Check(LearningRate > 0, nameof(LearningRate), LearningRate, "> 0");
        Check(MinLearningRate >= 0 && MinLearningRate <= LearningRate, nameof(MinLearningRate), MinLearningRate, "in [0, LearningRate]");
        Check(SequenceLengthWarmupSteps >= 0, nameof(SequenceLengthWarmupSteps), SequenceLengthWarmupSteps, ">= 0 (0 = off)");
        Check(SequenceLengthWarmupStart >= 3, nameof(SequenceLengthWarmupStart), SequenceLengthWarmupStart, ">= 3 ([CLS] and two tokens)");
        Check(QueryKeyGain >= 0 && double.IsFinite(QueryKeyGain), nameof(QueryKeyGain), QueryKeyGain, "a finite number >= 0");
        Check(GraftLayers >= 1, nameof(GraftLayers), GraftLayers, ">= 1");
        Check(StartFrom is null || Directory.Exists(StartFrom), nameof(StartFrom), StartFrom ?? "", "an existing model folder");
        Check(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, ">= 0");
        Check(Threads > 0, nameof(Threads), Threads, "> 0");
        Check(EvalEvery >= 0 && CheckpointEvery >= 0 && LogEvery > 0, "EvalEvery/CheckpointEvery/LogEvery", $"{EvalEvery}/{CheckpointEvery}/{LogEvery}", "non-negative (LogEvery > 0)");
        Check(DType is "fp32" or "float32" or "bf16" or "bfloat16", nameof(DType), DType, "fp32 or bf16");
        Check(CharactersPerToken is null or > 0, nameof(CharactersPerToken), CharactersPerToken ?? 0, "> 0");
    }
}
