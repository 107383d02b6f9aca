using AngleSharp.Dom;
using AngleSharp.Html.Parser;

namespace AgentHost.Rag.Ingestion;

/// <summary>.html via AngleSharp: h1–h6 become sections; paragraphs, list items, cells and preformatted blocks become text.</summary>
public sealed class HtmlExtractor : IDocumentExtractor
{
    private const string BlockSelector = "h1,h2,h3,h4,h5,h6,p,li,pre,blockquote,td,th,dt,dd,figcaption,caption";

    /// <inheritdoc />
    public IReadOnlyCollection<string> Extensions { get; } = [".html", ".htm"];

    /// <inheritdoc />
    public ExtractedDocument Extract(string path, byte[] content)
    {
        var decoded = TextDecoder.Decode(path, content);
        var document = new HtmlParser().ParseDocument(decoded.Text);
        foreach (var junk in document.QuerySelectorAll("script,style,noscript,template").ToList()) junk.Remove();
        var builder = new DocumentTextBuilder();
        var title = document.Title?.Trim();
        var blocks = document.Body?.QuerySelectorAll(BlockSelector).ToList() ?? [];
        var blockSet = blocks.ToHashSet();
        int emitted = 0;
        foreach (var element in blocks)
        {
            // A <p> inside an <li> would be emitted twice: keep only outermost blocks.
            if (element.Ancestors<IElement>().Any(blockSet.Contains)) continue;
            string tag = element.LocalName;
            if (tag.Length == 2 && tag[0] == 'h' && char.IsAsciiDigit(tag[1])) builder.AddHeading(tag[1] - '0', element.TextContent);
            else builder.AddParagraph(tag == "pre" ? element.TextContent : Collapse(element.TextContent));
            emitted++;
        }
        if (emitted == 0 && document.Body is not null)
        {
            if (!string.IsNullOrEmpty(title)) builder.AddHeading(1, title);
            builder.AddParagraph(document.Body.TextContent);
        }
        return builder.Build(path, "html", decoded.EncodingName);
    }

    private static string Collapse(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
}
