namespace Glm.Engine.Training.Data;

/// <summary>
/// Sequence-length warm-up (Li et al. 2022): early batches are cut into short [CLS]-prefixed chunks whose length grows
/// geometrically to the full sample length. Why it is offered for GLM from scratch: the first token of every blank can only
/// come from the mask's neighbours in Part A, and with hundreds of bidirectional Part-A keys the attention that would find
/// them starts out diluted over all of them. On synthetic text that attention formed in short chunks within a few hundred
/// steps and carried over as the chunks grew; on the Chinese corpus it has not shown the effect yet (both measured in
/// models/glm-zh-small/README.md). Every token is kept, in order, and the chunk length depends only on the step, so a
/// resumed run splits exactly as the interrupted one did.
/// </summary>
public sealed class SequenceLengthWarmup
{
    /// <summary>Steps over which the chunk length grows from <see cref="StartLength"/> to the full length (0 = off).</summary>
    public int Steps { get; }
    /// <summary>Chunk length ([CLS] included) at step 0.</summary>
    public int StartLength { get; }

    /// <summary>Creates a warm-up schedule.</summary>
    /// <exception cref="GlmException">Negative steps, or a start length below 3 ([CLS] and two tokens).</exception>
    public SequenceLengthWarmup(int steps, int startLength)
    {
        if (steps < 0) throw new GlmException($"sequence-length warm-up steps = {steps}; expected >= 0 (0 = off).");
        if (startLength < 3) throw new GlmException($"sequence-length warm-up start length = {startLength}; expected >= 3 ([CLS] and two tokens).");
        Steps = steps;
        StartLength = startLength;
    }

    /// <summary>
    /// Chunk length at <paramref name="step"/> for samples of <paramref name="fullLength"/> tokens: geometric growth,
    /// start·(full/start)^(step/steps), so each doubling of the length gets the same number of steps; the full length once
    /// warmed up.
    /// </summary>
    public int ChunkLength(int step, int fullLength)
    {
        if (step >= Steps || StartLength >= fullLength) return fullLength;
        double length = StartLength * Math.Pow((double)fullLength / StartLength, (double)Math.Max(0, step) / Steps);
        return Math.Clamp((int)length, StartLength, fullLength);
    }

    /// <summary>
    /// Cuts each [CLS]-prefixed sample into chunks of at most <paramref name="chunkLength"/> tokens, each starting with
    /// <paramref name="cls"/>. A remainder too short to form a sample (fewer than two text tokens) joins the chunk before it.
    /// Samples no longer than <paramref name="chunkLength"/> are returned as they are.
    /// </summary>
    public static List<int[]> Split(IReadOnlyList<int[]> samples, int chunkLength, int cls)
    {
        if (chunkLength < 3) throw new ArgumentOutOfRangeException(nameof(chunkLength), chunkLength, "expected >= 3");
        var chunks = new List<int[]>();
        foreach (var sample in samples)
        {
            if (sample.Length <= chunkLength) { chunks.Add(sample); continue; }
            int text = chunkLength - 1, start = 1;
            while (start < sample.Length)
            {
                int take = Math.Min(text, sample.Length - start);
                if (sample.Length - (start + take) < 2) take = sample.Length - start; // fold a 1-token remainder in
                var chunk = new int[take + 1];
                chunk[0] = cls;
                Array.Copy(sample, start, chunk, 1, take);
                chunks.Add(chunk);
                start += take;
            }
        }
        return chunks;
    }
}
