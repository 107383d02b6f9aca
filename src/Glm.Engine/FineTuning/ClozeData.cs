using Glm.Engine.Tokenization;

namespace Glm.Engine.FineTuning;

/// <summary>One labelled text for cloze classification, with where it came from.</summary>
public sealed record ClozeExample(string Text, string Label, string File, int Line);

/// <summary>A tokenized cloze example: Part A (with exactly one mask token) and the index of its label.</summary>
/// <param name="PartA">Context ids containing the blank.</param>
/// <param name="Label">Index into the task's labels.</param>
public sealed record ClozeSample(int[] PartA, int Label);

/// <summary>
/// A PET-style cloze task (GLM paper §3.2): <see cref="Pattern"/> holds <c>{text}</c> and one <c>[MASK]</c>, e.g.
/// <c>{text}。这篇论文属于[MASK]学科。</c>; <see cref="Verbalizer"/> maps each label to the words that fill the blank
/// (several tokens allowed). Labels keep the verbalizer's order.
/// </summary>
public sealed record ClozeTask
{
    /// <summary>The placeholder for the example text.</summary>
    public const string TextSlot = "{text}";
    /// <summary>The blank.</summary>
    public const string MaskSlot = "[MASK]";

    /// <summary>The pattern, e.g. <c>{text}。这篇论文属于[MASK]学科。</c>.</summary>
    public required string Pattern { get; init; }
    /// <summary>Label → verbalizer text, in label order.</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> Verbalizer { get; init; }

    /// <summary>The labels in order.</summary>
    public IReadOnlyList<string> Labels => Verbalizer.Select(p => p.Key).ToList();

    /// <summary>Checks the pattern has one <c>{text}</c> and one <c>[MASK]</c> and the verbalizer is non-empty and unique.</summary>
    public void Validate()
    {
        int Count(string s) => (Pattern.Length - Pattern.Replace(s, "").Length) / s.Length;
        if (Count(TextSlot) != 1 || Count(MaskSlot) != 1)
            throw new GlmException($"cloze pattern '{Pattern}' must contain {TextSlot} once and {MaskSlot} once.");
        if (Verbalizer.Count < 2) throw new GlmException($"cloze verbalizer has {Verbalizer.Count} label(s); expected at least 2.");
        foreach (var (label, words) in Verbalizer)
            if (string.IsNullOrWhiteSpace(label) || string.IsNullOrWhiteSpace(words))
                throw new GlmException($"cloze verbalizer entry '{label}' → '{words}' is empty; expected label and words.");
        var dup = Verbalizer.GroupBy(p => p.Key).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new GlmException($"cloze verbalizer lists label '{dup.Key}' twice.");
    }

    /// <summary>
    /// Part A as GLM's HF tokenizer builds it: <c>[CLS] pattern-with-text &lt;|endoftext|&gt;</c> with [MASK] as its control token
    /// (tokens the tokenizer lacks are left out).
    /// </summary>
    public ClozeSample Encode(IGlmTokenizer tokenizer, ClozeExample example)
    {
        int labelIndex = Labels.ToList().IndexOf(example.Label);
        if (labelIndex < 0) throw new GlmException($"{example.File}:{example.Line}: label '{example.Label}' is not in the verbalizer ({string.Join(", ", Labels)}).");
        int mask = tokenizer.SpecialTokenId(MaskSlot) ?? throw new GlmException($"the tokenizer has no {MaskSlot} token; cloze classification needs an original-GLM tokenizer.");
        string filled = Pattern.Replace(TextSlot, example.Text);
        int at = filled.IndexOf(MaskSlot, StringComparison.Ordinal);
        var ids = new List<int>();
        if (tokenizer.SpecialTokenId("[CLS]") is int cls) ids.Add(cls);
        if (at > 0) ids.AddRange(tokenizer.Encode(filled[..at]));
        ids.Add(mask);
        if (at + MaskSlot.Length < filled.Length) ids.AddRange(tokenizer.Encode(filled[(at + MaskSlot.Length)..]));
        if ((tokenizer.SpecialTokenId("<|endoftext|>") ?? tokenizer.EosId) is int eos) ids.Add(eos);
        return new ClozeSample(ids.ToArray(), labelIndex);
    }

    /// <summary>Token ids of each label's verbalizer words, in label order.</summary>
    public int[][] EncodeVerbalizers(IGlmTokenizer tokenizer) => Verbalizer.Select(p =>
    {
        var ids = tokenizer.Encode(p.Value).ToArray();
        return ids.Length > 0 ? ids : throw new GlmException($"verbalizer '{p.Value}' of label '{p.Key}' encodes to no tokens.");
    }).ToArray();
}

/// <summary>
/// Reads cloze classification data: TSV (the last column is the label, the one before it the text, as CSL's
/// <c>prefix⇥title⇥discipline</c>) or JSONL <c>{"text":…,"label":…}</c> (by extension .jsonl/.json). All problems
/// (too few columns, bad JSON, empty text or label, label not in the verbalizer) are reported together by file and line.
/// </summary>
public static class ClozeData
{
    /// <summary>Reads and validates <paramref name="path"/> against <paramref name="task"/>'s labels.</summary>
    public static IReadOnlyList<ClozeExample> Load(string path, ClozeTask task)
    {
        var labels = new HashSet<string>(task.Labels, StringComparer.Ordinal);
        return LabelledTextData.Read(path, $"{path}: cloze data file not found.",
                label => labels.Contains(label) ? null : $"label '{label}' is not in the verbalizer ({string.Join(", ", task.Labels)})")
            .Select(r => new ClozeExample(r.Text, r.Label, path, r.Line)).ToList();
    }
}

/// <summary>Accuracy and macro-F1 of predicted class indices.</summary>
public static class ClassificationMetrics
{
    /// <summary>Fraction of predictions equal to the gold label.</summary>
    public static double Accuracy(IReadOnlyList<int> gold, IReadOnlyList<int> predicted) =>
        gold.Count == 0 ? 0 : gold.Zip(predicted).Count(p => p.First == p.Second) / (double)gold.Count;

    /// <summary>Unweighted mean of per-class F1 over the classes present in gold or predictions (scikit-learn's macro).</summary>
    public static double MacroF1(IReadOnlyList<int> gold, IReadOnlyList<int> predicted)
    {
        var classes = gold.Concat(predicted).Distinct().ToList();
        if (classes.Count == 0) return 0;
        double sum = 0;
        foreach (int c in classes)
        {
            int tp = gold.Zip(predicted).Count(p => p.First == c && p.Second == c);
            int fp = predicted.Count(p => p == c) - tp, fn = gold.Count(g => g == c) - tp;
            sum += tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
        }
        return sum / classes.Count;
    }
}
