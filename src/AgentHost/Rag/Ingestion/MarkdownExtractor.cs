using System.Text;
using Markdig;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace AgentHost.Rag.Ingestion;

/// <summary>.md via Markdig: headings become sections; inline markup is dropped, code blocks kept as text.</summary>
public sealed class MarkdownExtractor : IDocumentExtractor
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    /// <inheritdoc />
    public IReadOnlyCollection<string> Extensions { get; } = [".md", ".markdown"];

    /// <inheritdoc />
    public ExtractedDocument Extract(string path, byte[] content)
    {
        var decoded = TextDecoder.Decode(path, content);
        var document = Markdown.Parse(decoded.Text, Pipeline);
        var builder = new DocumentTextBuilder();
        foreach (var block in document.Descendants<LeafBlock>())
        {
            if (block is HeadingBlock heading) builder.AddHeading(heading.Level, InlineText(heading.Inline));
            else if (block is CodeBlock code) builder.AddParagraph(code.Lines.ToString());
            else if (block.Inline is not null) builder.AddParagraph(InlineText(block.Inline));
        }
        return builder.Build(path, "md", decoded.EncodingName);
    }

    private static string InlineText(ContainerInline? inline)
    {
        if (inline is null) return "";
        var sb = new StringBuilder();
        foreach (var node in inline.Descendants())
        {
            switch (node)
            {
                case LiteralInline literal: sb.Append(literal.Content.ToString()); break;
                case CodeInline code: sb.Append(code.Content); break;
                case LineBreakInline: sb.Append('\n'); break;
                case AutolinkInline link: sb.Append(link.Url); break;
            }
        }
        return sb.ToString();
    }
}
