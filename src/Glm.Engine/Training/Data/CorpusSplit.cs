using System.Text;

namespace Glm.Engine.Training.Data;

/// <summary>One document of the pretraining corpus.</summary>
/// <param name="Source">Path relative to the corpus root ('/'-separated), plus <c>#title</c> for <c>=== DOC</c> chapters.</param>
/// <param name="Text">Document text (LF line ends).</param>
public sealed record CorpusDocument(string Source, string Text);

/// <summary>
/// Deterministic train/validation split of a corpus folder (<c>../shared/data/corpus</c>): every <c>**/*.txt</c> except
/// <c>LICENSE*</c>, in ordinal path order. Files with <c>=== DOC </c> header lines are split into chapters and their last
/// chapters (together at most <c>fraction</c> of the file's characters, at least one) are held out; any other file is one
/// document whose tail from the first line break at or after <c>(1 − fraction)</c> of its characters is held out.
/// Files under a "hard-wrapped" folder (default <c>luxun</c>) have the wrapped lines of each paragraph joined.
/// </summary>
public sealed class CorpusSplit
{
    /// <summary>Header prefix of a chapter in the classical-modern file.</summary>
    public const string DocumentHeader = "=== DOC ";

    /// <summary>Training documents.</summary>
    public required IReadOnlyList<CorpusDocument> Train { get; init; }
    /// <summary>Held-out documents.</summary>
    public required IReadOnlyList<CorpusDocument> Validation { get; init; }

    /// <summary>Corpus text files under <paramref name="corpusRoot"/> (licence files excluded), ordinal order of relative path.</summary>
    /// <exception cref="GlmException">The folder does not exist or holds no text file.</exception>
    public static IReadOnlyList<string> ListCorpusFiles(string corpusRoot)
    {
        if (!Directory.Exists(corpusRoot))
            throw new GlmException($"Corpus folder '{corpusRoot}' does not exist; expected a folder of UTF-8 .txt files (e.g. ../shared/data/corpus).");
        var files = Directory.EnumerateFiles(corpusRoot, "*.txt", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith("LICENSE", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => Path.GetRelativePath(corpusRoot, f).Replace('\\', '/'), StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0) throw new GlmException($"Corpus folder '{corpusRoot}' holds no .txt file (LICENSE* files are ignored).");
        return files;
    }

    /// <summary>Reads and splits every corpus file.</summary>
    /// <param name="corpusRoot">Corpus folder.</param>
    /// <param name="validationFraction">Held-out share of each file, in (0, 0.5].</param>
    /// <param name="hardWrappedFolders">Top-level folder names whose files are hard-wrapped; null = { "luxun" }.</param>
    public static CorpusSplit Load(string corpusRoot, double validationFraction = 0.02, IReadOnlyCollection<string>? hardWrappedFolders = null)
    {
        if (validationFraction is <= 0 or > 0.5)
            throw new GlmException($"validationFraction = {validationFraction} is invalid: expected a value in (0, 0.5].");
        hardWrappedFolders ??= ["luxun"];
        var train = new List<CorpusDocument>();
        var validation = new List<CorpusDocument>();
        foreach (var file in ListCorpusFiles(corpusRoot))
        {
            string relative = Path.GetRelativePath(corpusRoot, file).Replace('\\', '/');
            bool wrapped = hardWrappedFolders.Contains(relative.Split('/')[0]);
            string text = File.ReadAllText(file, Encoding.UTF8).Replace("\r\n", "\n");
            var (t, v) = SplitFile(relative, text, validationFraction, wrapped);
            train.AddRange(t);
            validation.AddRange(v);
        }
        return new CorpusSplit { Train = train, Validation = validation };
    }

    /// <summary>Splits the text of one file by the rule described on the class.</summary>
    internal static (List<CorpusDocument> Train, List<CorpusDocument> Validation) SplitFile(string source, string text, double fraction, bool hardWrapped)
    {
        if (hardWrapped) text = JoinWrappedLines(text);
        var train = new List<CorpusDocument>();
        var validation = new List<CorpusDocument>();
        if (text.StartsWith(DocumentHeader, StringComparison.Ordinal) || text.Contains("\n" + DocumentHeader, StringComparison.Ordinal))
        {
            var docs = SplitHeaderDocuments(source, text);
            long budget = (long)(fraction * text.Length), held = 0;
            int firstHeld = docs.Count;
            // Hold out trailing chapters while they fit the budget; always at least one, never the first.
            for (int i = docs.Count - 1; i >= 1; i--)
            {
                if (firstHeld < docs.Count && held + docs[i].Text.Length > budget) break;
                held += docs[i].Text.Length;
                firstHeld = i;
            }
            train.AddRange(docs.Take(firstHeld));
            validation.AddRange(docs.Skip(firstHeld));
            return (train, validation);
        }
        int cut = text.IndexOf('\n', (int)((1 - fraction) * text.Length));
        if (cut < 0) { train.Add(new CorpusDocument(source, text)); return (train, validation); }
        train.Add(new CorpusDocument(source, text[..cut]));
        string tail = text[(cut + 1)..];
        if (tail.Trim().Length > 0) validation.Add(new CorpusDocument(source, tail));
        return (train, validation);
    }

    private static List<CorpusDocument> SplitHeaderDocuments(string source, string text)
    {
        var docs = new List<CorpusDocument>();
        string? title = null;
        var body = new StringBuilder();
        void Flush()
        {
            string t = body.ToString().Trim('\n');
            if (t.Length > 0) docs.Add(new CorpusDocument(title is null ? source : $"{source}#{title}", t));
            body.Clear();
        }
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(DocumentHeader, StringComparison.Ordinal)) { Flush(); title = line[DocumentHeader.Length..].Trim(); }
            else body.Append(line).Append('\n');
        }
        Flush();
        return docs;
    }

    /// <summary>Joins lines of a paragraph: a line that does not start with whitespace continues the previous non-blank line.</summary>
    internal static string JoinWrappedLines(string text)
    {
        var lines = text.Split('\n');
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            bool continuation = i > 0 && line.Length > 0 && !char.IsWhiteSpace(line[0]) && lines[i - 1].Trim().Length > 0;
            if (i > 0 && !continuation) sb.Append('\n');
            sb.Append(line);
        }
        return sb.ToString();
    }
}
