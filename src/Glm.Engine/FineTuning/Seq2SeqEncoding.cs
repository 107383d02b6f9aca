using Glm.Engine.Tokenization;
using Glm.Engine.Training.Data;

namespace Glm.Engine.FineTuning;

/// <summary>Which end of an over-long source is cut.</summary>
public enum TruncationSide
{
    /// <summary>Drop tokens from the end (keep the beginning of the source).</summary>
    Right,
    /// <summary>Drop tokens from the beginning (keep the end of the source).</summary>
    Left,
}

/// <summary>A tokenized seq2seq example.</summary>
/// <param name="PartA">Context: <c>[CLS] source [gMASK]</c> ([CLS] only when the tokenizer has it).</param>
/// <param name="Target">Target ids without sop/eop.</param>
/// <param name="Reference">The full target text (metrics compare generations against it, not against truncated ids).</param>
/// <param name="Source">The source text (for printing examples).</param>
public sealed record Seq2SeqSample(int[] PartA, int[] Target, string Reference, string Source = "");

/// <summary>
/// Turns <see cref="Seq2SeqExample"/>s into GLM blank-infilling samples (glm-formats §1.5/§1.6 document mode):
/// Part A = <c>[CLS] source [gMASK]</c> (positions 0..|A|−1, block position 0, bidirectional); Part B input =
/// <c>sop target</c>, Part B targets = <c>target eop</c>, all with position = index of [gMASK] and block positions 1..|target|+1;
/// loss only on Part B. Length rule: the target keeps at most <see cref="MaxTargetTokens"/> tokens (cut at the end); the
/// source is then cut from <see cref="SourceTruncation"/> so that |source| + |target| + 3 (CLS, gMASK, sop/eop) ≤
/// <see cref="MaxLength"/>.
/// </summary>
public sealed record Seq2SeqEncoder
{
    /// <summary>Maximum total length (Part A + Part B) in tokens; at most the model's context.</summary>
    public required int MaxLength { get; init; }
    /// <summary>Maximum target tokens kept for training (without eop).</summary>
    public int MaxTargetTokens { get; init; } = 128;
    /// <summary>Which end of a long source is dropped.</summary>
    public TruncationSide SourceTruncation { get; init; } = TruncationSide.Right;

    /// <summary>Checks the limits; throws naming the field and value.</summary>
    public void Validate()
    {
        if (MaxTargetTokens < 1) throw new GlmException($"seq2seq MaxTargetTokens = {MaxTargetTokens}; expected ≥ 1.");
        if (MaxLength < MaxTargetTokens + 4) throw new GlmException($"seq2seq MaxLength = {MaxLength}; expected ≥ MaxTargetTokens + 4 = {MaxTargetTokens + 4} (room for CLS, one source token, gMASK and sop/eop).");
    }

    /// <summary>Tokenizes and truncates one example.</summary>
    public Seq2SeqSample Encode(IGlmTokenizer tokenizer, Seq2SeqExample example)
    {
        int gmask = tokenizer.SpecialTokenId("[gMASK]") ?? throw new GlmException("the tokenizer has no [gMASK] token; seq2seq fine-tuning needs an original-GLM tokenizer.");
        var source = tokenizer.Encode(example.Source);
        var target = tokenizer.Encode(example.Target);
        if (source.Count == 0) throw new GlmException($"{example.File}:{example.Line}: source encodes to no tokens.");
        if (target.Count == 0) throw new GlmException($"{example.File}:{example.Line}: target encodes to no tokens.");
        return Build(source, target, tokenizer.SpecialTokenId("[CLS]"), gmask, example.Target, example.Source);
    }

    /// <summary>Builds a sample from ids (applies the length rule).</summary>
    public Seq2SeqSample Build(IReadOnlyList<int> source, IReadOnlyList<int> target, int? cls, int gmask, string reference = "", string sourceText = "")
    {
        Validate();
        var t = target.Take(MaxTargetTokens).ToArray();
        int fixedTokens = (cls is null ? 0 : 1) + 1 + 1; // CLS, gMASK, sop (Part B input) / eop (Part B target)
        int room = Math.Max(1, MaxLength - fixedTokens - t.Length);
        var s = source.Count <= room ? source.ToArray()
            : SourceTruncation == TruncationSide.Right ? source.Take(room).ToArray() : source.Skip(source.Count - room).ToArray();
        var partA = new List<int>(s.Length + 2);
        if (cls is int c) partA.Add(c);
        partA.AddRange(s);
        partA.Add(gmask);
        return new Seq2SeqSample(partA.ToArray(), t, reference, sourceText);
    }

    /// <summary>
    /// The training sample of <paramref name="sample"/>: inputs Part A ++ [sop] ++ target, targets Part A ++ target ++ [eop],
    /// positions 0..|A|−1 then the [gMASK] index, block positions 0 then 1..|target|+1, loss mask 1 on Part B only.
    /// </summary>
    public static BlankInfillingSample Collate(Seq2SeqSample sample, GlmBlankTokenSet tokens)
    {
        var a = sample.PartA;
        int mask = Array.FindIndex(a, tokens.MaskIds.Contains);
        if (mask < 0) throw new GlmException($"a seq2seq Part A of {a.Length} tokens has no mask token; expected [gMASK] at its end.");
        int nb = sample.Target.Length + 1, n = a.Length + nb;
        var input = new int[n];
        var targets = new int[n];
        var positions = new int[n];
        var blocks = new int[n];
        var loss = new float[n];
        for (int i = 0; i < a.Length; i++) { input[i] = a[i]; targets[i] = a[i]; positions[i] = i; }
        for (int j = 0; j < nb; j++)
        {
            int i = a.Length + j;
            input[i] = j == 0 ? tokens.Sop : sample.Target[j - 1];
            targets[i] = j < sample.Target.Length ? sample.Target[j] : tokens.Eop;
            positions[i] = mask;
            blocks[i] = j + 1;
            loss[i] = 1;
        }
        return new BlankInfillingSample
        {
            InputIds = input, TargetIds = targets, PositionIds = positions, BlockPositionIds = blocks, LossMask = loss, Sep = a.Length,
        };
    }
}
