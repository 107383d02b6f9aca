using Glm.Engine.Modeling;
using Glm.Engine.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.FineTuning;

/// <summary>
/// Scores cloze labels with an original-GLM model: for each sample and label, Part A is read bidirectionally and the
/// verbalizer tokens v₁…vₙ are scored in Part B of the blank (input sop v₁ … vₙ₋₁, position = the mask's index, block
/// positions 1…n), giving Σ log p(vⱼ | Part A, v₍&lt;j₎). All sample×label rows run as one right-padded batch.
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
        int labels = verbalizers.Count, rows = samples.Count * labels;
        int length = samples.Max(s => s.PartA.Length) + verbalizers.Max(v => v.Length);
        if (length > model.MaxContext)
            throw new GlmException($"a cloze batch needs {length} positions; the model has {model.MaxContext}. Use shorter texts.");
        var ids = new long[rows * length];
        var positions = new long[rows * 2 * length];
        var seps = new int[rows];
        var rowIdx = new List<long>();
        var posIdx = new List<long>();
        var tokIdx = new List<long>();
        for (int s = 0; s < samples.Count; s++)
        {
            var a = samples[s].PartA;
            int mask = Array.FindIndex(a, t => tokens.MaskIds.Contains(t));
            if (mask < 0) throw new GlmException($"cloze sample {s} has no [MASK]/[sMASK]/[gMASK] in Part A; expected one blank.");
            for (int l = 0; l < labels; l++)
            {
                int r = s * labels + l;
                var v = verbalizers[l];
                long rowBase = (long)r * length, posBase = (long)r * 2 * length;
                for (int i = 0; i < a.Length; i++) { ids[rowBase + i] = a[i]; positions[posBase + i] = i; }
                seps[r] = a.Length;
                for (int j = 0; j < v.Length; j++)
                {
                    int at = a.Length + j;
                    ids[rowBase + at] = j == 0 ? tokens.Sop : v[j - 1];
                    positions[posBase + at] = mask;
                    positions[posBase + length + at] = j + 1;
                    rowIdx.Add(r); posIdx.Add(at); tokIdx.Add(v[j]);
                }
            }
        }
        var device = model.Device;
        var network = model.Network;
        var logits = network.Forward(tensor(ids, new long[] { rows, length }, device: device), tensor(positions, new long[] { rows, 2, length }, device: device),
            null, GlmTrainingStep.SepMask(seps, length, device), lastOnly: false);
        var r_ = tensor(rowIdx.ToArray(), device: device);
        var picked = logits.index(new TensorIndex[] { TensorIndex.Tensor(r_), TensorIndex.Tensor(tensor(posIdx.ToArray(), device: device)) })
            .to(ScalarType.Float32).log_softmax(-1).gather(1, tensor(tokIdx.ToArray(), device: device).view(-1, 1)).view(-1);
        return zeros(rows, device: device).index_add(0, r_, picked, 1.0).view(samples.Count, labels);
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
