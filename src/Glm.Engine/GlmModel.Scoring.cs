using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

/// <summary>Result of scoring a text: perplexity per token and bits per character.</summary>
/// <param name="Tokens">Tokens in the text.</param>
/// <param name="ScoredTokens">Tokens that were predicted (all but the first).</param>
/// <param name="Characters">Unicode code points in the text.</param>
/// <param name="NegativeLogLikelihoodNats">Total negative log-likelihood of the scored tokens, in nats.</param>
public sealed record PerplexityResult(int Tokens, int ScoredTokens, long Characters, double NegativeLogLikelihoodNats)
{
    /// <summary>exp(mean NLL per scored token).</summary>
    public double Perplexity => Math.Exp(NegativeLogLikelihoodNats / Math.Max(1, ScoredTokens));
    /// <summary>Total NLL in bits divided by the characters of the text.</summary>
    public double BitsPerCharacter => NegativeLogLikelihoodNats / Math.Log(2) / Math.Max(1, Characters);
}

public sealed partial class GlmModel
{
    /// <summary>−log softmax(<paramref name="logits"/>[<paramref name="row"/>])[<paramref name="id"/>] in nats, computed in double
    /// with the row's maximum subtracted (the per-token loss of every host-side score: perplexity, bits per character).</summary>
    internal static double TokenNll(float[,] logits, int row, int id)
    {
        int v = logits.GetLength(1);
        double max = double.NegativeInfinity;
        for (int j = 0; j < v; j++) max = Math.Max(max, logits[row, j]);
        double sum = 0;
        for (int j = 0; j < v; j++) sum += Math.Exp(logits[row, j] - max);
        return max + Math.Log(sum) - logits[row, id];
    }

    /// <summary>
    /// Scores <paramref name="ids"/> left to right with a sliding window of <paramref name="context"/> tokens and stride
    /// context/2: every token after the first is predicted once, with as much left context as the window allows.
    /// </summary>
    public PerplexityResult ComputePerplexity(IReadOnlyList<int> ids, long characters, int context, IProgress<double>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (ids.Count < 2) throw new GlmException($"the text has {ids.Count} token(s); at least 2 are needed to measure perplexity.");
        CheckIds(ids);
        context = Math.Clamp(context, 2, MaxContext);
        int stride = Math.Max(1, context / 2);
        double nll = 0;
        int scored = 0, previousEnd = 1; // token 0 is never predicted
        ForwardGate.Wait(cancellationToken);
        try
        {
            using var inference = torch.inference_mode();
            for (int begin = 0; previousEnd < ids.Count; begin += stride)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int end = Math.Min(begin + context, ids.Count);
                int firstTarget = Math.Max(previousEnd, begin + 1);
                using var scope = NewDisposeScope();
                var window = ids.Skip(begin).Take(end - begin).ToArray();
                var logits = Network.Forward(IdsTensor(window), Positions(0, window.Length), null, null, lastOnly: false);
                // Row r predicts token begin + r + 1.
                var rows = logits[0].narrow(0, firstTarget - 1 - begin, end - firstTarget).to(ScalarType.Float32);
                var targets = torch.tensor(ids.Skip(firstTarget).Take(end - firstTarget).Select(i => (long)i).ToArray(), device: Device);
                var logProbs = rows.log_softmax(-1).gather(1, targets.view(-1, 1));
                nll -= logProbs.sum().item<float>();
                scored += end - firstTarget;
                previousEnd = end;
                progress?.Report((double)end / ids.Count);
            }
        }
        finally { ForwardGate.Release(); }
        return new PerplexityResult(ids.Count, scored, characters, nll);
    }
}
