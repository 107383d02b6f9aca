using System.Runtime.InteropServices;
using AgentHost.Rag.Chunking;
using Glm.Engine;
using Microsoft.Data.Sqlite;

namespace AgentHost.Rag.Stores;

/// <summary>One stored chunk row as the record-level (VectorData) adapter reads and writes it.</summary>
/// <param name="Id">Store-assigned row id (ignored on upsert).</param>
/// <param name="Source">Document key.</param>
/// <param name="Chunk">Ordinal, text, section, offsets and token count.</param>
/// <param name="Embedding">The stored vector, or null (not stored, or not requested).</param>
internal sealed record ChunkRow(long Id, string Source, TextChunk Chunk, float[]? Embedding);

/// <summary>Record-level access used by <see cref="VectorData.SqliteKnowledgeChunkCollection"/>: single chunks instead of whole documents.</summary>
public sealed partial class SqliteKnowledgeBase
{
    /// <summary>Format recorded for documents created or edited chunk by chunk (their content hash is empty, so the next ingest of the file re-indexes it).</summary>
    internal const string RecordFormat = "records";

    private const string RowColumns = "c.id, d.source, c.ordinal, c.text, c.section, c.start_offset, c.end_offset, c.token_count";

    /// <summary>Chunks matching <paramref name="filter"/>, ordered by <paramref name="orderBy"/> (SQL over aliases c / d; default source, ordinal).</summary>
    internal List<ChunkRow> ReadChunks(SearchFilter? filter, int skip, int top, bool includeVectors, string? orderBy = null)
    {
        var (filterSql, filterParams) = FilterSql(filter);
        using var cmd = Command($"""
            SELECT {RowColumns}{(includeVectors ? ", c.embedding" : "")} FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE 1 {filterSql} ORDER BY {orderBy ?? "d.source, c.ordinal"} LIMIT $top OFFSET $skip
            """, [("$top", top), ("$skip", skip), .. filterParams]);
        return ReadRows(cmd, includeVectors);
    }

    /// <summary>The chunks with these row ids (any order; missing ids are left out).</summary>
    internal List<ChunkRow> ReadChunksById(IReadOnlyCollection<long> ids, bool includeVectors)
    {
        if (ids.Count == 0) return [];
        using var cmd = Command($"""
            SELECT {RowColumns}{(includeVectors ? ", c.embedding" : "")} FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE c.id IN ({string.Join(',', ids)})
            """);
        return ReadRows(cmd, includeVectors);
    }

    private static List<ChunkRow> ReadRows(SqliteCommand cmd, bool includeVectors)
    {
        using var reader = cmd.ExecuteReader();
        var rows = new List<ChunkRow>();
        while (reader.Read())
        {
            var chunk = new TextChunk(reader.GetInt32(2), reader.GetString(3), reader.GetString(4), reader.GetInt32(5), reader.GetInt32(6), reader.GetInt32(7));
            float[]? vector = includeVectors && !reader.IsDBNull(8) ? MemoryMarshal.Cast<byte, float>((byte[])reader.GetValue(8)).ToArray() : null;
            rows.Add(new ChunkRow(reader.GetInt64(0), reader.GetString(1), chunk, vector));
        }
        return rows;
    }

    /// <summary>
    /// Inserts or replaces chunks (keyed by source and ordinal) in one transaction. A missing document row is created with format
    /// <see cref="RecordFormat"/>; every touched document gets an empty content hash and its chunk count recomputed.
    /// </summary>
    /// <exception cref="GlmException">A vector's dimensions differ from the knowledge base's.</exception>
    internal void UpsertChunks(IReadOnlyList<ChunkRow> rows)
    {
        using var tx = _db.BeginTransaction();
        using var writer = new ChunkWriter(this);
        var touched = new HashSet<long>();
        foreach (var row in rows)
        {
            if (row.Embedding is { } v) CheckDimensions($"{row.Source}#{row.Chunk.Ordinal}", v.Length);
            long documentId = Scalar<long?>("SELECT id FROM documents WHERE source = $s", ("$s", row.Source))
                ?? Scalar<long>("""
                    INSERT INTO documents (source, content_hash, format, char_count, chunk_count, ingested_utc)
                    VALUES ($s, '', $f, 0, 0, $t) RETURNING id
                    """, ("$s", row.Source), ("$f", RecordFormat), ("$t", DateTimeOffset.UtcNow.ToString("O")));
            if (Scalar<long?>("SELECT id FROM chunks WHERE document_id = $d AND ordinal = $o", ("$d", documentId), ("$o", row.Chunk.Ordinal)) is { } old)
                DeleteChunkRow(old);
            writer.Insert(documentId, row.Chunk, row.Embedding);
            touched.Add(documentId);
        }
        foreach (long id in touched)
            Execute("""
                UPDATE documents SET content_hash = '', ingested_utc = $t,
                    chunk_count = (SELECT count(*) FROM chunks WHERE document_id = $d),
                    char_count = max(char_count, (SELECT coalesce(max(end_offset), 0) FROM chunks WHERE document_id = $d))
                WHERE id = $d
                """, ("$d", id), ("$t", DateTimeOffset.UtcNow.ToString("O")));
        tx.Commit();
        _vectorIndex = null;
    }

    /// <summary>Deletes chunks by (source, ordinal) in one transaction; a document left without chunks is removed. Returns how many were deleted.</summary>
    internal int DeleteChunks(IEnumerable<(string Source, int Ordinal)> keys)
    {
        using var tx = _db.BeginTransaction();
        int deleted = 0;
        foreach (var (source, ordinal) in keys)
        {
            long? documentId = Scalar<long?>("SELECT id FROM documents WHERE source = $s", ("$s", source));
            if (documentId is null) continue;
            if (Scalar<long?>("SELECT id FROM chunks WHERE document_id = $d AND ordinal = $o", ("$d", documentId), ("$o", ordinal)) is not { } chunkId) continue;
            DeleteChunkRow(chunkId);
            deleted++;
            long left = Scalar<long>("SELECT count(*) FROM chunks WHERE document_id = $d", ("$d", documentId));
            if (left == 0) Execute("DELETE FROM documents WHERE id = $d", ("$d", documentId));
            else Execute("UPDATE documents SET content_hash = '', chunk_count = $n WHERE id = $d", ("$d", documentId), ("$n", left));
        }
        tx.Commit();
        if (deleted > 0) _vectorIndex = null;
        return deleted;
    }

    /// <summary>Row ids of the chunks that pass <paramref name="filter"/> (used to restrict the in-memory vector scan).</summary>
    private HashSet<long> FilteredChunkIds(SearchFilter filter)
    {
        var (filterSql, filterParams) = FilterSql(filter);
        using var cmd = Command($"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE 1 {filterSql}", filterParams);
        using var reader = cmd.ExecuteReader();
        var ids = new HashSet<long>();
        while (reader.Read()) ids.Add(reader.GetInt64(0));
        return ids;
    }

    private void DeleteChunkRow(long chunkId)
    {
        Execute("DELETE FROM chunk_terms WHERE rowid = $id", ("$id", chunkId));
        Execute("DELETE FROM chunk_trigrams WHERE rowid = $id", ("$id", chunkId));
        Execute("DELETE FROM chunks WHERE id = $id", ("$id", chunkId));
    }

    /// <summary>Prepared statements that write one chunk row and its two FTS rows (inside the caller's transaction).</summary>
    private sealed class ChunkWriter : IDisposable
    {
        private readonly SqliteCommand _chunk, _terms, _trigrams;

        public ChunkWriter(SqliteKnowledgeBase kb)
        {
            _chunk = kb.Command("""
                INSERT INTO chunks (document_id, ordinal, section, text, start_offset, end_offset, token_count, embedding)
                VALUES ($d, $o, $s, $t, $a, $b, $k, $e) RETURNING id
                """);
            _terms = kb.Command("INSERT INTO chunk_terms (rowid, terms) VALUES ($id, $x)");
            _trigrams = kb.Command("INSERT INTO chunk_trigrams (rowid, text) VALUES ($id, $x)");
        }

        public long Insert(long documentId, TextChunk chunk, ReadOnlyMemory<float>? embedding)
        {
            object blob = embedding is { } e ? MemoryMarshal.AsBytes(e.Span).ToArray() : DBNull.Value;
            SetParameters(_chunk, ("$d", documentId), ("$o", chunk.Ordinal), ("$s", chunk.Section), ("$t", chunk.Text),
                ("$a", chunk.StartOffset), ("$b", chunk.EndOffset), ("$k", chunk.TokenCount), ("$e", blob));
            long chunkId = (long)_chunk.ExecuteScalar()!;
            SetParameters(_terms, ("$id", chunkId), ("$x", CjkTerms.ForIndex(chunk.RetrievalText)));
            _terms.ExecuteNonQuery();
            SetParameters(_trigrams, ("$id", chunkId), ("$x", chunk.RetrievalText));
            _trigrams.ExecuteNonQuery();
            return chunkId;
        }

        public void Dispose()
        {
            _chunk.Dispose();
            _terms.Dispose();
            _trigrams.Dispose();
        }
    }
}
