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
        if (maxTokens < 1) throw new GlmException($"BestBlankFill: maxTokens {maxTokens} is invalid; expected ≥ 1.");
        if (beamWidth < 1) throw new GlmException($"BestBlankFill: beamWidth {beamWidth} is invalid; expected ≥ 1.");
        if (!partA.Any(blank.MaskIds.Contains)) throw new GlmException("BestBlankFill: Part A has no [MASK], [sMASK] or [gMASK]; expected one blank to fill.");

        var beam = new List<(int[] Span, double LogProb)> { ([], 0) };
        (int[] Span, double LogProb) best = ([], double.NegativeInfinity);
        for (int length = 0; length <= maxTokens && beam.Count > 0; length++)
        {
            var candidates = new PriorityQueue<(int[] Span, double LogProb), double>();
            foreach (var (span, logProb) in beam)
            {
                var ids = new List<int>(partA.Count + 1 + span.Length);
                ids.AddRange(partA);
                ids.Add(blank.Sop);
                ids.AddRange(span);
                var next = LogSoftmaxRow(ComputeLogits(ids), ids.Count - 1);
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

    private static double[] LogSoftmaxRow(float[,] logits, int row)
    {
        int v = logits.GetLength(1);
        double max = double.NegativeInfinity;
        for (int i = 0; i < v; i++) max = Math.Max(max, logits[row, i]);
        double sum = 0;
        for (int i = 0; i < v; i++) sum += Math.Exp(logits[row, i] - max);
        double logZ = max + Math.Log(sum);
        var result = new double[v];
        for (int i = 0; i < v; i++) result[i] = logits[row, i] - logZ;
        return result;
    }
}
