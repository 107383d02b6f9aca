using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    /// <summary>
    /// The most probable filler of the first blank of <paramref name="partA"/> with 1..<paramref name="maxTokens"/> tokens,
    /// reading the model as a left-to-right language model: the text before the blank becomes the Part A of a document-mode
    /// prompt (<c>left [gMASK]</c>, what <c>generate</c> continues; its last <paramref name="leftTokensInPartB"/> tokens open
    /// Part B as already-generated text, which a small GLM reads better than the end of Part A), and a candidate span s is scored by
    /// log P(s, r | left), where r is the first <paramref name="rightTokens"/> tokens after the blank — the blank's
    /// posterior given both sides, with the right side cut at r. This is the search a count-based n-gram filler does
    /// (P(span | left)·P(right | span)); it needs no Part-A lookup of the blank's neighbours, which small GLMs learn late.
    /// Candidates: a beam of width <paramref name="beamWidth"/> over P(prefix | left); at each length, the
    /// <paramref name="candidatesPerPrefix"/> most likely next tokens of every beam prefix are completed with r and scored.
    /// </summary>
    /// <param name="partA">Context ids with at least one [MASK]/[sMASK]/[gMASK]; tokens after it up to the next control token are the right side.</param>
    /// <param name="maxTokens">Longest fill tried (1..).</param>
    /// <param name="beamWidth">Prefixes kept between lengths.</param>
    /// <param name="candidatesPerPrefix">Last tokens tried per prefix at each length (≥ <paramref name="beamWidth"/> keeps the beam exact).</param>
    /// <param name="rightTokens">Tokens of right context scored after each candidate (0: left context only).</param>
    /// <param name="leftTokensInPartB">Tokens before the blank given to the model as the start of Part B rather than Part A.</param>
    public IReadOnlyList<int> BestBlankFillLeftToRight(IReadOnlyList<int> partA, int maxTokens = 3, int beamWidth = 8,
        int candidatesPerPrefix = 16, int rightTokens = 8, int leftTokensInPartB = 32)
    {
        var best = ScoreBlankFillsLeftToRight(partA, maxTokens, beamWidth, candidatesPerPrefix, rightTokens, leftTokensInPartB)
            .MaxBy(c => c.Score);
        return best.Span;
    }

    /// <summary>
    /// Fills every [MASK]/[sMASK]/[gMASK] written in <paramref name="textWithMasks"/>, first to last, with
    /// <see cref="BestBlankFillLeftToRight"/> (fills of 1..<paramref name="maxTokens"/> tokens; context <c>[CLS] text</c> as in
    /// <see cref="FillBlanksAsync"/>). Returns the completed text.
    /// </summary>
    public string FillBlanksLeftToRight(string textWithMasks, int maxTokens = 3) =>
        PrepareBlankFilling(textWithMasks, nameof(FillBlanksLeftToRight), nameof(BestBlankFillLeftToRight), endWithEos: false,
            skipSpecialTokens: true, context => BestBlankFillLeftToRight(context, maxTokens))();

    /// <summary>Every fill the search of <see cref="BestBlankFillLeftToRight"/> scored, with its log P(span, right | left).</summary>
    internal List<(int[] Span, double Score)> ScoreBlankFillsLeftToRight(IReadOnlyList<int> partA, int maxTokens, int beamWidth,
        int candidatesPerPrefix, int rightTokens, int leftTokensInPartB)
    {
        const string what = nameof(BestBlankFillLeftToRight);
        RequireOriginalGlm(what);
        var blank = RequireBlankTokens();
        if (maxTokens < 1) throw new GlmException($"{what}: maxTokens {maxTokens} is invalid; expected ≥ 1.");
        if (beamWidth < 1 || candidatesPerPrefix < 1)
            throw new GlmException($"{what}: beamWidth {beamWidth} / candidatesPerPrefix {candidatesPerPrefix} are invalid; expected ≥ 1.");
        if (rightTokens < 0) throw new GlmException($"{what}: rightTokens {rightTokens} is invalid; expected ≥ 0.");
        int maskIndex = RequirePartA(partA, blank, what);
        int generationMask = Config.BlankTokens?.GenerationMask ?? Tokenizer?.SpecialTokenId("[gMASK]")
            ?? throw new GlmException($"{what}: {Source} has no [gMASK] (gmask_token_id or a tokenizer token); the left-to-right score needs document mode.");

        // The last tokens before the blank go into Part B as already-generated text: a small GLM continues its own Part B
        // far better than it looks up the end of Part A (the first Part-B token is its weakest prediction).
        int tailLength = Math.Clamp(Math.Min(leftTokensInPartB, maskIndex - 1), 0, maskIndex);
        var context = partA.Take(maskIndex - tailLength).Append(generationMask).ToArray();
        var head = new[] { blank.Sop }.Concat(partA.Skip(maskIndex - tailLength).Take(tailLength)).ToArray();
        var right = partA.Skip(maskIndex + 1).TakeWhile(id => !IsControlToken(id, blank)).Take(rightTokens).ToArray();
        int longestPartB = head.Length + maxTokens + right.Length;
        if (context.Length > MaxContext || longestPartB > MaxContext)
            throw new GlmException($"{what}: {context.Length} context tokens and Part B of up to {longestPartB} exceed the {MaxContext} positions of {Source}.");

        ForwardGate.Wait();
        try
        {
            using var inference = torch.inference_mode();
            // The shared prefix (Part A, then sop and the left tail as Part B) is computed once; candidate rows only add
            // span + right context after it.
            using var prefix = Network.CreateCache(1, context.Length + head.Length);
            int position = context.Length - 1; // Part B sits at the [gMASK]
            float[] afterHead;
            using (NewDisposeScope())
            {
                var (positions, blocks) = GlmPositions(context.Length, -1, 0);
                Network.Forward(IdsTensor(context), PositionTensor(positions, blocks), prefix, SepMask(context.Length, context.Length), lastOnly: true);
                afterHead = ScorePartB(prefix, position, firstBlock: 1, [head], nextAt: head.Length - 1, scoreFrom: head.Length, keep: true).Next[0];
            }
            var beam = new List<(int[] Span, double LogProb, float[] Next)> { ([], 0, afterHead) };
            var scoredFills = new List<(int[] Span, double Score)>();
            for (int length = 1; length <= maxTokens; length++)
            {
                var spans = new List<(int[] Span, double LogProb)>();
                foreach (var (span, logProb, next) in beam)
                    foreach (int id in TopIds(next, candidatesPerPrefix, blank))
                        spans.Add(([.. span, id], logProb + next[id]));
                var scored = ScorePartB(prefix, position, firstBlock: head.Length + 1, spans.Select(s => s.Span.Concat(right).ToArray()).ToList(),
                    nextAt: length - 1, scoreFrom: length, keep: false);
                for (int k = 0; k < spans.Count; k++) scoredFills.Add((spans[k].Span, spans[k].LogProb + scored.Continuation[k]));
                beam = Enumerable.Range(0, spans.Count).OrderByDescending(k => spans[k].LogProb).Take(beamWidth)
                    .Select(k => (spans[k].Span, spans[k].LogProb, scored.Next[k])).ToList();
            }
            return scoredFills;
        }
        finally { ForwardGate.Release(); }
    }

    private int[] TopIds(float[] logProbs, int count, GlmBlankTokenSet blank)
    {
        var top = new PriorityQueue<int, float>();
        for (int id = 0; id < logProbs.Length; id++)
        {
            if (IsControlToken(id, blank)) continue;
            if (top.Count < count) top.Enqueue(id, logProbs[id]);
            else if (top.TryPeek(out _, out float worst) && logProbs[id] > worst) top.DequeueEnqueue(id, logProbs[id]);
        }
        return top.UnorderedItems.Select(e => e.Element).ToArray();
    }

    /// <summary>
    /// Runs equal-length Part B rows (block positions from <paramref name="firstBlock"/>) after the shared prefix in
    /// <paramref name="prefix"/>: returns each row's next-token log-probabilities after index <paramref name="nextAt"/> and the
    /// summed log-probability of its tokens from index <paramref name="scoreFrom"/> (≥ 1) on. With <paramref name="keep"/>
    /// (one row) the row's keys/values are appended to <paramref name="prefix"/> itself.
    /// </summary>
    private (float[][] Next, double[] Continuation) ScorePartB(KvCache prefix, int position, int firstBlock, List<int[]> rows,
        int nextAt, int scoreFrom, bool keep)
    {
        int b = rows.Count, s = rows[0].Length, past = prefix.Length, v = Config.VocabSize;
        using var scope = NewDisposeScope();
        using var batch = keep ? null : Network.CreateCache(b, past + s);
        batch?.BroadcastPrefix(prefix, past);
        var ids = new long[b * s];
        for (int k = 0; k < b; k++)
            for (int i = 0; i < s; i++) ids[k * s + i] = rows[k][i];
        var positions = Enumerable.Repeat((long)position, s).ToArray();
        var blocks = Enumerable.Range(firstBlock, s).Select(i => (long)i).ToArray();
        var mask = SepMask(past, past + s).narrow(2, past, s); // the new rows: all of the prefix, causal among themselves
        var idTensor = torch.tensor(ids, new long[] { b, s }, device: Device);
        var logProbs = Network.Forward(idTensor, PositionTensor(positions, blocks).expand(b, 2, s), batch ?? prefix,
            mask, lastOnly: false).to(ScalarType.Float32).log_softmax(2);
        var nextFlat = logProbs.select(1, nextAt).cpu().data<float>().ToArray();
        var next = Enumerable.Range(0, b).Select(k => nextFlat.AsSpan(k * v, v).ToArray()).ToArray();
        var continuation = new double[b];
        if (scoreFrom < s)
        {
            var targets = idTensor.narrow(1, scoreFrom, s - scoreFrom).unsqueeze(2);
            var gathered = logProbs.narrow(1, scoreFrom - 1, s - scoreFrom).gather(2, targets).cpu().data<float>().ToArray();
            int n = s - scoreFrom;
            for (int k = 0; k < b; k++)
                for (int i = 0; i < n; i++) continuation[k] += gathered[k * n + i];
        }
        return (next, continuation);
    }
}
