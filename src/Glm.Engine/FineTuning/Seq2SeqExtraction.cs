using System.Text;
using Glm.Engine.Modeling;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;
using static TorchSharp.torch;

namespace Glm.Engine.FineTuning;

/// <summary>
/// Model-ranked extraction: the hypothesis is the source clause that the fine-tuned seq2seq model itself finds the most
/// likely filler of the blank — mean NLL per Part-B token (clause tokens and eop) under teacher forcing, the way GLM scores
/// cloze candidates. A small model that writes poor free text can still rank the source's own clauses; what it can produce is
/// then limited to one clause (the oracle clause reaches 52.6 ROUGE-L on CSL titles, the first clause 32.1).
/// </summary>
public static class Seq2SeqExtraction
{
    /// <summary>Characters that end a clause. A '.' between two digits (3.5) does not.</summary>
    private const string ClauseEnds = "。，；：！？,;:!?\n";

    /// <summary>
    /// The clauses of <paramref name="source"/>, in order, trimmed, without repeats, each at least <paramref name="minChars"/>
    /// characters long (punctuation excluded); the whole source when no clause qualifies.
    /// </summary>
    public static IReadOnlyList<string> Clauses(string source, int minChars = 4)
    {
        ArgumentNullException.ThrowIfNull(source);
        var clauses = new List<string>();
        var current = new StringBuilder();
        for (int i = 0; i < source.Length; i++)
        {
            char c = source[i];
            bool decimalPoint = c == '.' && i > 0 && i + 1 < source.Length && char.IsAsciiDigit(source[i - 1]) && char.IsAsciiDigit(source[i + 1]);
            if (ClauseEnds.Contains(c) || (c is '.' or '．' && !decimalPoint)) { Add(); continue; }
            current.Append(c);
        }
        Add();
        if (clauses.Count == 0 && source.Trim().Length > 0) clauses.Add(source.Trim());
        return clauses;

        void Add()
        {
            string clause = current.ToString().Trim();
            current.Clear();
            if (clause.Length >= minChars && !clauses.Contains(clause)) clauses.Add(clause);
        }
    }

    /// <summary>
    /// Mean NLL per Part-B token (candidate tokens and eop) of every candidate as the filler of <paramref name="partA"/>'s
    /// blank, one batched forward pass; lower is more likely. Candidates are cut to the room the context leaves.
    /// </summary>
    public static double[] MeanNll(GlmModel model, int[] partA, IReadOnlyList<int[]> candidates)
    {
        if (model.Network is not GlmBlockModel network || model.BlankTokens is not { } tokens)
            throw new GlmException($"{model.Source}: extraction scores blank fillers; it needs an original-GLM model with [gMASK], sop and eop.");
        if (candidates.Count == 0) return [];
        int room = model.MaxContext - partA.Length - 1;
        if (room < 1) throw new GlmException($"a Part A of {partA.Length} tokens leaves no room in the model's {model.MaxContext} positions for a filler.");
        var samples = candidates.Select(c => Seq2SeqEncoder.Collate(new Seq2SeqSample(partA, c.Length > room ? c[..room] : c, ""), tokens)).ToList();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var batch = BlankInfillingBatch.FromSamples(samples, BlankInfillingMode.Document);
        var (nll, rows) = GlmTrainingStep.ScoredNll(network, batch);
        var values = nll.cpu().data<float>().ToArray();
        var sums = new double[candidates.Count];
        var counts = new int[candidates.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            int k = (int)(rows[i] / batch.Length);
            sums[k] += values[i];
            counts[k]++;
        }
        return sums.Select((s, k) => s / Math.Max(1, counts[k])).ToArray();
    }

    /// <summary>
    /// The clause of <paramref name="source"/> with the highest character ROUGE-L F against <paramref name="reference"/> (the
    /// first on ties): the extractive training label — a model fine-tuned on it learns which clause to copy.
    /// </summary>
    public static string OracleClause(string source, string reference)
    {
        var clauses = Clauses(source);
        if (clauses.Count == 0) return "";
        return clauses.MaxBy(c => TextMetrics.RougeL(c, reference).F)!;
    }

    /// <summary>
    /// The contiguous piece of <paramref name="source"/> (at most <paramref name="maxChars"/> characters, not starting or ending
    /// in whitespace) with the highest ROUGE-L F against <paramref name="reference"/>, the earliest and then shortest on ties.
    /// LCS is over code units with whitespace skipped, so it can differ from <see cref="TextMetrics.RougeL"/> (NFKC) on
    /// full-width characters; as a training label that does not matter.
    /// </summary>
    public static string OracleSpan(string source, string reference, int maxChars = 64)
    {
        var refUnits = reference.Where(c => !char.IsWhiteSpace(c)).ToArray();
        if (refUnits.Length == 0 || source.Length == 0) return "";
        double bestF = 0;
        (int Start, int Length) best = (0, 0);
        var previous = new int[refUnits.Length + 1];
        var current = new int[refUnits.Length + 1];
        for (int start = 0; start < source.Length; start++)
        {
            if (char.IsWhiteSpace(source[start])) continue;
            Array.Clear(previous);
            int units = 0;
            // One source character at a time: previous[m] = LCS(source[start..end], reference) once the row is complete.
            for (int end = start; end < source.Length && end - start < maxChars; end++)
            {
                char c = source[end];
                if (char.IsWhiteSpace(c)) continue;
                units++;
                current[0] = 0;
                for (int j = 1; j <= refUnits.Length; j++)
                    current[j] = refUnits[j - 1] == c ? previous[j - 1] + 1 : Math.Max(previous[j], current[j - 1]);
                (previous, current) = (current, previous);
                int lcs = previous[refUnits.Length];
                if (lcs == 0) continue;
                double p = (double)lcs / units, r = (double)lcs / refUnits.Length, f = 2 * p * r / (p + r);
                if (f > bestF) { bestF = f; best = (start, end - start + 1); }
            }
        }
        return source.Substring(best.Start, best.Length);
    }

    /// <summary>
    /// The examples with each target replaced by its <see cref="OracleClause"/> (<paramref name="spans"/> false) or
    /// <see cref="OracleSpan"/> (true) — labels for training an extractive model; an example with no such piece keeps its target.
    /// </summary>
    public static List<Seq2SeqExample> WithOracleTargets(IEnumerable<Seq2SeqExample> examples, bool spans = false) =>
        examples.Select(e => (spans ? OracleSpan(e.Source, e.Target) : OracleClause(e.Source, e.Target)) is { Length: > 0 } piece ? e with { Target = piece } : e).ToList();

    /// <summary>The clause of <paramref name="source"/> with the lowest <see cref="MeanNll"/> given <paramref name="partA"/>.</summary>
    public static string BestClause(GlmModel model, int[] partA, string source)
    {
        var tokenizer = model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer; extraction needs one to encode clauses.");
        var clauses = Clauses(source);
        if (clauses.Count <= 1) return clauses.Count == 1 ? clauses[0] : "";
        var encoded = clauses.Select(c => tokenizer.Encode(c).ToArray()).ToList();
        var scores = MeanNll(model, partA, encoded);
        int best = 0;
        for (int k = 1; k < scores.Length; k++) if (scores[k] < scores[best]) best = k;
        return clauses[best];
    }
}
