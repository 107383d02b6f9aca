using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using AgentHost.Rag.Stores.Qdrant;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>Options of <see cref="QdrantKnowledgeChunkCollection"/>.</summary>
public sealed class QdrantKnowledgeChunkCollectionOptions : VectorStoreCollectionOptions
{
    /// <summary>Default options: no embedding generator, the <see cref="KnowledgeChunk"/> attributes as schema.</summary>
    public QdrantKnowledgeChunkCollectionOptions() { }

    /// <summary>Options passed to the embedding generator when a search value is a string (e.g. a query instruction prefix).</summary>
    public EmbeddingGenerationOptions? QueryEmbeddingOptions { get; set; }

    /// <summary>
    /// Dense vector size used when <see cref="QdrantKnowledgeChunkCollection.EnsureCollectionExistsAsync"/> creates the collection;
    /// null = the definition's vector dimensions, else <see cref="KnowledgeChunk.NominalDimensions"/>.
    /// </summary>
    public int? Dimensions { get; set; }
}

/// <summary>
/// A Qdrant collection as a Microsoft.Extensions.VectorData collection of <see cref="KnowledgeChunk"/> records, over
/// <see cref="QdrantRestClient"/>. Each record is one point: id = <see cref="QdrantPoint.KeyId"/> of its string key (Qdrant ids
/// must be uint64 or UUID; the key itself is kept in the payload, so reads return it), a cosine dense vector
/// (<see cref="QdrantRequests.DenseVector"/>; absent for keyword-only chunks) and a sparse term vector of section + text
/// (<see cref="QdrantRequests.SparseVectorName"/>, IDF-weighted) that serves keyword and hybrid search. Payload fields: see
/// <see cref="QdrantChunkFilterTranslator.PayloadFields"/>; filters: see <see cref="QdrantChunkFilterTranslator"/>. Server and
/// transport errors surface as <see cref="VectorStoreException"/>s whose inner <see cref="GlmException"/> names the URL and Qdrant's message.
/// </summary>
public sealed partial class QdrantKnowledgeChunkCollection : VectorStoreCollection<string, KnowledgeChunk>, IKeywordHybridSearchable<KnowledgeChunk>
{
    /// <summary>The <see cref="VectorStoreCollectionMetadata.VectorStoreSystemName"/> reported (OpenTelemetry's name for Qdrant).</summary>
    public const string SystemName = "qdrant";

    /// <summary>Points per scroll page and per upsert/get request.</summary>
    public const int BatchSize = 256;

    private readonly QdrantRestClient _client;
    private readonly IEmbeddingGenerator<string, Embedding<float>>? _generator;
    private readonly EmbeddingGenerationOptions? _queryOptions;
    private readonly int _dimensions;
    private bool _disposed;

    /// <summary>The Qdrant collection <paramref name="name"/>; created by <see cref="EnsureCollectionExistsAsync"/>. The client stays the caller's.</summary>
    /// <exception cref="ArgumentException">The name is empty, or the options' definition or embedding generator does not fit <see cref="KnowledgeChunk"/>.</exception>
    public QdrantKnowledgeChunkCollection(QdrantRestClient client, string name, QdrantKnowledgeChunkCollectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _client = client;
        Name = name;
        (_generator, _queryOptions) = SqliteKnowledgeChunkCollection.Configure(options, options?.QueryEmbeddingOptions);
        _dimensions = options?.Dimensions
            ?? options?.Definition?.Properties.OfType<VectorStoreVectorProperty>().FirstOrDefault()?.Dimensions
            ?? KnowledgeChunk.NominalDimensions;
        if (_dimensions < 1) throw new ArgumentException($"Dimensions = {_dimensions}; expected ≥ 1", nameof(options));
    }

    /// <inheritdoc />
    public override string Name { get; }

    /// <summary>Dense vector size of a collection this object creates.</summary>
    public int Dimensions => _dimensions;

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Run("CollectionExists", () => _client.CollectionExistsAsync(Name, cancellationToken));

    /// <summary>Creates the collection (dense cosine vector of <see cref="Dimensions"/> plus the sparse term vector) unless it exists.</summary>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Run("EnsureCollectionExists", async () =>
        {
            if (!await _client.CollectionExistsAsync(Name, cancellationToken).ConfigureAwait(false))
                await _client.CreateCollectionAsync(Name, _dimensions, cancellationToken).ConfigureAwait(false);
            return true;
        });

    /// <summary>Deletes the collection and its points (nothing when it does not exist).</summary>
    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default) =>
        Run("EnsureCollectionDeleted", async () => { await _client.DeleteCollectionAsync(Name, cancellationToken).ConfigureAwait(false); return true; });

    /// <inheritdoc />
    public override async Task<KnowledgeChunk?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var points = await Run("Get", () => _client.GetPointsAsync(Name, [QdrantPoint.KeyId(key)], options?.IncludeVectors == true, cancellationToken)).ConfigureAwait(false);
        return points.Select(p => FromPoint(p.Id, p.Payload, p.Dense)).FirstOrDefault(r => r.Key == key);
    }

    /// <summary>The records of the keys that exist, in the order of <paramref name="keys"/> (one request per <see cref="BatchSize"/> keys).</summary>
    public override async IAsyncEnumerable<KnowledgeChunk> GetAsync(IEnumerable<string> keys, RecordRetrievalOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (var batch in keys.Select(k => k ?? throw new ArgumentNullException(nameof(keys))).Distinct().Chunk(BatchSize))
        {
            var points = await Run("Get", () => _client.GetPointsAsync(Name, batch.Select(k => QdrantPoint.KeyId(k)), options?.IncludeVectors == true, cancellationToken)).ConfigureAwait(false);
            var byKey = points.Select(p => FromPoint(p.Id, p.Payload, p.Dense)).ToDictionary(r => r.Key);
            foreach (var key in batch)
                if (byKey.TryGetValue(key, out var record)) yield return record;
        }
    }

    /// <summary>
    /// Up to <paramref name="top"/> records matching <paramref name="filter"/>, by source and ordinal unless
    /// <see cref="FilteredRecordRetrievalOptions{TRecord}.OrderBy"/> says otherwise. Qdrant scrolls in point-id order, so every
    /// matching point is read (pages of <see cref="BatchSize"/>) and ordered here: meant for knowledge-base sized collections.
    /// </summary>
    public override async IAsyncEnumerable<KnowledgeChunk> GetAsync(Expression<Func<KnowledgeChunk, bool>> filter, int top,
        FilteredRecordRetrievalOptions<KnowledgeChunk>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        SqliteKnowledgeChunkCollection.CheckPaging(top, options?.Skip ?? 0);
        var where = QdrantChunkFilterTranslator.Translate(filter);
        var order = Ordering(options?.OrderBy);
        if (where.MatchesNothing) yield break;
        var records = new List<KnowledgeChunk>();
        JsonNode? offset = null;
        do
        {
            var page = await Run("Get", () => _client.ScrollAsync(Name, where.Filter, BatchSize, offset, options?.IncludeVectors == true, cancellationToken)).ConfigureAwait(false);
            records.AddRange(page.Points.Select(p => FromPoint(p.Id, p.Payload, p.Dense)));
            offset = page.NextOffset;
        } while (offset is not null);
        foreach (var record in order(records).Skip(options?.Skip ?? 0).Take(top))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return record;
        }
    }

    /// <inheritdoc />
    public override Task DeleteAsync(string key, CancellationToken cancellationToken = default) => DeleteAsync([key], cancellationToken);

    /// <summary>Deletes the records (unknown keys are ignored), <see cref="BatchSize"/> ids per request.</summary>
    public override async Task DeleteAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (var batch in keys.Select(k => k ?? throw new ArgumentNullException(nameof(keys))).Distinct().Chunk(BatchSize))
            await Run("Delete", async () => { await _client.DeleteByIdsAsync(Name, batch.Select(k => QdrantPoint.KeyId(k)), cancellationToken).ConfigureAwait(false); return true; }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task UpsertAsync(KnowledgeChunk record, CancellationToken cancellationToken = default) => UpsertAsync([record], cancellationToken);

    /// <summary>Inserts or replaces the records, <see cref="BatchSize"/> points per request (each request waits until applied).</summary>
    /// <exception cref="ArgumentException">A record's key does not match its source and ordinal, or a field is invalid.</exception>
    /// <exception cref="VectorStoreException">Qdrant rejected the points (e.g. a vector's size differs from the collection's) or is unreachable.</exception>
    public override async Task UpsertAsync(IEnumerable<KnowledgeChunk> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var points = records.Select(r => ToPoint(SqliteKnowledgeChunkCollection.Validate(r))).ToList();
        foreach (var batch in points.Chunk(BatchSize))
            await Run("Upsert", async () => { await _client.UpsertAsync(Name, batch, cancellationToken).ConfigureAwait(false); return true; }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreCollectionMetadata))
            return new VectorStoreCollectionMetadata { VectorStoreSystemName = SystemName, VectorStoreName = _client.BaseUrl.ToString(), CollectionName = Name };
        if (serviceType == typeof(QdrantRestClient)) return _client;
        if (_generator is not null && serviceType.IsInstanceOfType(_generator)) return _generator;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        base.Dispose(disposing);
    }

    /// <summary>Runs a client call; its <see cref="GlmException"/>s become <see cref="VectorStoreException"/>s naming the collection and operation.</summary>
    private async Task<T> Run<T>(string operation, Func<Task<T>> action)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try { return await action().ConfigureAwait(false); }
        catch (GlmException e)
        {
            throw new VectorStoreException($"Qdrant collection '{Name}', {operation}: {e.Message}", e)
            {
                VectorStoreSystemName = SystemName, VectorStoreName = _client.BaseUrl.ToString(), CollectionName = Name, OperationName = operation,
            };
        }
    }
}
