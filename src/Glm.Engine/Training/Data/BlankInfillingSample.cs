namespace Glm.Engine.Training.Data;

/// <summary>Which GLM objective produced a batch (one per batch, glm-formats §1.6).</summary>
public enum BlankInfillingMode
{
    /// <summary>Short spans (Poisson λ=3) replaced by [MASK] ("bert" mode).</summary>
    Span,
    /// <summary>Whole sentences replaced by [sMASK] ("gap_sentence" mode).</summary>
    Sentence,
    /// <summary>A long suffix replaced by [gMASK] ("gpt" mode).</summary>
    Document,
}

/// <summary>
/// One GLM training sample: Part A (text with blanks) followed by Part B (the blanks' contents).
/// All arrays have the same length; targets are aligned with inputs (no shift): the loss at index i compares the
/// logits at i with <see cref="TargetIds"/>[i].
/// </summary>
public sealed class BlankInfillingSample
{
    /// <summary>Part A ++ Part B token ids.</summary>
    public required int[] InputIds { get; init; }
    /// <summary>Targets aligned with <see cref="InputIds"/> (Part A copies its inputs and is never scored).</summary>
    public required int[] TargetIds { get; init; }
    /// <summary>First position row: text positions in Part A; the owning mask's position in Part B.</summary>
    public required int[] PositionIds { get; init; }
    /// <summary>Second position row: 0 in Part A, 1..len+1 inside each Part-B span.</summary>
    public required int[] BlockPositionIds { get; init; }
    /// <summary>1 where the loss is taken (Part B), 0 elsewhere.</summary>
    public required float[] LossMask { get; init; }
    /// <summary>Length of Part A; Part-A rows attend to columns [0, Sep), Part-B rows additionally causally.</summary>
    public required int Sep { get; init; }

    /// <summary>Sequence length.</summary>
    public int Length => InputIds.Length;

    /// <summary>
    /// The [length, length] 0/1 attention matrix for Part-A length <paramref name="sep"/> (row = query, column = key):
    /// M[i, j] = 1 when j &lt; sep (everyone sees Part A) or j ≤ i (causal), as the GLM model builds it from "sep".
    /// </summary>
    public static float[,] BuildAttentionMask(int sep, int length)
    {
        if (sep < 0 || sep > length) throw new ArgumentOutOfRangeException(nameof(sep), sep, $"must be in [0, {length}]");
        var mask = new float[length, length];
        for (int i = 0; i < length; i++)
            for (int j = 0; j < length; j++)
                mask[i, j] = j < sep || j <= i ? 1f : 0f;
        return mask;
    }
}

/// <summary>
/// Samples right-padded to a common length: input/target/position ids 0, loss mask 0 (as THUDM/GLM pad_batch).
/// Arrays are row-major [BatchSize, Length], ready for tensor creation.
/// </summary>
public sealed class BlankInfillingBatch
{
    /// <summary>Objective that produced the batch.</summary>
    public required BlankInfillingMode Mode { get; init; }
    /// <summary>Number of samples.</summary>
    public required int BatchSize { get; init; }
    /// <summary>Padded length.</summary>
    public required int Length { get; init; }
    /// <summary>[BatchSize, Length] input ids.</summary>
    public required int[] InputIds { get; init; }
    /// <summary>[BatchSize, Length] target ids.</summary>
    public required int[] TargetIds { get; init; }
    /// <summary>[BatchSize, Length] position ids.</summary>
    public required int[] PositionIds { get; init; }
    /// <summary>[BatchSize, Length] block position ids.</summary>
    public required int[] BlockPositionIds { get; init; }
    /// <summary>[BatchSize, Length] loss mask.</summary>
    public required float[] LossMask { get; init; }
    /// <summary>Part-A length per sample.</summary>
    public required int[] Seps { get; init; }

    /// <summary>Pads <paramref name="samples"/> to the longest one (or to <paramref name="padToLength"/> if larger).</summary>
    public static BlankInfillingBatch FromSamples(IReadOnlyList<BlankInfillingSample> samples, BlankInfillingMode mode, int padToLength = 0)
    {
        if (samples.Count == 0) throw new ArgumentException("a batch needs at least one sample", nameof(samples));
        int length = Math.Max(padToLength, samples.Max(s => s.Length));
        int n = samples.Count;
        var batch = new BlankInfillingBatch
        {
            Mode = mode, BatchSize = n, Length = length,
            InputIds = new int[n * length], TargetIds = new int[n * length], PositionIds = new int[n * length],
            BlockPositionIds = new int[n * length], LossMask = new float[n * length], Seps = new int[n],
        };
        for (int b = 0; b < n; b++)
        {
            var s = samples[b];
            int o = b * length;
            s.InputIds.CopyTo(batch.InputIds, o);
            s.TargetIds.CopyTo(batch.TargetIds, o);
            s.PositionIds.CopyTo(batch.PositionIds, o);
            s.BlockPositionIds.CopyTo(batch.BlockPositionIds, o);
            s.LossMask.CopyTo(batch.LossMask, o);
            batch.Seps[b] = s.Sep;
        }
        return batch;
    }
}
