using System.Text.Json;

namespace Glm.Engine.FineTuning;

/// <summary>One source/target pair from a data file, with where it came from.</summary>
/// <param name="Source">Input text (Part A).</param>
/// <param name="Target">Text to generate (Part B).</param>
/// <param name="File">Source file.</param>
/// <param name="Line">1-based line number.</param>
public sealed record Seq2SeqExample(string Source, string Target, string File, int Line);

/// <summary>
/// Which fields of a data file hold the source and the target. JSONL: property names. TSV: header names (the first line is
/// a header when it names both fields) or 1-based column numbers ("2", "3"). The defaults ("source", "target") also read
/// headerless TSV by position — source = second-to-last column, target = last column (CSL <c>ts</c>: <c>to title⇥abstract⇥title</c>)
/// — and TSV whose first line is a header made only of known names (source/target/src/tgt/classical/modern/abstract/title/
/// text/summary/input/output, e.g. the classical-modern files' <c>classical⇥modern</c>), which is then skipped.
/// </summary>
/// <param name="Source">Field of the source text.</param>
/// <param name="Target">Field of the target text.</param>
public sealed record Seq2SeqFields(string Source = Seq2SeqFields.DefaultSource, string Target = Seq2SeqFields.DefaultTarget)
{
    /// <summary>Default source field name.</summary>
    public const string DefaultSource = "source";
    /// <summary>Default target field name.</summary>
    public const string DefaultTarget = "target";

    /// <summary>Header cells recognised as a header row when the default fields are used.</summary>
    public static readonly IReadOnlySet<string> KnownHeaderNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "source", "target", "src", "tgt", "classical", "modern", "abstract", "title", "text", "summary", "input", "output",
    };

    /// <summary>True when neither field was changed from the defaults.</summary>
    public bool IsDefault => Source == DefaultSource && Target == DefaultTarget;
}

/// <summary>
/// Reads seq2seq data: JSONL (<c>.jsonl</c>/<c>.json</c>: one object per line with string fields, by default
/// <c>{"source":…,"target":…}</c>) or TSV (anything else; see <see cref="Seq2SeqFields"/> for the column rules). Blank lines are
/// skipped. Every problem (bad JSON, missing or non-string field, too few columns, empty source or target) is collected and
/// reported together as <c>file:line: …</c> before anything is trained.
/// </summary>
public static class Seq2SeqData
{
    /// <summary>Reads and validates <paramref name="path"/>; throws one <see cref="GlmException"/> listing all problems.</summary>
    public static IReadOnlyList<Seq2SeqExample> Load(string path, Seq2SeqFields? fields = null)
    {
        fields ??= new Seq2SeqFields();
        if (!File.Exists(path)) throw new GlmException($"{path}: seq2seq data file not found; expected JSONL {{\"source\":…,\"target\":…}} or TSV.");
        bool json = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        var examples = new List<Seq2SeqExample>();
        var errors = new List<string>();
        TsvColumns? columns = null;
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            string at = $"{path}:{lineNo}";
            string? source, target;
            if (json)
            {
                if (!ReadJson(raw, at, fields, errors, out source, out target)) continue;
            }
            else
            {
                var cells = raw.Split('\t');
                if (columns is null)
                {
                    columns = TsvColumns.Resolve(cells, fields, at);
                    if (columns.FirstLineIsHeader) continue;
                }
                int needed = columns.ColumnsNeeded;
                if (cells.Length < needed)
                {
                    errors.Add($"{at}: {cells.Length} column(s); expected at least {needed} (tab-separated, {columns.Describe})");
                    continue;
                }
                source = cells[columns.SourceIndex(cells.Length)];
                target = cells[columns.TargetIndex(cells.Length)];
            }
            if (string.IsNullOrWhiteSpace(source)) { errors.Add($"{at}: field '{fields.Source}' (source) is empty"); continue; }
            if (string.IsNullOrWhiteSpace(target)) { errors.Add($"{at}: field '{fields.Target}' (target) is empty"); continue; }
            examples.Add(new Seq2SeqExample(source.Trim(), target.Trim(), path, lineNo));
        }
        if (errors.Count > 0)
            throw new GlmException($"{path}: {errors.Count} malformed line(s):\n" + string.Join("\n", errors.Take(20)) + (errors.Count > 20 ? $"\n… and {errors.Count - 20} more" : ""));
        if (examples.Count == 0) throw new GlmException($"{path}: no examples; expected at least one source/target line.");
        return examples;
    }

    private static bool ReadJson(string raw, string at, Seq2SeqFields fields, List<string> errors, out string? source, out string? target)
    {
        source = target = null;
        try
        {
            using var doc = JsonDocument.Parse(raw);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{at}: expected a JSON object with \"{fields.Source}\" and \"{fields.Target}\"; got {root.ValueKind}");
                return false;
            }
            string? Field(string name)
            {
                if (!root.TryGetProperty(name, out var v)) { errors.Add($"{at}: field \"{name}\" is missing"); return null; }
                if (v.ValueKind != JsonValueKind.String) { errors.Add($"{at}: field \"{name}\" is {v.ValueKind}, value {Clip(v.GetRawText())}; expected a string"); return null; }
                return v.GetString();
            }
            source = Field(fields.Source);
            target = Field(fields.Target);
            return source is not null && target is not null;
        }
        catch (JsonException ex)
        {
            errors.Add($"{at}: invalid JSON ({ex.Message})");
            return false;
        }
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    /// <summary>Where source and target sit in a TSV row.</summary>
    private sealed record TsvColumns(int Source, int Target, bool FromEnd, bool FirstLineIsHeader, string Describe)
    {
        public int ColumnsNeeded => FromEnd ? 2 : Math.Max(Source, Target) + 1;
        public int SourceIndex(int cells) => FromEnd ? cells - 2 : Source;
        public int TargetIndex(int cells) => FromEnd ? cells - 1 : Target;

        public static TsvColumns Resolve(string[] first, Seq2SeqFields fields, string at)
        {
            var names = first.Select(c => c.Trim()).ToArray();
            int s = Array.FindIndex(names, n => string.Equals(n, fields.Source, StringComparison.OrdinalIgnoreCase));
            int t = Array.FindIndex(names, n => string.Equals(n, fields.Target, StringComparison.OrdinalIgnoreCase));
            if (s >= 0 && t >= 0) return new TsvColumns(s, t, false, true, $"header columns '{fields.Source}' and '{fields.Target}'");
            if (fields.IsDefault)
            {
                bool header = names.Length >= 2 && names.All(Seq2SeqFields.KnownHeaderNames.Contains);
                return new TsvColumns(-1, -1, true, header, "source = second-to-last column, target = last column");
            }
            bool sn = int.TryParse(fields.Source, out int sc) && sc >= 1, tn = int.TryParse(fields.Target, out int tc) && tc >= 1;
            if (sn && tn) return new TsvColumns(sc - 1, tc - 1, false, false, $"source = column {sc}, target = column {tc}");
            throw new GlmException($"{at}: TSV header [{string.Join(", ", names.Select(n => $"'{Clip(n)}'"))}] does not name " +
                $"source field '{fields.Source}' and target field '{fields.Target}'; expected both names in the first line, or 1-based column numbers.");
        }
    }
}
