using Glm.Engine.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.FineTuning;

/// <summary>A validation result: mean loss plus task metrics (e.g. accuracy, macro_f1).</summary>
/// <param name="Step">Optimizer steps done when it ran.</param>
/// <param name="Loss">Mean validation loss.</param>
/// <param name="Metrics">Named metrics; the task's primary metric is among them.</param>
public sealed record FineTuneEvaluation(int Step, double Loss, IReadOnlyDictionary<string, double> Metrics);

/// <summary>What <see cref="FineTuner"/> trains: a training set addressed by index, a loss, and a validation metric.</summary>
public abstract class FineTuningTask
{
    /// <summary>Training examples.</summary>
    public abstract int TrainCount { get; }
    /// <summary>True when validation data was given.</summary>
    public abstract bool HasEvaluation { get; }
    /// <summary>Name of the metric early stopping watches.</summary>
    public abstract string PrimaryMetric { get; }
    /// <summary>Whether a larger primary metric is better.</summary>
    public abstract bool HigherIsBetter { get; }
    /// <summary>Mean training loss (scalar, differentiable) of the training examples at <paramref name="indices"/>.</summary>
    public abstract Tensor Loss(GlmModel model, IReadOnlyList<int> indices);
    /// <summary>Validation loss and metrics (called under no_grad).</summary>
    public abstract FineTuneEvaluation Evaluate(GlmModel model, int step, int batchSize);
}

/// <summary>
/// Chat SFT: causal LM loss on the target tokens of <see cref="ChatSftSample"/>s (assistant replies and their stop token).
/// Batches are right-padded; padding keys are masked out and never scored. The validation metric is the loss.
/// </summary>
public sealed class ChatSftTask(IReadOnlyList<ChatSftSample> train, IReadOnlyList<ChatSftSample>? eval, int padId = 0) : FineTuningTask
{
    /// <inheritdoc/>
    public override int TrainCount => train.Count;
    /// <inheritdoc/>
    public override bool HasEvaluation => eval is { Count: > 0 };
    /// <inheritdoc/>
    public override string PrimaryMetric => "loss";
    /// <inheritdoc/>
    public override bool HigherIsBetter => false;

    /// <inheritdoc/>
    public override Tensor Loss(GlmModel model, IReadOnlyList<int> indices)
    {
        var (sum, count) = SummedNll(model, indices.Select(i => train[i]).ToList());
        return sum / Math.Max(1, count);
    }

    /// <summary>Summed NLL of the target tokens of <paramref name="batch"/> and how many there are.</summary>
    public (Tensor Sum, long Count) SummedNll(GlmModel model, IReadOnlyList<ChatSftSample> batch)
    {
        if (batch.Any(s => s.PartALength >= 0)) return GlmBlankChatSft.SummedNll(model, batch, padId); // base GLM blank samples
        int b = batch.Count, l = batch.Max(s => s.Ids.Length);
        if (l > model.MaxContext) throw new GlmException($"a chat sample has {l} tokens; the model supports {model.MaxContext}. Drop or shorten long conversations.");
        var ids = new long[b * l];
        var valid = new bool[b * l];
        var targets = new long[b * (l - 1)];
        var weights = new float[b * (l - 1)];
        long count = 0;
        for (int r = 0; r < b; r++)
        {
            var s = batch[r];
            for (int i = 0; i < l; i++)
            {
                ids[r * l + i] = i < s.Ids.Length ? s.Ids[i] : padId;
                valid[r * l + i] = i < s.Ids.Length;
                if (i == 0) continue;
                targets[r * (l - 1) + i - 1] = ids[r * l + i];
                if (i < s.Ids.Length && s.Targets[i]) { weights[r * (l - 1) + i - 1] = 1; count++; }
            }
        }
        var device = model.Device;
        var idT = tensor(ids, new long[] { b, l }, device: device);
        var positions = arange(l, dtype: ScalarType.Int64, device: device).view(1, l).expand(b, l).contiguous();
        var keys = tensor(valid, new long[] { b, 1, 1, l }, device: device);
        var mask = ones(new long[] { l, l }, dtype: ScalarType.Bool, device: device).tril().view(1, 1, l, l).logical_and(keys);
        // Guard: every query row may see key 0, so no row is fully masked (padded rows already see their sample; loss weight 0).
        mask = mask.logical_or(arange(l, device: device).eq(0).view(1, 1, 1, l));
        var logits = model.Network.Forward(idT, positions, null, mask, lastOnly: false);
        var nll = F.cross_entropy(logits.narrow(1, 0, l - 1).to(ScalarType.Float32).reshape(b * (l - 1), -1),
            tensor(targets, device: device), reduction: nn.Reduction.None);
        return ((nll * tensor(weights, device: device)).sum(), count);
    }

    /// <inheritdoc/>
    public override FineTuneEvaluation Evaluate(GlmModel model, int step, int batchSize)
    {
        if (eval is null || eval.Count == 0) throw new GlmException("no validation data; pass eval samples to evaluate.");
        double sum = 0;
        long count = 0;
        foreach (var chunk in eval.Chunk(Math.Max(1, batchSize)))
        {
            using var scope = NewDisposeScope();
            var (s, c) = SummedNll(model, chunk);
            sum += s.item<float>();
            count += c;
        }
        double loss = sum / Math.Max(1, count);
        return new FineTuneEvaluation(step, loss, new Dictionary<string, double> { ["loss"] = loss, ["perplexity"] = Math.Exp(loss) });
    }
}

/// <summary>
/// Cloze/PET classification (GLM paper): each label is scored by the summed log-probability of its verbalizer tokens in
/// the blank (<see cref="ClozeScorer"/>); training minimises cross-entropy over the labels; validation reports accuracy
/// (primary metric) and macro-F1.
/// </summary>
public sealed class ClozeClassificationTask(IReadOnlyList<ClozeSample> train, IReadOnlyList<ClozeSample>? eval, IReadOnlyList<int[]> verbalizers) : FineTuningTask
{
    /// <inheritdoc/>
    public override int TrainCount => train.Count;
    /// <inheritdoc/>
    public override bool HasEvaluation => eval is { Count: > 0 };
    /// <inheritdoc/>
    public override string PrimaryMetric => "accuracy";
    /// <inheritdoc/>
    public override bool HigherIsBetter => true;

    /// <inheritdoc/>
    public override Tensor Loss(GlmModel model, IReadOnlyList<int> indices)
    {
        var batch = indices.Select(i => train[i]).ToList();
        var scores = ClozeScorer.LabelLogProbs(model, batch, verbalizers);
        return F.cross_entropy(scores, tensor(batch.Select(s => (long)s.Label).ToArray(), device: model.Device));
    }

    /// <summary>Accuracy, macro-F1 and mean cross-entropy of <paramref name="samples"/>.</summary>
    public static FineTuneEvaluation Score(GlmModel model, IReadOnlyList<ClozeSample> samples, IReadOnlyList<int[]> verbalizers, int step, int batchSize)
    {
        var predicted = new List<int>();
        double loss = 0;
        using var noGrad = torch.no_grad();
        foreach (var chunk in samples.Chunk(Math.Max(1, batchSize)))
        {
            using var scope = NewDisposeScope();
            var scores = ClozeScorer.LabelLogProbs(model, chunk, verbalizers);
            loss += F.cross_entropy(scores, tensor(chunk.Select(s => (long)s.Label).ToArray(), device: model.Device), reduction: nn.Reduction.Sum).item<float>();
            predicted.AddRange(scores.argmax(1).cpu().data<long>().Select(x => (int)x));
        }
        var gold = samples.Select(s => s.Label).ToList();
        return new FineTuneEvaluation(step, loss / samples.Count, new Dictionary<string, double>
        {
            ["accuracy"] = ClassificationMetrics.Accuracy(gold, predicted),
            ["macro_f1"] = ClassificationMetrics.MacroF1(gold, predicted),
        });
    }

    /// <inheritdoc/>
    public override FineTuneEvaluation Evaluate(GlmModel model, int step, int batchSize) =>
        eval is { Count: > 0 } ? Score(model, eval, verbalizers, step, batchSize) : throw new GlmException("no validation data; pass eval samples to evaluate.");

    /// <summary>Scores the training set (useful to check learning on small tasks).</summary>
    public FineTuneEvaluation EvaluateTrain(GlmModel model, int step, int batchSize) => Score(model, train, verbalizers, step, batchSize);
}
