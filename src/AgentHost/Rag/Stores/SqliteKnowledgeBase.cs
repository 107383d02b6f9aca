using System.Runtime.InteropServices;
using Glm.Engine;
using Microsoft.Data.Sqlite;

namespace AgentHost.Rag.Stores;

/// <summary>
/// A knowledge base in one SQLite file: documents, chunks (vectors as float32 BLOBs), an FTS5 table of CJK bigram/unigram
/// terms (BM25) and an FTS5 trigram table (exact substring). Each document is written in one transaction, so a killed
/// process leaves either the old or the new version of a document, never a half.
/// </summary>
public sealed partial class SqliteKnowledgeBase : IKnowledgeBase
{
    private const int SchemaVersion = 1;
    private readonly SqliteConnection _db;
    private VectorIndex? _vectorIndex;

    /// <summary>Test hook: called inside the document transaction after each chunk row is written (argument: chunk ordinal).</summary>
    internal Action<int>? AfterChunkWritten { get; set; }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>Path of the SQLite file.</summary>
    public string FilePath { get; }

    /// <summary>Opens (creating if needed) the knowledge base stored in <paramref name="filePath"/>.</summary>
    /// <exception cref="GlmException">The file is not a SQLite database or has an unknown schema.</exception>
    public SqliteKnowledgeBase(string filePath, string? name = null)
    {
        FilePath = Path.GetFullPath(filePath);
        Name = name ?? Path.GetFileNameWithoutExtension(filePath);
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = FilePath, Pooling = false }.ToString());
        try
        {
            _db.Open();
            Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
            CreateSchema();
        }
        catch (SqliteException e)
        {
            _db.Dispose();
            throw new GlmException($"{FilePath}: cannot open knowledge base ({e.Message}); expected a GlmSK SQLite knowledge-base file", e);
        }
    }

    private void CreateSchema()
    {
        Execute("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS documents (
                id INTEGER PRIMARY KEY, source TEXT NOT NULL UNIQUE, content_hash TEXT NOT NULL, format TEXT NOT NULL,
                char_count INTEGER NOT NULL, chunk_count INTEGER NOT NULL, ingested_utc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS chunks (
                id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                ordinal INTEGER NOT NULL, section TEXT NOT NULL, text TEXT NOT NULL,
                start_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL, token_count INTEGER NOT NULL, embedding BLOB,
                UNIQUE (document_id, ordinal));
            CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms, content='', contentless_delete=1);
            CREATE VIRTUAL TABLE IF NOT EXISTS chunk_trigrams USING fts5(text, content='', contentless_delete=1, tokenize='trigram');
            """);
        string? version = Meta("schema_version");
        if (version is null) SetMeta("schema_version", SchemaVersion.ToString());
        else if (version != SchemaVersion.ToString())
            throw new GlmException($"{FilePath}: knowledge-base schema version {version}; this build expects {SchemaVersion}");
    }

    /// <summary>Dimensions of the stored embeddings, or null when no embedding was stored yet.</summary>
    public int? EmbeddingDimensions => Meta("embedding_dimensions") is { } d ? int.Parse(d) : null;

    /// <inheritdoc />
    public void UpsertDocument(DocumentUpsert doc)
    {
        if (doc.Embeddings is not null && doc.Embeddings.Count != doc.Chunks.Count)
            throw new GlmException($"{doc.Source}: {doc.Embeddings.Count} embeddings for {doc.Chunks.Count} chunks; expected one per chunk");
        using var tx = _db.BeginTransaction();
        if (doc.Embeddings is { Count: > 0 }) CheckDimensions(doc.Source, doc.Embeddings[0].Length);
        DeleteDocumentRows(doc.Source);
        long documentId = Scalar<long>("""
            INSERT INTO documents (source, content_hash, format, char_count, chunk_count, ingested_utc)
            VALUES ($s, $h, $f, $c, $n, $t) RETURNING id
            """, ("$s", doc.Source), ("$h", doc.ContentHash), ("$f", doc.Format), ("$c", doc.CharCount),
            ("$n", doc.Chunks.Count), ("$t", DateTimeOffset.UtcNow.ToString("O")));

        using var writer = new ChunkWriter(this);
        for (int i = 0; i < doc.Chunks.Count; i++)
        {
            if (doc.Embeddings is not null && doc.Embeddings[i].Length != doc.Embeddings[0].Length)
                throw new GlmException($"{doc.Source}: chunk {i} embedding has {doc.Embeddings[i].Length} dims, expected {doc.Embeddings[0].Length}");
            writer.Insert(documentId, doc.Chunks[i], doc.Embeddings?[i]);
            AfterChunkWritten?.Invoke(i);
        }
        tx.Commit();
        _vectorIndex = null;
    }

    private void CheckDimensions(string source, int dims)
    {
        int? stored = EmbeddingDimensions;
        if (stored is null) SetMeta("embedding_dimensions", dims.ToString());
        else if (stored != dims)
            throw new GlmException($"{source}: embedding has {dims} dimensions but knowledge base '{Name}' ({FilePath}) holds {stored}-dimension "
                + "embeddings; use the same embedding model, or ingest into a new knowledge base");
    }

    /// <inheritdoc />
    public bool DeleteDocument(string source)
    {
        using var tx = _db.BeginTransaction();
        bool deleted = DeleteDocumentRows(source);
        tx.Commit();
        if (deleted) _vectorIndex = null;
        return deleted;
    }

    private bool DeleteDocumentRows(string source)
    {
        long? id = Scalar<long?>("SELECT id FROM documents WHERE source = $s", ("$s", source));
        if (id is null) return false;
        Execute("DELETE FROM chunk_terms WHERE rowid IN (SELECT id FROM chunks WHERE document_id = $d)", ("$d", id));
        Execute("DELETE FROM chunk_trigrams WHERE rowid IN (SELECT id FROM chunks WHERE document_id = $d)", ("$d", id));
        Execute("DELETE FROM chunks WHERE document_id = $d", ("$d", id));
        Execute("DELETE FROM documents WHERE id = $d", ("$d", id));
        return true;
    }

    /// <inheritdoc />
    public DocumentInfo? GetDocument(string source) => QueryDocuments("WHERE source = $s", ("$s", source)).FirstOrDefault();

    /// <inheritdoc />
    public IReadOnlyList<DocumentInfo> ListSources() => QueryDocuments("ORDER BY source");

    private List<DocumentInfo> QueryDocuments(string where, params (string, object?)[] parameters)
    {
        using var cmd = Command($"SELECT source, content_hash, format, char_count, chunk_count, ingested_utc FROM documents {where}", parameters);
        using var reader = cmd.ExecuteReader();
        var result = new List<DocumentInfo>();
        while (reader.Read())
            result.Add(new DocumentInfo(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3),
                reader.GetInt32(4), DateTimeOffset.Parse(reader.GetString(5))));
        return result;
    }

    /// <inheritdoc />
    public KnowledgeBaseStats Stats() => new(
        Name, FilePath,
        new[] { "", "-wal" }.Select(s => new FileInfo(FilePath + s)).Where(f => f.Exists).Sum(f => f.Length),
        (int)Scalar<long>("SELECT count(*) FROM documents"),
        (int)Scalar<long>("SELECT count(*) FROM chunks"),
        (int)Scalar<long>("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL"),
        EmbeddingDimensions,
        Scalar<long?>("SELECT sum(char_count) FROM documents") ?? 0);

    private string? Meta(string key) => Scalar<string?>("SELECT value FROM meta WHERE key = $k", ("$k", key));

    private void SetMeta(string key, string value) =>
        Execute("INSERT INTO meta (key, value) VALUES ($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value", ("$k", key), ("$v", value));

    /// <summary>Closes the database connection.</summary>
    public void Dispose() => _db.Dispose();
}
