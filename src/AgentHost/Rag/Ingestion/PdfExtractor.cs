using Glm.Engine;
using UglyToad.PdfPig;
using UglyToad.PdfPig.DocumentLayoutAnalysis.TextExtractor;

namespace AgentHost.Rag.Ingestion;

/// <summary>.pdf via PdfPig: one section per page ("page N") so citations can name the page.</summary>
public sealed class PdfExtractor : IDocumentExtractor
{
    /// <inheritdoc />
    public IReadOnlyCollection<string> Extensions { get; } = [".pdf"];

    /// <inheritdoc />
    public ExtractedDocument Extract(string path, byte[] content)
    {
        if (content.Length == 0) throw new GlmException($"{path}: file is empty; expected a PDF");
        var builder = new DocumentTextBuilder();
        try
        {
            using var pdf = PdfDocument.Open(content);
            foreach (var page in pdf.GetPages())
            {
                string text = ContentOrderTextExtractor.GetText(page);
                if (string.IsNullOrWhiteSpace(text)) continue;
                builder.AddHeading(1, $"page {page.Number}");
                builder.AddParagraph(text);
            }
        }
        catch (Exception e) when (e is not GlmException)
        {
            throw new GlmException($"{path}: not a readable PDF ({e.GetType().Name}: {e.Message}); expected a valid PDF file", e);
        }
        return builder.Build(path, "pdf", emptyHint: " (no text layer; scanned PDFs need OCR first)");
    }
}
