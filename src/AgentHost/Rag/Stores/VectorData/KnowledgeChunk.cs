using System.Globalization;
using AgentHost.Rag.Chunking;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>
/// One chunk of a knowledge base as a Microsoft.Extensions.VectorData record. The key is <c>"{Source}#{Ordinal}"</c>
/// (<see cref="MakeKey"/>), so it stays stable when a document is re-ingested. The vector dimensions in the attribute are
/// nominal: a knowledge base fixes its dimensions with the first stored vector and every later vector must match it.
/// </summary>
public sealed class KnowledgeChunk
{
    /// <summary>Nominal vector size (the hashing embedder's default); the knowledge base's own size is what is checked.</summary>
    public const int NominalDimensions = 256;

    /// <summary><c>"{Source}#{Ordinal}"</c>; must agree with <see cref="Source"/> and <see cref="Ordinal"/> on upsert.</summary>
    [VectorStoreKey]
    public string Key { get; set; } = "";

    /// <summary>Document key (normally the absolute file path).</summary>
    [VectorStoreData(IsIndexed = true)]
    public string Source { get; set; } = "";

    /// <summary>0-based position of the chunk in its document.</summary>
    [VectorStoreData(IsIndexed = true)]
    public int Ordinal { get; set; }

    /// <summary>Heading path of the chunk ("第一章 > 第一节"), empty when the document has no headings.</summary>
    [VectorStoreData(IsIndexed = true)]
    public string Section { get; set; } = "";

    /// <summary>Chunk text; keyword-indexed (BM25 over CJK bigrams/unigrams and words) together with the section.</summary>
    [VectorStoreData(IsFullTextIndexed = true)]
    public string Text { get; set; } = "";

    /// <summary>Char offset of the chunk in the extracted document text.</summary>
    [VectorStoreData]
    public int StartOffset { get; set; }

    /// <summary>Char offset one past the chunk end.</summary>
    [VectorStoreData]
    public int EndOffset { get; set; }

    /// <summary>Tokens in <see cref="Text"/> according to the chunker's counter.</summary>
    [VectorStoreData]
    public int TokenCount { get; set; }

    /// <summary>The chunk's embedding (cosine similarity, exact scan), or null for a keyword-only chunk or when vectors were not requested.</summary>
    [VectorStoreVector(NominalDimensions, DistanceFunction = DistanceFunction.CosineSimilarity, IndexKind = IndexKind.Flat)]
    public ReadOnlyMemory<float>? Embedding { get; set; }

    /// <summary>Store-assigned row id, filled on reads and ignored on upsert (not part of the record schema).</summary>
    public long RowId { get; set; }

    /// <summary>The key of chunk <paramref name="ordinal"/> of <paramref name="source"/>.</summary>
    public static string MakeKey(string source, int ordinal) => source + "#" + ordinal.ToString(CultureInfo.InvariantCulture);

    /// <summary>Splits a key made by <see cref="MakeKey"/> at its last '#'; false when it has no non-negative ordinal there.</summary>
    public static bool TryParseKey(string key, out string source, out int ordinal)
    {
        int hash = key.LastIndexOf('#');
        source = hash > 0 ? key[..hash] : "";
        ordinal = -1;
        return hash > 0 && int.TryParse(key.AsSpan(hash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ordinal);
    }

    /// <summary>The search hit the answering code works with.</summary>
    public SearchHit ToSearchHit(double score) => new(RowId, Source, Section, Text, StartOffset, EndOffset, Ordinal, score);

    internal static KnowledgeChunk FromRow(ChunkRow row) => new()
    {
        Key = MakeKey(row.Source, row.Chunk.Ordinal), Source = row.Source, Ordinal = row.Chunk.Ordinal, Section = row.Chunk.Section,
        Text = row.Chunk.Text, StartOffset = row.Chunk.StartOffset, EndOffset = row.Chunk.EndOffset, TokenCount = row.Chunk.TokenCount,
        Embedding = row.Embedding is { } v ? new ReadOnlyMemory<float>(v) : (ReadOnlyMemory<float>?)null, RowId = row.Id,
    };

    internal ChunkRow ToRow() => new(0, Source, new TextChunk(Ordinal, Text, Section, StartOffset, EndOffset, TokenCount), Embedding?.ToArray());
}
