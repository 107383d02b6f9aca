using System.Text;
using AgentHost.Rag.Chunking;
using Glm.Engine;

namespace AgentHost.Rag.Ingestion;

/// <summary>Plain text of one document with its headings (offsets into <see cref="Text"/>).</summary>
public sealed record ExtractedDocument(string Text, IReadOnlyList<DocumentHeading> Headings, string Format, string? EncodingName = null);

/// <summary>Turns a file's bytes into plain text with headings. One implementation per format.</summary>
public interface IDocumentExtractor
{
    /// <summary>Lower-case extensions handled, with the dot (".txt").</summary>
    IReadOnlyCollection<string> Extensions { get; }

    /// <summary>Extracts text; throws <see cref="GlmException"/> naming <paramref name="path"/> on bad content.</summary>
    ExtractedDocument Extract(string path, byte[] content);
}

/// <summary>Builds document text block by block, recording heading offsets; blocks are separated by blank lines.</summary>
internal sealed class DocumentTextBuilder
{
    private readonly StringBuilder _text = new();
    private readonly List<DocumentHeading> _headings = [];

    public void AddHeading(int level, string title)
    {
        title = Normalize(title);
        if (title.Length == 0) return;
        Separate();
        _headings.Add(new DocumentHeading(_text.Length, title.Length, level, title));
        _text.Append(title);
    }

    public void AddParagraph(string paragraph)
    {
        paragraph = paragraph.Trim();
        if (paragraph.Length == 0) return;
        Separate();
        _text.Append(paragraph.Replace("\r\n", "\n"));
    }

    private void Separate()
    {
        if (_text.Length > 0) _text.Append("\n\n");
    }

    private static string Normalize(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    public ExtractedDocument Build(string path, string format, string? encoding = null, string emptyHint = "")
    {
        if (_text.Length == 0) throw new GlmException($"{path}: no text found in this {format} file{emptyHint}");
        return new ExtractedDocument(_text.ToString(), _headings, format, encoding);
    }
}

/// <summary>.txt: encoding detection, Markdown-style and Chinese chapter headings.</summary>
public sealed class PlainTextExtractor : IDocumentExtractor
{
    /// <inheritdoc />
    public IReadOnlyCollection<string> Extensions { get; } = [".txt", ".text"];

    /// <inheritdoc />
    public ExtractedDocument Extract(string path, byte[] content)
    {
        var decoded = TextDecoder.Decode(path, content);
        if (string.IsNullOrWhiteSpace(decoded.Text)) throw new GlmException($"{path}: file holds only whitespace; expected text");
        return new ExtractedDocument(decoded.Text, TextSplitting.DetectHeadings(decoded.Text), "txt", decoded.EncodingName);
    }
}
