using System.Text;
using AgentHost.Rag.Ingestion;
using DocumentFormat.OpenXml;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Wordprocessing;
using Glm.Engine;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace AgentHost.Tests.Rag;

public class ExtractionTests
{
    static ExtractionTests() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    private const string Chinese = "第一章 总则\n为了规范知识库的建设，提高检索质量，特制定本办法。本办法适用于所有中文文档的导入与管理工作。"
        + "各部门应当按照统一的格式整理资料，确保内容真实、准确、完整。\n";

    public static TheoryData<string, int> Encodings => new()
    {
        { "utf-8-bom", 0 }, { "utf-8", 0 }, { "utf-16le", 1200 }, { "utf-16be", 1201 }, { "gbk", 936 }, { "gb18030", 54936 },
    };

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Decodes_chinese_text_in_each_encoding(string name, int codePage)
    {
        byte[] bytes = name switch
        {
            "utf-8-bom" => [.. Encoding.UTF8.GetPreamble(), .. Encoding.UTF8.GetBytes(Chinese)],
            "utf-8" => Encoding.UTF8.GetBytes(Chinese),
            _ => [.. Encoding.GetEncoding(codePage).GetPreamble(), .. Encoding.GetEncoding(codePage).GetBytes(Chinese)],
        };
        var decoded = TextDecoder.Decode("a.txt", bytes);
        Assert.Equal(Chinese, decoded.Text);
    }

    [Fact]
    public void Decodes_big5_traditional_chinese()
    {
        const string traditional = "為了規範知識庫的建設，提高檢索質量，特制定本辦法。本辦法適用於所有中文文檔的導入與管理工作。"
            + "各部門應當按照統一的格式整理資料，確保內容真實、準確、完整。臺灣與香港的讀者習慣使用繁體字。";
        var decoded = TextDecoder.Decode("big5.txt", Encoding.GetEncoding(950).GetBytes(traditional));
        Assert.Equal(traditional, decoded.Text);
        Assert.Equal("big5", decoded.EncodingName);
    }

    [Fact]
    public void Decodes_utf16_without_bom()
    {
        const string text = "Hello 世界, plain text file.\n";
        Assert.Equal(text, TextDecoder.Decode("u16.txt", Encoding.Unicode.GetBytes(text)).Text);
    }

    [Fact]
    public void Invalid_utf8_byte_is_reported_with_file_and_offset()
    {
        const string prefix = "正常的中文内容，后面有一个坏字节：";
        byte[] bytes = [.. Encoding.UTF8.GetBytes(prefix), 0xFF, .. Encoding.UTF8.GetBytes("结尾。这是一段足够长的正常中文文本，用来让编码检测认为它是UTF-8。")];
        var e = Assert.Throws<GlmException>(() => TextDecoder.Decode("/docs/bad.txt", bytes));
        Assert.Contains("/docs/bad.txt", e.Message);
        Assert.Contains($"byte offset {Encoding.UTF8.GetByteCount(prefix)} (bytes 0xFF)", e.Message);
    }

    [Fact]
    public void Empty_and_binary_files_are_rejected_clearly()
    {
        Assert.Contains("file is empty", Assert.Throws<GlmException>(() => TextDecoder.Decode("e.txt", [])).Message);
        var random = new byte[4096];
        new Random(7).NextBytes(random);
        var e = Assert.Throws<GlmException>(() => TextDecoder.Decode("/x/blob.txt", random));
        Assert.Contains("/x/blob.txt", e.Message);
        Assert.Contains("binary", e.Message);
    }

    [Fact]
    public void Markdown_headings_become_sections_and_markup_is_dropped()
    {
        const string md = "# 总则\n\n为了**规范**知识库，特制定[本办法](http://x)。\n\n## 适用范围\n\n- 中文文档\n- 英文 `docs`\n\n```\ncode 块\n```\n";
        var doc = new MarkdownExtractor().Extract("a.md", Encoding.UTF8.GetBytes(md));
        Assert.Equal(["总则", "适用范围"], doc.Headings.Select(h => h.Title));
        Assert.Equal([1, 2], doc.Headings.Select(h => h.Level));
        Assert.Contains("为了规范知识库，特制定本办法。", doc.Text);
        Assert.Contains("英文 docs", doc.Text);
        Assert.Contains("code 块", doc.Text);
        Assert.DoesNotContain("**", doc.Text);
        Assert.All(doc.Headings, h => Assert.Equal(h.Title, doc.Text.Substring(h.Offset, h.Length)));
    }

    [Fact]
    public void Html_blocks_and_headings_are_extracted_without_scripts()
    {
        const string html = "<html><head><title>T</title><script>var x='隐藏';</script></head><body><h1>标题一</h1><p>第一段 <b>加粗</b> 文本。</p>"
            + "<ul><li><p>列表项</p></li></ul><h2>标题二</h2><table><tr><td>单元格</td></tr></table></body></html>";
        var doc = new HtmlExtractor().Extract("a.html", Encoding.UTF8.GetBytes(html));
        Assert.Equal(["标题一", "标题二"], doc.Headings.Select(h => h.Title));
        Assert.Equal("标题一\n\n第一段 加粗 文本。\n\n列表项\n\n标题二\n\n单元格", doc.Text);
    }

    [Fact]
    public void Pdf_text_is_extracted_per_page()
    {
        var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        builder.AddPage(UglyToad.PdfPig.Content.PageSize.A4).AddText("Retrieval augmented generation works.", 12, new UglyToad.PdfPig.Core.PdfPoint(50, 700), font);
        builder.AddPage(UglyToad.PdfPig.Content.PageSize.A4).AddText("Second page about Qdrant.", 12, new UglyToad.PdfPig.Core.PdfPoint(50, 700), font);
        var doc = new PdfExtractor().Extract("a.pdf", builder.Build());
        Assert.Equal(["page 1", "page 2"], doc.Headings.Select(h => h.Title));
        Assert.Contains("Retrieval augmented generation works.", doc.Text);
        Assert.Contains("Second page about Qdrant.", doc.Text);
    }

    [Fact]
    public void Corrupt_pdf_gives_a_clear_error()
    {
        var e = Assert.Throws<GlmException>(() => new PdfExtractor().Extract("/d/broken.pdf", Encoding.ASCII.GetBytes("%PDF-1.7\nthis is not really a pdf")));
        Assert.Contains("/d/broken.pdf: not a readable PDF", e.Message);
    }

    [Fact]
    public void Docx_headings_and_paragraphs_are_extracted()
    {
        var doc = new DocxExtractor().Extract("a.docx", MakeDocx(("Heading1", "第一章 概述"), (null, "知识库用于问答。"), ("Heading2", "1.1 背景"), (null, "背景说明。")));
        Assert.Equal(["第一章 概述", "1.1 背景"], doc.Headings.Select(h => h.Title));
        Assert.Equal([1, 2], doc.Headings.Select(h => h.Level));
        Assert.Equal("第一章 概述\n\n知识库用于问答。\n\n1.1 背景\n\n背景说明。", doc.Text);
    }

    internal static byte[] MakeDocx(params (string? Style, string Text)[] paragraphs)
    {
        using var stream = new MemoryStream();
        using (var word = WordprocessingDocument.Create(stream, WordprocessingDocumentType.Document))
        {
            var main = word.AddMainDocumentPart();
            var body = new Body();
            foreach (var (style, text) in paragraphs)
            {
                var p = new Paragraph(new Run(new Text(text)));
                if (style is not null) p.PrependChild(new ParagraphProperties(new ParagraphStyleId { Val = style }));
                body.Append(p);
            }
            main.Document = new Document(body);
        }
        return stream.ToArray();
    }
}
