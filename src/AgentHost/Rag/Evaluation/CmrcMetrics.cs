using System.Text;

namespace AgentHost.Rag.Evaluation;

/// <summary>
/// Answer metrics of the official CMRC 2018 evaluation script (v5): exact match after lower-casing, trimming and deleting
/// the listed punctuation; F1 over the longest common contiguous token run, where every CJK char (U+4E00–U+9FA5) is a
/// token and other runs are word-tokenised. NLTK's <c>word_tokenize</c> is approximated by splitting on whitespace and
/// separating ASCII punctuation; per question the best score over the reference answers counts.
/// </summary>
public static class CmrcMetrics
{
    /// <summary>Characters the script deletes (ASCII and full-width).</summary>
    public const string Punctuation = "-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』";

    /// <summary>Lower-cased, trimmed, punctuation deleted.</summary>
    public static string RemovePunctuation(string text)
    {
        var sb = new StringBuilder();
        foreach (char c in text.ToLowerInvariant().Trim())
            if (!Punctuation.Contains(c)) sb.Append(c);
        return sb.ToString();
    }

    /// <summary>Mixed segmentation: CJK chars one token each, other runs word-tokenised; punctuation deleted.</summary>
    public static List<string> Segment(string text)
    {
        var tokens = new List<string>();
        var run = new StringBuilder();
        foreach (char c in text.ToLowerInvariant().Trim())
        {
            if (Punctuation.Contains(c)) continue;
            if (c is >= '\u4e00' and <= '\u9fa5')
            {
                FlushRun(run, tokens);
                tokens.Add(c.ToString());
            }
            else run.Append(c);
        }
        FlushRun(run, tokens);
        return tokens;
    }

    private static void FlushRun(StringBuilder run, List<string> tokens)
    {
        if (run.Length == 0) return;
        foreach (var piece in run.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var word = new StringBuilder();
            for (int i = 0; i < piece.Length; i++)
            {
                char c = piece[i];
                bool inNumberOrWord = c is '.' or ',' && i > 0 && i + 1 < piece.Length && char.IsLetterOrDigit(piece[i - 1]) && char.IsLetterOrDigit(piece[i + 1]);
                if (char.IsAscii(c) && (char.IsPunctuation(c) || char.IsSymbol(c)) && !inNumberOrWord)
                {
                    if (word.Length > 0) { tokens.Add(word.ToString()); word.Clear(); }
                    tokens.Add(c.ToString());
                }
                else word.Append(c);
            }
            if (word.Length > 0) tokens.Add(word.ToString());
        }
        run.Clear();
    }

    /// <summary>Length of the longest common contiguous token run.</summary>
    public static int LongestCommonRun(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var previous = new int[b.Count + 1];
        var current = new int[b.Count + 1];
        int best = 0;
        for (int i = 1; i <= a.Count; i++)
        {
            for (int j = 1; j <= b.Count; j++)
            {
                current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : 0;
                best = Math.Max(best, current[j]);
            }
            (previous, current) = (current, previous);
            Array.Clear(current);
        }
        return best;
    }

    /// <summary>F1 of one prediction against one answer, in [0, 1].</summary>
    public static double F1(string answer, string prediction)
    {
        var a = Segment(answer);
        var p = Segment(prediction);
        int common = LongestCommonRun(a, p);
        if (common == 0) return 0;
        double precision = common / (double)p.Count, recall = common / (double)a.Count;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>1 when prediction and answer are equal after <see cref="RemovePunctuation"/>, else 0.</summary>
    public static double ExactMatch(string answer, string prediction) =>
        RemovePunctuation(answer) == RemovePunctuation(prediction) ? 1 : 0;

    /// <summary>Best F1 over the reference answers.</summary>
    public static double BestF1(IEnumerable<string> answers, string prediction) => answers.Max(a => F1(a, prediction));

    /// <summary>Best exact match over the reference answers.</summary>
    public static double BestExactMatch(IEnumerable<string> answers, string prediction) => answers.Max(a => ExactMatch(a, prediction));
}

/// <summary>Retrieval metrics from the 1-based rank of the first relevant chunk (0 = not retrieved).</summary>
public static class RetrievalMetrics
{
    /// <summary>Fraction of questions whose first relevant chunk is within the top <paramref name="k"/>.</summary>
    public static double RecallAt(IReadOnlyList<int> ranks, int k) =>
        ranks.Count == 0 ? 0 : ranks.Count(r => r >= 1 && r <= k) / (double)ranks.Count;

    /// <summary>Mean reciprocal rank (a miss counts 0).</summary>
    public static double MeanReciprocalRank(IReadOnlyList<int> ranks) =>
        ranks.Count == 0 ? 0 : ranks.Sum(r => r >= 1 ? 1.0 / r : 0) / ranks.Count;
}
