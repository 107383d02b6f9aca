using System.Text.RegularExpressions;

namespace AgentHost.Rag.Chunking;

/// <summary>Sentence splitting and heading detection for Chinese and Latin plain text.</summary>
public static partial class TextSplitting
{
    private const string SentenceEnds = "。！？；…!?;";
    private const string ClosingMarks = "”’」』）》)\"'】";

    /// <summary>Sentences of <c>text[start..end]</c> as trimmed (start, end) ranges; terminators and closing quotes stay with their sentence.</summary>
    public static IEnumerable<(int Start, int End)> Sentences(string text, int start, int end)
    {
        int s = start;
        for (int i = start; i < end; i++)
        {
            char c = text[i];
            bool isEnd = SentenceEnds.Contains(c)
                || (c == '.' && (i + 1 >= end || char.IsWhiteSpace(text[i + 1])));
            if (!isEnd) continue;
            int j = i + 1;
            while (j < end && (SentenceEnds.Contains(text[j]) || text[j] == '.' || ClosingMarks.Contains(text[j]))) j++;
            var (ts, te) = Trim(text, s, j);
            if (te > ts) yield return (ts, te);
            s = j;
            i = j - 1;
        }
        var (rs, re) = Trim(text, s, end);
        if (re > rs) yield return (rs, re);
    }

    /// <summary>True for sentence terminators and closing quotes/brackets.</summary>
    public static bool EndsSentence(char c) => SentenceEnds.Contains(c) || ClosingMarks.Contains(c) || c == '.';

    /// <summary>Offset just after the last comma-like mark or space in <c>text[from..to]</c>, or -1.</summary>
    public static int LastSoftBreak(string text, int from, int to)
    {
        for (int i = to - 1; i >= from; i--)
            if ("，、,：: \t".Contains(text[i])) return i + 1;
        return -1;
    }

    /// <summary>Narrows a range to exclude surrounding whitespace (including the ideographic space).</summary>
    public static (int Start, int End) Trim(string text, int start, int end)
    {
        while (start < end && char.IsWhiteSpace(text[start])) start++;
        while (end > start && char.IsWhiteSpace(text[end - 1])) end--;
        return (start, end);
    }

    [GeneratedRegex(@"^(?:(?<hashes>#{1,6})[ \t]+(?<md>\S.*?)|[ \t\u3000]*(?<cn>第[一二三四五六七八九十百千万零〇两\d]+(?<unit>[卷部篇集章回节])(?:[ \t\u3000].{0,40})?))[ \t]*\r?$", RegexOptions.Multiline)]
    private static partial Regex HeadingLine();

    /// <summary>Headings in plain text: Markdown <c># title</c> lines and Chinese chapter lines (第一章…, 第三回…, 第二节…).</summary>
    public static IReadOnlyList<DocumentHeading> DetectHeadings(string text)
    {
        var result = new List<DocumentHeading>();
        foreach (Match m in HeadingLine().Matches(text))
        {
            int length = m.Value.TrimEnd('\r').Length;
            if (m.Groups["hashes"].Success)
                result.Add(new DocumentHeading(m.Index, length, m.Groups["hashes"].Length, m.Groups["md"].Value.Trim()));
            else
            {
                int level = m.Groups["unit"].Value switch { "卷" or "部" or "篇" or "集" => 1, "节" => 3, _ => 2 };
                result.Add(new DocumentHeading(m.Index, length, level, m.Groups["cn"].Value.Trim()));
            }
        }
        return result;
    }
}
