using AgentHost.Rag.Chunking;

namespace AgentHost.Rag.Stores;

/// <summary>A stored document: its source key (absolute path), content hash and size.</summary>
public sealed record DocumentInfo(string Source, string ContentHash, string Format, int CharCount, int ChunkCount, DateTimeOffset IngestedUtc);

/// <summary>Everything needed to (re)place one document atomically.</summary>
/// <param name="Source">Document key, normally the absolute file path.</param>
/// <param name="ContentHash">SHA-256 (hex) of the file bytes; unchanged files are skipped by comparing it.</param>
/// <param name="Format">Extractor format ("txt", "md", "pdf", …).</param>
/// <param name="CharCount">Chars of extracted text.</param>
/// <param name="Chunks">The document's chunks in order.</param>
/// <param name="Embeddings">One vector per chunk, or null for a keyword-only knowledge base.</param>
public sealed record DocumentUpsert(
    string Source, string ContentHash, string Format, int CharCount,
    IReadOnlyList<TextChunk> Chunks, IReadOnlyList<ReadOnlyMemory<float>>? Embeddings);

/// <summary>Restricts a search. Null members do not filter.</summary>
/// <param name="Sources">Only chunks of these sources (exact match).</param>
/// <param name="SectionContains">Only chunks whose section path contains this text.</param>
public sealed record SearchFilter(IReadOnlyCollection<string>? Sources = null, string? SectionContains = null)
{
    /// <summary>
    /// Further conditions as SQL over the aliases <c>c</c> (chunks) and <c>d</c> (documents), each starting with "AND", with
    /// their parameters (names starting <c>$f</c>); written by the VectorData filter translator. Null: none.
    /// </summary>
    internal (string Sql, IReadOnlyList<(string Name, object? Value)> Parameters)? Conditions { get; init; }

    internal bool Matches(string source, string section) =>
        (Sources is null || Sources.Contains(source))
        && (SectionContains is null || section.Contains(SectionContains, StringComparison.Ordinal));
}

/// <summary>One retrieved chunk with what a citation needs.</summary>
/// <param name="ChunkId">Store-internal chunk id.</param>
/// <param name="Source">Document key (file path).</param>
/// <param name="Section">Heading path of the chunk.</param>
/// <param name="Text">Chunk text (without the prepended section).</param>
/// <param name="StartOffset">Char offset of the chunk in the extracted document text.</param>
/// <param name="EndOffset">Char offset one past the chunk end.</param>
/// <param name="Ordinal">Position of the chunk in its document.</param>
/// <param name="Score">Higher is better: BM25 (negated SQLite rank), cosine similarity, or RRF score for hybrid.</param>
public sealed record SearchHit(long ChunkId, string Source, string Section, string Text, int StartOffset, int EndOffset, int Ordinal, double Score);

/// <summary>Size of a knowledge base, for <c>glm kb stats</c>.</summary>
public sealed record KnowledgeBaseStats(
    string Name, string FilePath, long FileBytes, int Documents, int Chunks, int EmbeddedChunks, int? EmbeddingDimensions, long TotalChars);

/// <summary>The knowledge-base operations the host calls for <c>glm ingest / ask / kb</c>.</summary>
public interface IKnowledgeBase : IDisposable
{
    /// <summary>Name of the knowledge base.</summary>
    string Name { get; }

    /// <summary>Replaces (or inserts) a document and all its chunks in one transaction.</summary>
    void UpsertDocument(DocumentUpsert document);

    /// <summary>Removes a document and its chunks; false when it was not stored.</summary>
    bool DeleteDocument(string source);

    /// <summary>The stored document with this source key, or null.</summary>
    DocumentInfo? GetDocument(string source);

    /// <summary>All stored documents, ordered by source.</summary>
    IReadOnlyList<DocumentInfo> ListSources();

    /// <summary>BM25 keyword search over CJK bigrams/unigrams and Latin words; a query in double quotes is an exact substring (≥ 3 chars).</summary>
    IReadOnlyList<SearchHit> KeywordSearch(string query, int top, SearchFilter? filter = null);

    /// <summary>Brute-force cosine search over stored embeddings.</summary>
    IReadOnlyList<SearchHit> VectorSearch(ReadOnlyMemory<float> queryVector, int top, SearchFilter? filter = null);

    /// <summary>Keyword and (when <paramref name="queryVector"/> is given) vector search fused by reciprocal rank.</summary>
    IReadOnlyList<SearchHit> HybridSearch(string query, ReadOnlyMemory<float>? queryVector, int top, SearchFilter? filter = null);

    /// <summary>Counts and sizes.</summary>
    KnowledgeBaseStats Stats();
}
