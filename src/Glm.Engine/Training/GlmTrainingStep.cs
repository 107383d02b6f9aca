using Glm.Engine.Modeling;
using Glm.Engine.Training.Data;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Training;

/// <summary>Forward pass and masked loss of one collated GLM batch (glm-formats §1.4 step 6: labels are not shifted).</summary>
internal static class GlmTrainingStep
{
    /// <summary>
    /// Summed NLL (nats) over tokens whose loss mask is 1, and their count. The mask is built from each sample's Part-A
    /// length: rows see all of Part A and causally Part B; right padding is never visible to real rows.
    /// </summary>
    public static (Tensor NllSum, long ScoredTokens) MaskedNll(GlmBlockModel network, BlankInfillingBatch batch)
    {
        var (nll, rows) = ScoredNll(network, batch);
        return (nll.sum(), rows.Length);
    }

    /// <summary>
    /// NLL (nats) of every token whose loss mask is 1, in flattened batch order, with those tokens' indices into the
    /// [BatchSize × Length] arrays (empty when nothing is scored).
    /// </summary>
    public static (Tensor Nll, long[] ScoredRows) ScoredNll(GlmBlockModel network, BlankInfillingBatch batch)
    {
        long b = batch.BatchSize, l = batch.Length;
        var device = network.Device;
        int maxPosition = Math.Max(batch.PositionIds.Max(), batch.BlockPositionIds.Max());
        if (maxPosition > network.MaxPositions)
            throw new GlmException($"a training batch needs position id {maxPosition}; the model's max_sequence_length is {network.MaxPositions}. Use shorter samples or a larger max_sequence_length.");
        var ids = tensor(batch.InputIds.Select(x => (long)x).ToArray(), new[] { b, l }, device: device);
        var targets = tensor(batch.TargetIds.Select(x => (long)x).ToArray(), new[] { b * l }, device: device);
        var positions = stack(new[]
        {
            tensor(batch.PositionIds.Select(x => (long)x).ToArray(), new[] { b, l }),
            tensor(batch.BlockPositionIds.Select(x => (long)x).ToArray(), new[] { b, l }),
        }, 1).to(device);
        // Only rows with loss-mask 1 reach the vocabulary head; the collator's masks are 0/1 (Part B vs the rest).
        var scoredRows = Enumerable.Range(0, batch.LossMask.Length).Where(i => batch.LossMask[i] > 0).Select(i => (long)i).ToArray();
        if (scoredRows.Length == 0) return (zeros(0, device: device), scoredRows);
        var rows = tensor(scoredRows, device: device);
        var logits = network.ForwardRows(ids, positions, SepMask(batch.Seps, l, device), rows);
        return (F.cross_entropy(logits.to(ScalarType.Float32), targets.index_select(0, rows), reduction: nn.Reduction.None), scoredRows);
    }

    /// <summary>Bool [b, 1, l, l]: key j visible to query i when j &lt; sep_b or j ≤ i.</summary>
    public static Tensor SepMask(int[] seps, long length, Device device)
    {
        var causal = ones(new[] { length, length }, dtype: ScalarType.Bool, device: device).tril().view(1, 1, length, length);
        var columns = arange(length, device: device).view(1, 1, 1, length);
        var sep = tensor(seps.Select(x => (long)x).ToArray(), device: device).view(-1, 1, 1, 1);
        return columns.lt(sep).logical_or(causal);
    }
}
