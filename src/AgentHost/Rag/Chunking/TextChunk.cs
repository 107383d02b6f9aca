namespace AgentHost.Rag.Chunking;

/// <summary>A heading found in a document's plain text, used to split it into sections.</summary>
/// <param name="Offset">Char offset of the heading line in the document text.</param>
/// <param name="Length">Length of the heading line (excluded from section bodies).</param>
/// <param name="Level">1 = top level; deeper headings have larger numbers.</param>
/// <param name="Title">The heading text.</param>
public sealed record DocumentHeading(int Offset, int Length, int Level, string Title);

/// <summary>One retrieval unit cut from a document.</summary>
/// <param name="Ordinal">0-based position of the chunk in its document.</param>
/// <param name="Text">The chunk text, exactly <c>documentText[StartOffset..EndOffset]</c>.</param>
/// <param name="Section">Heading path ("第一章 > 第一节"), empty when the text has no headings.</param>
/// <param name="StartOffset">Char offset of the first char in the document text (for citations).</param>
/// <param name="EndOffset">Char offset one past the last char.</param>
/// <param name="TokenCount">Tokens in <see cref="Text"/> according to the chunker's token counter.</param>
public sealed record TextChunk(int Ordinal, string Text, string Section, int StartOffset, int EndOffset, int TokenCount)
{
    /// <summary>The text that is embedded and keyword-indexed: section title prepended so that retrieval sees the context.</summary>
    public string RetrievalText => Section.Length == 0 ? Text : Section + "\n" + Text;
}

/// <summary>Chunk size settings, in tokens of the supplied counter.</summary>
/// <param name="TargetTokens">Chunks are filled up to this many tokens.</param>
/// <param name="OverlapTokens">Up to this many tokens of whole trailing sentences are repeated at the start of the next chunk.</param>
public sealed record ChunkingOptions(int TargetTokens = 256, int OverlapTokens = 32)
{
    /// <summary>Throws a <see cref="Glm.Engine.GlmException"/> when the sizes are unusable.</summary>
    public void Validate()
    {
        if (TargetTokens < 8)
            throw new Glm.Engine.GlmException($"chunk size {TargetTokens} tokens is too small; expected at least 8");
        if (OverlapTokens < 0 || OverlapTokens >= TargetTokens)
            throw new Glm.Engine.GlmException($"chunk overlap {OverlapTokens} tokens is invalid; expected 0 ≤ overlap < chunk size {TargetTokens}");
    }
}
