namespace AgentHost.Rag.Chunking;

/// <summary>
/// Chinese-aware chunker: headings → paragraphs → sentences, packed greedily into chunks of a target token size with
/// whole-sentence overlap. A sentence is only cut when it alone exceeds the target. Chunks never cross a section.
/// </summary>
public sealed class ChineseChunker
{
    private readonly Func<string, int> _countTokens;
    private readonly ChunkingOptions _options;

    /// <summary>Creates a chunker with a token counter (e.g. the GLM tokenizer) and size options.</summary>
    public ChineseChunker(Func<string, int> countTokens, ChunkingOptions? options = null)
    {
        _countTokens = countTokens ?? throw new ArgumentNullException(nameof(countTokens));
        _options = options ?? new ChunkingOptions();
        _options.Validate();
    }

    private readonly record struct Unit(int Start, int End, int Tokens, bool StartsParagraph);

    /// <summary>Cuts <paramref name="text"/> into chunks; <paramref name="headings"/> give the section structure.</summary>
    public IReadOnlyList<TextChunk> Chunk(string text, IReadOnlyList<DocumentHeading>? headings = null)
    {
        var chunks = new List<TextChunk>();
        foreach (var (bodyStart, bodyEnd, section) in Sections(text, headings ?? []))
        {
            var units = new List<Unit>();
            foreach (var (ps, pe) in Paragraphs(text, bodyStart, bodyEnd))
            {
                bool first = true;
                foreach (var (ss, se) in TextSplitting.Sentences(text, ps, pe))
                    foreach (var unit in FitToTarget(text, ss, se))
                    {
                        units.Add(unit with { StartsParagraph = first });
                        first = false;
                    }
            }
            Pack(text, units, section, chunks);
        }
        return chunks;
    }

    private void Pack(string text, List<Unit> units, string section, List<TextChunk> chunks)
    {
        int target = _options.TargetTokens, prevEnd = 0, start = 0;
        while (prevEnd < units.Count)
        {
            int tokens = 0;
            for (int k = start; k < prevEnd; k++) tokens += units[k].Tokens;
            if (tokens + units[prevEnd].Tokens > target) { start = prevEnd; tokens = 0; } // overlap would crowd out new text

            int end = prevEnd;
            while (end < units.Count && (end == prevEnd || tokens + units[end].Tokens <= target))
                tokens += units[end++].Tokens;

            // Prefer ending at a paragraph boundary when that still leaves a reasonably full chunk.
            if (end < units.Count && !units[end].StartsParagraph)
            {
                int running = 0;
                int bestCut = -1;
                for (int k = start; k < end; k++)
                {
                    if (k > prevEnd && units[k].StartsParagraph && running >= target / 2) bestCut = k;
                    running += units[k].Tokens;
                }
                if (bestCut > 0) end = bestCut;
            }

            int s = units[start].Start, e = units[end - 1].End;
            string chunkText = text[s..e];
            chunks.Add(new TextChunk(chunks.Count, chunkText, section, s, e, _countTokens(chunkText)));

            prevEnd = end;
            if (end >= units.Count) break;
            // Next chunk starts with whole trailing sentences of this one, up to the overlap budget.
            int next = end, overlap = 0;
            while (next - 1 > start && overlap + units[next - 1].Tokens <= _options.OverlapTokens)
                overlap += units[--next].Tokens;
            start = next;
        }
    }

    /// <summary>Yields the sentence as one unit, or cut into target-sized pieces (preferring commas) when it is too long.</summary>
    private IEnumerable<Unit> FitToTarget(string text, int start, int end)
    {
        int tokens = _countTokens(text[start..end]);
        if (tokens <= _options.TargetTokens) { yield return new Unit(start, end, tokens, false); yield break; }
        while (start < end)
        {
            int remaining = _countTokens(text[start..end]);
            if (remaining <= _options.TargetTokens) { yield return new Unit(start, end, remaining, false); yield break; }
            int approxLen = Math.Max(1, (int)((long)(end - start) * _options.TargetTokens / remaining));
            int cut = Math.Min(end, start + approxLen);
            while (cut - start > 1 && _countTokens(text[start..cut]) > _options.TargetTokens) cut -= Math.Max(1, (cut - start) / 16);
            int soft = TextSplitting.LastSoftBreak(text, start + (cut - start) / 2, cut);
            if (soft > start) cut = soft;
            if (char.IsHighSurrogate(text[cut - 1]) && cut < end) cut++;
            yield return new Unit(start, cut, _countTokens(text[start..cut]), false);
            start = cut;
        }
    }

    /// <summary>
    /// Paragraphs: a new one starts after a blank line, at an indented line, or after a line ending a sentence;
    /// other line breaks are hard wraps inside a paragraph (common in Chinese .txt files).
    /// </summary>
    private static IEnumerable<(int Start, int End)> Paragraphs(string text, int start, int end)
    {
        int paraStart = -1, paraEnd = -1, i = start;
        while (i < end)
        {
            int lineEnd = text.IndexOf('\n', i, end - i);
            if (lineEnd < 0) lineEnd = end;
            var (s, e) = TextSplitting.Trim(text, i, lineEnd);
            bool blank = e <= s;
            bool indented = !blank && s > i;
            if (paraStart >= 0 && (blank || indented || TextSplitting.EndsSentence(text[paraEnd - 1])))
            {
                yield return (paraStart, paraEnd);
                paraStart = -1;
            }
            if (!blank)
            {
                if (paraStart < 0) paraStart = s;
                paraEnd = e;
            }
            i = lineEnd + 1;
        }
        if (paraStart >= 0) yield return (paraStart, paraEnd);
    }

    private static IEnumerable<(int BodyStart, int BodyEnd, string Section)> Sections(string text, IReadOnlyList<DocumentHeading> headings)
    {
        var ordered = headings.OrderBy(h => h.Offset).ToList();
        var path = new List<DocumentHeading>();
        int firstStart = ordered.Count > 0 ? ordered[0].Offset : text.Length;
        if (firstStart > 0) yield return (0, firstStart, "");
        for (int i = 0; i < ordered.Count; i++)
        {
            var h = ordered[i];
            path.RemoveAll(p => p.Level >= h.Level);
            path.Add(h);
            int bodyStart = Math.Min(text.Length, h.Offset + h.Length);
            int bodyEnd = i + 1 < ordered.Count ? ordered[i + 1].Offset : text.Length;
            if (bodyEnd > bodyStart)
                yield return (bodyStart, bodyEnd, string.Join(" > ", path.Select(p => p.Title.Trim())));
        }
    }
}
