using System.Text;

namespace Glm.Engine.FineTuning;

/// <summary>Precision, recall and F-measure of one comparison (or their means over a corpus).</summary>
/// <param name="Precision">Matched units / hypothesis units.</param>
/// <param name="Recall">Matched units / reference units.</param>
/// <param name="F">2PR / (P + R); 0 when both are 0.</param>
public sealed record PrfScore(double Precision, double Recall, double F);

/// <summary>Corpus BLEU with its parts (sacreBLEU's report: score, 1–4-gram precisions, brevity penalty, lengths).</summary>
/// <param name="Score">BLEU × 100.</param>
/// <param name="Precisions">Clipped n-gram precisions × 100, n = 1..max order.</param>
/// <param name="BrevityPenalty">exp(1 − r/c) when c &lt; r, else 1 (0 when c = 0).</param>
/// <param name="HypothesisLength">c: hypothesis tokens over the corpus.</param>
/// <param name="ReferenceLength">r: reference tokens over the corpus.</param>
public sealed record BleuScore(double Score, IReadOnlyList<double> Precisions, double BrevityPenalty, long HypothesisLength, long ReferenceLength);

/// <summary>Smoothing of zero n-gram counts in <see cref="TextMetrics.CorpusBleu"/> (sacreBLEU's names).</summary>
public enum BleuSmoothing
{
    /// <summary>No smoothing: any order without a match gives BLEU 0 (sacreBLEU <c>--smooth-method none</c>).</summary>
    None,
    /// <summary>sacreBLEU <c>exp</c>: the k-th order with zero matches gets precision 1 / (2^k · total).</summary>
    Exp,
}

/// <summary>
/// Character-level text metrics for Chinese generation tasks, pure C#:
/// <list type="bullet">
/// <item>Units: <see cref="Characters"/> — Unicode NFKC normalisation (full-width letters, digits and punctuation such as
/// <c>，</c> <c>；</c> <c>（</c> become their half-width forms, so CSL's mixed <c>,</c>/<c>，</c> compare equal), then every
/// whitespace character is removed and each remaining code point is one unit. Case is kept; <c>。</c> and <c>.</c> stay different.</item>
/// <item>ROUGE-L (<see cref="RougeL"/>): LCS of the unit sequences; P = LCS/|hyp|, R = LCS/|ref|, F = 2PR/(P+R) (β = 1, as the
/// Python <c>rouge</c> package used by Chinese benchmarks); corpus value = mean over examples (<see cref="MeanRougeL"/>).</item>
/// <item>BLEU (<see cref="CorpusBleu"/>): sacreBLEU's corpus BLEU on the same units (one token per character, so Latin words
/// and numbers are split per character, unlike sacreBLEU's <c>zh</c> tokenizer): clipped 1–4-gram counts summed over the
/// corpus, geometric mean of the precisions, brevity penalty exp(1 − r/c) when c &lt; r; no smoothing by default.</item>
/// <item>Perplexity: exp(total NLL / total scored tokens) (<see cref="Perplexity"/>).</item>
/// </list>
/// </summary>
public static class TextMetrics
{
    /// <summary>The evaluation units of <paramref name="text"/>: NFKC-normalised code points, whitespace removed.</summary>
    public static int[] Characters(string text)
    {
        string normalised = text.Normalize(NormalizationForm.FormKC);
        var units = new List<int>(normalised.Length);
        foreach (var rune in normalised.EnumerateRunes())
            if (!Rune.IsWhiteSpace(rune)) units.Add(rune.Value);
        return units.ToArray();
    }

    /// <summary>Length of the longest common subsequence of <paramref name="a"/> and <paramref name="b"/> (O(|a|·|b|) time, O(|b|) memory).</summary>
    public static int LongestCommonSubsequence(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        if (a.Count == 0 || b.Count == 0) return 0;
        var previous = new int[b.Count + 1];
        var current = new int[b.Count + 1];
        for (int i = 1; i <= a.Count; i++)
        {
            for (int j = 1; j <= b.Count; j++)
                current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : Math.Max(previous[j], current[j - 1]);
            (previous, current) = (current, previous);
        }
        return previous[b.Count];
    }

    /// <summary>Character-level ROUGE-L of one hypothesis against one reference (0 when either is empty).</summary>
    public static PrfScore RougeL(string hypothesis, string reference)
    {
        int[] h = Characters(hypothesis), r = Characters(reference);
        int lcs = LongestCommonSubsequence(h, r);
        if (lcs == 0) return new PrfScore(0, 0, 0);
        double p = (double)lcs / h.Length, rc = (double)lcs / r.Length;
        return new PrfScore(p, rc, 2 * p * rc / (p + rc));
    }

    /// <summary>Mean P, R and F of <see cref="RougeL"/> over aligned hypothesis/reference pairs (0 for an empty corpus).</summary>
    public static PrfScore MeanRougeL(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references)
    {
        CheckAligned(hypotheses, references);
        if (hypotheses.Count == 0) return new PrfScore(0, 0, 0);
        double p = 0, r = 0, f = 0;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var s = RougeL(hypotheses[i], references[i]);
            p += s.Precision; r += s.Recall; f += s.F;
        }
        return new PrfScore(p / hypotheses.Count, r / hypotheses.Count, f / hypotheses.Count);
    }

    /// <summary>
    /// Corpus BLEU (sacreBLEU's algorithm, one reference per hypothesis) over character units: for n = 1..<paramref name="maxOrder"/>
    /// the n-gram counts of each hypothesis are clipped by the reference's, matches and totals are summed over the corpus,
    /// p_n = matches/total; BLEU = BP · exp(Σ log p_n / N) × 100, BP = 1 if c &gt; r else exp(1 − r/c). Without smoothing any
    /// p_n = 0 (including an order with no hypothesis n-grams) gives 0.
    /// </summary>
    public static BleuScore CorpusBleu(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references, int maxOrder = 4, BleuSmoothing smoothing = BleuSmoothing.None)
    {
        CheckAligned(hypotheses, references);
        if (maxOrder < 1) throw new ArgumentOutOfRangeException(nameof(maxOrder), maxOrder, "expected ≥ 1");
        var matches = new long[maxOrder];
        var totals = new long[maxOrder];
        long c = 0, r = 0;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            int[] h = Characters(hypotheses[i]), rf = Characters(references[i]);
            c += h.Length;
            r += rf.Length;
            for (int n = 1; n <= maxOrder; n++)
            {
                var refCounts = NGramCounts(rf, n);
                foreach (var (gram, count) in NGramCounts(h, n))
                {
                    totals[n - 1] += count;
                    if (refCounts.TryGetValue(gram, out int inRef)) matches[n - 1] += Math.Min(count, inRef);
                }
            }
        }
        var precisions = new double[maxOrder];
        double logSum = 0;
        bool zero = false;
        double smoothFactor = 1;
        for (int n = 0; n < maxOrder; n++)
        {
            if (matches[n] > 0) precisions[n] = 100.0 * matches[n] / totals[n];
            else if (smoothing == BleuSmoothing.Exp && totals[n] > 0)
            {
                smoothFactor *= 2;
                precisions[n] = 100.0 / (smoothFactor * totals[n]);
            }
            else { precisions[n] = 0; zero = true; }
            if (!zero) logSum += Math.Log(precisions[n] / 100.0);
        }
        double bp = c == 0 ? 0 : c > r ? 1 : Math.Exp(1 - (double)r / c);
        double score = zero || c == 0 ? 0 : 100 * bp * Math.Exp(logSum / maxOrder);
        return new BleuScore(score, precisions, bp, c, r);
    }

    /// <summary>exp(<paramref name="totalNll"/> / <paramref name="tokens"/>): per-token perplexity of summed natural-log NLL (NaN without tokens).</summary>
    public static double Perplexity(double totalNll, long tokens) => tokens <= 0 ? double.NaN : Math.Exp(totalNll / tokens);

    private static Dictionary<string, int> NGramCounts(int[] units, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var sb = new StringBuilder();
        for (int i = 0; i + n <= units.Length; i++)
        {
            sb.Clear();
            for (int k = 0; k < n; k++) sb.Append(units[i + k]).Append(',');
            string key = sb.ToString();
            counts[key] = counts.TryGetValue(key, out int v) ? v + 1 : 1;
        }
        return counts;
    }

    private static void CheckAligned(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references)
    {
        if (hypotheses.Count != references.Count)
            throw new ArgumentException($"{hypotheses.Count} hypotheses but {references.Count} references; expected one reference per hypothesis.");
    }
}
