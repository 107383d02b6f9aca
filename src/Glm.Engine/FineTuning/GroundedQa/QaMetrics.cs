using System.Text;

namespace Glm.Engine.FineTuning.GroundedQa;

/// <summary>
/// Span-QA metrics in the style of the CMRC 2018 evaluation script: answers are normalised (lower-cased, whitespace and
/// punctuation deleted), every remaining character is one token, exact match compares the normalised strings and F1 uses
/// the longest common <em>contiguous</em> run L of characters (precision = L / prediction length, recall = L / reference
/// length). With several references the best score is taken. Differences from the official script: non-CJK runs are
/// split into characters too (the script word-tokenises them), and every Unicode punctuation character is deleted, not
/// only the script's list (its ASCII symbols <c>- : _ * ^ / \ ~ ` + =</c> are deleted as well).
/// </summary>
public static class QaMetrics
{
    private const string ExtraPunctuation = "-:_*^/\\~`+=|<>$";

    /// <summary>Lower-cases and deletes whitespace and punctuation (including the CMRC script's ASCII symbols).</summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        foreach (var rune in text.ToLowerInvariant().EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(rune) || Rune.IsPunctuation(rune) || Rune.IsControl(rune)) continue;
            if (rune.IsAscii && ExtraPunctuation.Contains((char)rune.Value)) continue;
            sb.Append(rune.ToString());
        }
        return sb.ToString();
    }

    /// <summary>1 when the normalised prediction equals a normalised reference, else 0.</summary>
    public static double ExactMatch(string prediction, IReadOnlyList<string> references)
    {
        CheckReferences(references);
        string p = Normalize(prediction);
        return references.Any(r => Normalize(r) == p) ? 1 : 0;
    }

    /// <summary>Best character F1 (longest common contiguous run) of the prediction against the references, in [0, 1].</summary>
    public static double F1(string prediction, IReadOnlyList<string> references)
    {
        CheckReferences(references);
        var p = Tokens(prediction);
        return references.Max(r => F1(p, Tokens(r)));
    }

    /// <summary>Exact match against a single reference.</summary>
    public static double ExactMatch(string prediction, string reference) => ExactMatch(prediction, new[] { reference });

    /// <summary>Character F1 against a single reference.</summary>
    public static double F1(string prediction, string reference) => F1(prediction, new[] { reference });

    private static double F1(string[] prediction, string[] reference)
    {
        if (prediction.Length == 0 && reference.Length == 0) return 1;
        int l = LongestCommonRun(prediction, reference);
        if (l == 0) return 0;
        double precision = (double)l / prediction.Length, recall = (double)l / reference.Length;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>Length of the longest common contiguous run of two token sequences.</summary>
    internal static int LongestCommonRun(string[] a, string[] b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        int best = 0;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : 0;
                if (current[j] > best) best = current[j];
            }
            (previous, current) = (current, previous);
        }
        return best;
    }

    // Characters as tokens; runes so that characters outside the BMP count once.
    private static string[] Tokens(string text) => Normalize(text).EnumerateRunes().Select(r => r.ToString()).ToArray();

    private static void CheckReferences(IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(references);
        if (references.Count == 0) throw new GlmException("QA scoring needs at least one reference answer; got none.");
    }
}

/// <summary>Accumulates exact match, F1 and the proper-stop rate over a QA evaluation set.</summary>
public sealed class QaScoreboard
{
    private double _em, _f1;
    private int _stopped;

    /// <summary>Questions scored so far.</summary>
    public int Count { get; private set; }
    /// <summary>Mean exact match ×100.</summary>
    public double ExactMatch => Count == 0 ? 0 : 100 * _em / Count;
    /// <summary>Mean character F1 ×100.</summary>
    public double F1 => Count == 0 ? 0 : 100 * _f1 / Count;
    /// <summary>Share of answers (×100) that ended with the turn's stop token before the token limit.</summary>
    public double StoppedRate => Count == 0 ? 0 : 100.0 * _stopped / Count;

    /// <summary>Scores one prediction and returns its (EM, F1) in [0, 1].</summary>
    public (double ExactMatch, double F1) Add(string prediction, IReadOnlyList<string> references, bool stopped)
    {
        double em = QaMetrics.ExactMatch(prediction, references), f1 = QaMetrics.F1(prediction, references);
        _em += em;
        _f1 += f1;
        if (stopped) _stopped++;
        Count++;
        return (em, f1);
    }
}
