using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    /// <summary>
    /// The most probable filler of the first blank of <paramref name="partA"/> with 1..<paramref name="maxTokens"/> tokens:
    /// beam search (width <paramref name="beamWidth"/>, every non-special id scored at each step) for the span that maximises
    /// log P(span, eop | Part A) under the model, i.e. the fill whose end the model also predicts. Greedy decoding
    /// (<see cref="GenerateBlank(IReadOnlyList{int}, Generation.GenerationOptions?)"/>) commits to its first token; this compares
    /// whole fills, the way a count-based baseline's span search does.
    /// </summary>
    public IReadOnlyList<int> BestBlankFill(IReadOnlyList<int> partA, int maxTokens = 3, int beamWidth = 8)
    {
        RequireOriginalGlm(nameof(BestBlankFill));
        var blank = RequireBlankTokens();
        // Block positions run 1..maxTokens+1 and must stay inside the learned table.
        if (maxTokens < 1 || maxTokens >= MaxContext) throw new GlmException($"BestBlankFill: maxTokens {maxTokens} is invalid; expected 1..{MaxContext - 1}.");
        if (beamWidth < 1) throw new GlmException($"BestBlankFill: beamWidth {beamWidth} is invalid; expected ≥ 1.");
        int maskPosition = RequirePartA(partA, blank, nameof(BestBlankFill));
        var beam = new List<(int[] Span, double LogProb)> { ([], 0) };
        (int[] Span, double LogProb) best = ([], double.NegativeInfinity);
        for (int length = 0; length <= maxTokens && beam.Count > 0; length++)
        {
            var candidates = new PriorityQueue<(int[] Span, double LogProb), double>();
            var nextLogProbs = NextTokenLogProbs(partA, blank.Sop, maskPosition, beam.Select(b => b.Span).ToList());
            for (int k = 0; k < beam.Count; k++)
            {
                var (span, logProb) = beam[k];
                var next = nextLogProbs[k];
                if (span.Length > 0 && logProb + next[blank.Eop] > best.LogProb) best = (span, logProb + next[blank.Eop]);
                if (length == maxTokens) continue;
                for (int id = 0; id < next.Length; id++)
                {
                    if (IsControlToken(id, blank)) continue;
                    double score = logProb + next[id];
                    if (candidates.Count < beamWidth) candidates.Enqueue(([.. span, id], score), score);
                    else if (score > candidates.Peek().LogProb) candidates.EnqueueDequeue(([.. span, id], score), score);
                }
            }
            beam = new List<(int[], double)>();
            while (candidates.TryDequeue(out var c, out _)) beam.Add(c);
        }
        return best.Span;
    }

    private bool IsControlToken(int id, GlmBlankTokenSet blank) =>
        id == blank.Sop || id == blank.Eop || blank.MaskIds.Contains(id) || (Tokenizer?.IsSpecial(id) ?? false);

    /// <summary>
    /// log P(next token) after <c>Part A, sop, span</c> for every span of equal length: one batched forward pass (Part B rows
    /// only differ in their tokens), the head on the last row alone.
    /// </summary>
    private float[][] NextTokenLogProbs(IReadOnlyList<int> partA, int sop, int maskPosition, List<int[]> spans)
    {
        int b = spans.Count, sep = partA.Count, n = sep + 1 + spans[0].Length, v = Config.VocabSize;
        var ids = new long[b * n];
        for (int k = 0; k < b; k++)
        {
            int o = k * n;
            for (int i = 0; i < sep; i++) ids[o + i] = partA[i];
            ids[o + sep] = sop;
            for (int i = 0; i < spans[k].Length; i++) ids[o + sep + 1 + i] = spans[k][i];
        }
        var (positions, blocks) = GlmPositions(n, sep, maskPosition);
        ForwardGate.Wait();
        try
        {
            using var inference = torch.inference_mode();
            using var scope = NewDisposeScope();
            var logits = Network.Forward(torch.tensor(ids, new long[] { b, n }, device: Device),
                PositionTensor(positions, blocks).expand(b, 2, n), null, SepMask(sep, n), lastOnly: true);
            var logProbs = logits.to(ScalarType.Float32).view(b, v).log_softmax(1).cpu();
            var flat = logProbs.data<float>().ToArray();
            return Enumerable.Range(0, b).Select(k => flat.AsSpan(k * v, v).ToArray()).ToArray();
        }
        finally { ForwardGate.Release(); }
    }
}
