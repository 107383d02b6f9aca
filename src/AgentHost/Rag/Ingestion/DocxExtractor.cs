using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Wordprocessing;
using Glm.Engine;

namespace AgentHost.Rag.Ingestion;

/// <summary>.docx via DocumentFormat.OpenXml: paragraphs styled Title/Heading1–9 become sections.</summary>
public sealed class DocxExtractor : IDocumentExtractor
{
    /// <inheritdoc />
    public IReadOnlyCollection<string> Extensions { get; } = [".docx"];

    /// <inheritdoc />
    public ExtractedDocument Extract(string path, byte[] content)
    {
        if (content.Length == 0) throw new GlmException($"{path}: file is empty; expected a .docx document");
        var builder = new DocumentTextBuilder();
        try
        {
            using var stream = new MemoryStream(content, writable: false);
            using var doc = WordprocessingDocument.Open(stream, false);
            var body = doc.MainDocumentPart?.Document?.Body
                ?? throw new GlmException($"{path}: .docx has no document body");
            foreach (var paragraph in body.Descendants<Paragraph>())
            {
                string text = paragraph.InnerText;
                int? level = HeadingLevel(paragraph.ParagraphProperties?.ParagraphStyleId?.Val?.Value);
                if (level is int l) builder.AddHeading(l, text);
                else builder.AddParagraph(text);
            }
        }
        catch (Exception e) when (e is not GlmException)
        {
            throw new GlmException($"{path}: not a readable .docx ({e.GetType().Name}: {e.Message}); expected a Word 2007+ document", e);
        }
        return builder.Build(path, "docx");
    }

    private static int? HeadingLevel(string? styleId)
    {
        if (styleId is null) return null;
        if (styleId.Equals("Title", StringComparison.OrdinalIgnoreCase)) return 1;
        if (styleId.StartsWith("Heading", StringComparison.OrdinalIgnoreCase)
            && int.TryParse(styleId.AsSpan(7), out int level) && level is >= 1 and <= 9)
            return level;
        return null;
    }
}
