using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Glm.Engine;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>Options of <see cref="SqliteKnowledgeChunkCollection"/>.</summary>
public sealed class SqliteKnowledgeChunkCollectionOptions : VectorStoreCollectionOptions
{
    /// <summary>Default options: no embedding generator, the <see cref="KnowledgeChunk"/> attributes as schema.</summary>
    public SqliteKnowledgeChunkCollectionOptions() { }

    /// <summary>Options passed to the embedding generator when a search value is a string (e.g. a query instruction prefix).</summary>
    public EmbeddingGenerationOptions? QueryEmbeddingOptions { get; set; }
}

/// <summary>
/// A knowledge base (one SQLite file, see <see cref="SqliteKnowledgeBase"/>) as a Microsoft.Extensions.VectorData collection of
/// <see cref="KnowledgeChunk"/> records: exact cosine search over the stored vectors, and keyword (FTS5 BM25) + vector hybrid
/// search fused by reciprocal rank. Filters: see <see cref="ChunkFilterTranslator"/>. Thread-safe (one lock around the connection).
/// </summary>
public sealed partial class SqliteKnowledgeChunkCollection : VectorStoreCollection<string, KnowledgeChunk>, IKeywordHybridSearchable<KnowledgeChunk>
{
    /// <summary>The <see cref="VectorStoreCollectionMetadata.VectorStoreSystemName"/> reported (OpenTelemetry's name for SQLite).</summary>
    public const string SystemName = "sqlite";

    private readonly KnowledgeBaseCatalog? _catalog;
    private readonly bool _ownsStore;
    private readonly Lock _gate = new();
    private readonly IEmbeddingGenerator<string, Embedding<float>>? _generator;
    private readonly EmbeddingGenerationOptions? _queryOptions;
    private SqliteKnowledgeBase? _store;
    private bool _disposed;

    /// <summary>The knowledge base <paramref name="name"/> of <paramref name="catalog"/>; opened on first use, created by <see cref="EnsureCollectionExistsAsync"/>.</summary>
    /// <exception cref="GlmException">The name is not a valid knowledge-base name.</exception>
    /// <exception cref="ArgumentException">The options' definition or embedding generator does not fit <see cref="KnowledgeChunk"/>.</exception>
    public SqliteKnowledgeChunkCollection(KnowledgeBaseCatalog catalog, string name, SqliteKnowledgeChunkCollectionOptions? options = null)
    {
        _catalog = catalog;
        catalog.PathFor(name);
        Name = name;
        _ownsStore = true;
        (_generator, _queryOptions) = Configure(options);
    }

    /// <summary>
    /// A collection over a knowledge base the caller opened and keeps owning (it is not disposed with the collection, and
    /// <see cref="EnsureCollectionDeletedAsync"/> is not supported). Shares its connection and in-memory vector index.
    /// </summary>
    public SqliteKnowledgeChunkCollection(SqliteKnowledgeBase knowledgeBase, SqliteKnowledgeChunkCollectionOptions? options = null)
    {
        _store = knowledgeBase;
        Name = knowledgeBase.Name;
        (_generator, _queryOptions) = Configure(options);
    }

    /// <inheritdoc />
    public override string Name { get; }

    private string StorePath => _catalog?.PathFor(Name) ?? _store!.FilePath;

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return Task.FromResult(_store is not null || File.Exists(StorePath));
        }
    }

    /// <inheritdoc />
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _store ??= Wrap("EnsureCollectionExists", () => _catalog!.Open(Name));
        }
        return Task.CompletedTask;
    }

    /// <summary>Closes and deletes the knowledge-base file (and its WAL/SHM files).</summary>
    /// <exception cref="NotSupportedException">The collection wraps a knowledge base opened by the caller.</exception>
    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        if (!_ownsStore)
            throw new NotSupportedException($"collection '{Name}' wraps a knowledge base opened by its caller ({StorePath}); delete it with KnowledgeBaseCatalog.Delete or SqliteKnowledgeVectorStore");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _store?.Dispose();
            _store = null;
            SqliteConnection.ClearAllPools();
            Wrap("EnsureCollectionDeleted", () => _catalog!.Delete(Name));
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override Task<KnowledgeChunk?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!KnowledgeChunk.TryParseKey(key, out _, out _)) return Task.FromResult<KnowledgeChunk?>(null);
        var filter = ChunkFilterTranslator.Translate(r => r.Key == key);
        var row = Run("Get", kb => kb.ReadChunks(filter, 0, 1, options?.IncludeVectors == true)).FirstOrDefault();
        return Task.FromResult(row is null ? null : KnowledgeChunk.FromRow(row));
    }

    /// <summary>Up to <paramref name="top"/> records matching <paramref name="filter"/>, by source and ordinal unless <see cref="FilteredRecordRetrievalOptions{TRecord}.OrderBy"/> says otherwise.</summary>
    public override async IAsyncEnumerable<KnowledgeChunk> GetAsync(Expression<Func<KnowledgeChunk, bool>> filter, int top,
        FilteredRecordRetrievalOptions<KnowledgeChunk>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        CheckPaging(top, options?.Skip ?? 0);
        var storeFilter = ChunkFilterTranslator.Translate(filter);
        string? orderBy = OrderBySql(options?.OrderBy);
        var rows = Run("Get", kb => kb.ReadChunks(storeFilter, options?.Skip ?? 0, top, options?.IncludeVectors == true, orderBy));
        foreach (var row in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return KnowledgeChunk.FromRow(row);
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task DeleteAsync(string key, CancellationToken cancellationToken = default) => DeleteAsync([key], cancellationToken);

    /// <summary>Deletes the records in one transaction; unknown keys are ignored, a document left without chunks is removed.</summary>
    public override Task DeleteAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var parsed = new List<(string, int)>();
        foreach (var key in keys)
        {
            ArgumentNullException.ThrowIfNull(key, nameof(keys));
            if (KnowledgeChunk.TryParseKey(key, out string source, out int ordinal)) parsed.Add((source, ordinal));
        }
        if (parsed.Count > 0) Run("Delete", kb => kb.DeleteChunks(parsed));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override Task UpsertAsync(KnowledgeChunk record, CancellationToken cancellationToken = default) => UpsertAsync([record], cancellationToken);

    /// <summary>Inserts or replaces the records in one transaction (the document rows they belong to are created as needed).</summary>
    /// <exception cref="ArgumentException">A record's key does not match its source and ordinal, or a field is invalid.</exception>
    /// <exception cref="VectorStoreException">A vector's dimensions differ from the knowledge base's.</exception>
    public override Task UpsertAsync(IEnumerable<KnowledgeChunk> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var rows = records.Select(r => Validate(r).ToRow()).ToList();
        if (rows.Count > 0) Run("Upsert", kb => { kb.UpsertChunks(rows); return 0; });
        return Task.CompletedTask;
    }

    internal static KnowledgeChunk Validate(KnowledgeChunk? r)
    {
        ArgumentNullException.ThrowIfNull(r, "records");
        if (string.IsNullOrEmpty(r.Source)) throw new ArgumentException($"record '{r.Key}': Source is empty; expected the document key", "records");
        if (r.Ordinal < 0) throw new ArgumentException($"record '{r.Key}': Ordinal {r.Ordinal}; expected ≥ 0", "records");
        string expected = KnowledgeChunk.MakeKey(r.Source, r.Ordinal);
        if (r.Key != expected)
            throw new ArgumentException($"record key '{r.Key}' does not match Source '{r.Source}' and Ordinal {r.Ordinal}; expected '{expected}'", "records");
        if (r.Text is null || r.Section is null) throw new ArgumentException($"record '{r.Key}': Text and Section must not be null", "records");
        if (r.StartOffset < 0 || r.EndOffset < r.StartOffset)
            throw new ArgumentException($"record '{r.Key}': offsets {r.StartOffset}..{r.EndOffset}; expected 0 ≤ StartOffset ≤ EndOffset", "records");
        if (r.Embedding is { Length: 0 }) throw new ArgumentException($"record '{r.Key}': Embedding is empty; expected a vector or null", "records");
        return r;
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreCollectionMetadata))
            return new VectorStoreCollectionMetadata { VectorStoreSystemName = SystemName, VectorStoreName = _catalog?.Root ?? Path.GetDirectoryName(StorePath), CollectionName = Name };
        if (serviceType == typeof(SqliteKnowledgeBase)) lock (_gate) return _store;
        if (_generator is not null && serviceType.IsInstanceOfType(_generator)) return _generator;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        lock (_gate)
        {
            if (disposing && _ownsStore) _store?.Dispose();
            _store = null;
            _disposed = true;
        }
        base.Dispose(disposing);
    }

    /// <summary>Runs a store call under the lock; store errors become <see cref="VectorStoreException"/>s naming the collection and operation.</summary>
    private T Run<T>(string operation, Func<SqliteKnowledgeBase, T> action)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_store is null && File.Exists(StorePath)) _store = Wrap(operation, () => _catalog!.Open(Name, mustExist: true));
            var store = _store ?? throw Error(operation, $"collection '{Name}' does not exist ({StorePath}); call EnsureCollectionExistsAsync first", null);
            return Wrap(operation, () => action(store));
        }
    }

    private T Wrap<T>(string operation, Func<T> action)
    {
        try { return action(); }
        catch (Exception e) when (e is GlmException or SqliteException) { throw Error(operation, e.Message, e); }
    }

    private VectorStoreException Error(string operation, string message, Exception? inner) =>
        new(message, inner!) { VectorStoreSystemName = SystemName, VectorStoreName = _catalog?.Root, CollectionName = Name, OperationName = operation };
}
