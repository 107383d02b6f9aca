using System.Globalization;
using System.Text;

namespace AgentHost.Rag.Stores;

/// <summary>
/// Space-separated index terms for FTS5's unicode61 tokenizer: CJK runs become unigrams and bigrams, Latin/digit runs
/// become lower-case words. This gives BM25 over CJK bigrams, and lets 1–2 char queries match (the trigram table cannot).
/// </summary>
public static class CjkTerms
{
    /// <summary>Terms to index for a text: unigrams, bigrams and words.</summary>
    public static string ForIndex(string text)
    {
        var sb = new StringBuilder(text.Length * 3);
        foreach (var (run, cjk) in Runs(text))
        {
            if (!cjk) { Append(sb, run.ToLowerInvariant()); continue; }
            for (int i = 0; i < run.Length; i++)
            {
                Append(sb, run.Substring(i, 1));
                if (i + 1 < run.Length) Append(sb, run.Substring(i, 2));
            }
        }
        return sb.ToString();
    }

    /// <summary>Distinct query terms: bigrams of CJK runs (the unigram for a 1-char run) and words.</summary>
    public static IReadOnlyList<string> ForQuery(string text)
    {
        var terms = new List<string>();
        foreach (var (run, cjk) in Runs(text))
        {
            if (!cjk) terms.Add(run.ToLowerInvariant());
            else if (run.Length == 1) terms.Add(run);
            else for (int i = 0; i + 1 < run.Length; i++) terms.Add(run.Substring(i, 2));
        }
        return terms.Distinct().ToList();
    }

    /// <summary>An FTS5 MATCH expression OR-ing the query terms, or null when the query has none.</summary>
    public static string? MatchExpression(string query)
    {
        var terms = ForQuery(query);
        return terms.Count == 0 ? null : string.Join(" OR ", terms.Select(t => "\"" + t + "\""));
    }

    private static void Append(StringBuilder sb, string term)
    {
        if (sb.Length > 0) sb.Append(' ');
        sb.Append(term);
    }

    internal static bool IsCjk(char c) => c is >= '\u3400' and <= '\u9FFF' or >= '\uF900' and <= '\uFAFF'
        or >= '\u3040' and <= '\u30FF' or >= '\uAC00' and <= '\uD7AF';

    private static IEnumerable<(string Run, bool Cjk)> Runs(string text)
    {
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (IsCjk(c))
            {
                int s = i;
                while (i < text.Length && IsCjk(text[i])) i++;
                yield return (text[s..i], true);
            }
            else if (char.IsLetterOrDigit(c) || char.IsSurrogate(c))
            {
                int s = i;
                while (i < text.Length && !IsCjk(text[i]) && (char.IsLetterOrDigit(text[i]) || char.IsSurrogate(text[i])
                    || CharUnicodeInfo.GetUnicodeCategory(text[i]) == UnicodeCategory.NonSpacingMark)) i++;
                yield return (text[s..i], false);
            }
            else i++;
        }
    }
}
