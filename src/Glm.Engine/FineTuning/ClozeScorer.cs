using Glm.Engine.Modeling;
using Glm.Engine.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.FineTuning;

/// <summary>
/// Scores cloze labels with an original-GLM model: for each sample and label, Part A is read bidirectionally and the
/// verbalizer tokens v₁…vₙ are scored in Part B of the blank (input sop v₁ … vₙ₋₁, position = the mask's index, block
/// positions 1…n), giving Σ log p(vⱼ | Part A, v₍&lt;j₎). One row per sample holds Part A once and every label's Part B
/// after it; the attention mask lets each Part-B segment see Part A and itself (causally) but no other label, so every score
/// is the one a separate Part A + label sequence would give, at a fraction of the work (Part A is not repeated per label,
/// and the vocabulary head runs only on the scored positions).
/// </summary>
public static class ClozeScorer
{
    /// <summary>
    /// Summed verbalizer log-probabilities [samples, labels] (fp32; differentiable when grad mode is on). The caller owns the
    /// returned tensor; use it inside a dispose scope.
    /// </summary>
    public static Tensor LabelLogProbs(GlmModel model, IReadOnlyList<ClozeSample> samples, IReadOnlyList<int[]> verbalizers)
    {
        if (model.Config.Layout != GlmLayout.OriginalGlm)
            throw new GlmException($"cloze scoring needs an original-GLM model (blank infilling); {model.Source} has layout {model.Config.Layout}.");
        var tokens = model.BlankTokens ?? throw new GlmException($"{model.Source}: no GLM blank tokens (mask, sop, eop); cloze scoring needs them.");
        int labels = verbalizers.Count, rows = samples.Count, partB = verbalizers.Sum(v => v.Length);
        int longestA = samples.Max(s => s.PartA.Length), positionsNeeded = longestA + verbalizers.Max(v => v.Length);
        if (positionsNeeded > model.MaxContext)
            throw new GlmException($"a cloze sample needs {positionsNeeded} positions; the model has {model.MaxContext}. Use shorter texts.");
        int length = longestA + partB;
        var ids = new long[rows * length];
        var positions = new long[rows * 2 * length];
        var visible = new bool[rows * length * length];
        var scoredRows = new List<long>();
        var targets = new List<long>();
        var labelOfScore = new List<long>();
        var segment = new int[length];
        for (int s = 0; s < rows; s++)
        {
            var a = samples[s].PartA;
            int mask = Array.FindIndex(a, t => tokens.MaskIds.Contains(t));
            if (mask < 0) throw new GlmException($"cloze sample {s} has no [MASK]/[sMASK]/[gMASK] in Part A; expected one blank.");
            long rowBase = (long)s * length, posBase = (long)s * 2 * length;
            Array.Fill(segment, -1); // padding
            for (int i = 0; i < a.Length; i++) { ids[rowBase + i] = a[i]; positions[posBase + i] = i; segment[i] = 0; }
            int at = a.Length;
            for (int l = 0; l < labels; l++)
            {
                var v = verbalizers[l];
                for (int j = 0; j < v.Length; j++, at++)
                {
                    ids[rowBase + at] = j == 0 ? tokens.Sop : v[j - 1];
                    positions[posBase + at] = mask;
                    positions[posBase + length + at] = j + 1;
                    segment[at] = l + 1;
                    scoredRows.Add(rowBase + at); targets.Add(v[j]); labelOfScore.Add((long)s * labels + l);
                }
            }
            // Part A sees Part A; a Part-B token sees Part A and the earlier tokens of its own label.
            long maskBase = (long)s * length * length;
            for (int i = 0; i < length; i++)
                for (int j = 0; j < length; j++)
                    visible[maskBase + (long)i * length + j] = j < a.Length || (j <= i && segment[i] > 0 && segment[j] == segment[i]);
        }
        var device = model.Device;
        var input = tensor(ids, new long[] { rows, length }, device: device);
        var positionIds = tensor(positions, new long[] { rows, 2, length }, device: device);
        var attention = tensor(visible, new long[] { rows, 1, length, length }, device: device);
        var scored = tensor(scoredRows.ToArray(), device: device);
        // The original-GLM layout (checked above) is always a GlmBlockModel.
        var logits = ((GlmBlockModel)model.Network).ForwardRows(input, positionIds, attention, scored);
        var picked = logits.to(ScalarType.Float32).log_softmax(-1).gather(1, tensor(targets.ToArray(), device: device).view(-1, 1)).view(-1);
        return zeros(rows * labels, device: device).index_add(0, tensor(labelOfScore.ToArray(), device: device), picked, 1.0).view(rows, labels);
    }

    /// <summary>Predicted label index of each sample (argmax of <see cref="LabelLogProbs"/>), without gradients.</summary>
    public static int[] Predict(GlmModel model, IReadOnlyList<ClozeSample> samples, IReadOnlyList<int[]> verbalizers, int batchSize = 8)
    {
        var result = new List<int>(samples.Count);
        using var noGrad = torch.no_grad();
        foreach (var chunk in samples.Chunk(Math.Max(1, batchSize)))
        {
            using var scope = NewDisposeScope();
            var scores = LabelLogProbs(model, chunk, verbalizers);
            result.AddRange(scores.argmax(1).data<long>().Select(x => (int)x));
        }
        return result.ToArray();
    }
}
