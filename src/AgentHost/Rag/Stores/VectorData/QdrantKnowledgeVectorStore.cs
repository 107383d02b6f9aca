using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using AgentHost.Rag.Stores.Qdrant;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>
/// A Qdrant server as a Microsoft.Extensions.VectorData store of knowledge bases: one Qdrant collection per knowledge base, holding
/// <see cref="KnowledgeChunk"/> records with string keys (see <see cref="QdrantKnowledgeChunkCollection"/>).
/// </summary>
public sealed class QdrantKnowledgeVectorStore : VectorStore
{
    private readonly QdrantRestClient _client;
    private readonly bool _ownsClient;
    private readonly IEmbeddingGenerator<string, Embedding<float>>? _embeddingGenerator;

    /// <summary>A store over <paramref name="client"/>.</summary>
    /// <param name="client">The REST client (connection, retries).</param>
    /// <param name="embeddingGenerator">Default generator for string search values of the collections it hands out (null: vectors only).</param>
    /// <param name="ownsClient">Dispose <paramref name="client"/> with the store.</param>
    public QdrantKnowledgeVectorStore(QdrantRestClient client, IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator = null, bool ownsClient = false)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _embeddingGenerator = embeddingGenerator;
        _ownsClient = ownsClient;
    }

    /// <summary>The REST client behind the store.</summary>
    public QdrantRestClient Client => _client;

    /// <summary>
    /// The collection <paramref name="name"/>; <typeparamref name="TKey"/> must be string and <typeparamref name="TRecord"/>
    /// <see cref="KnowledgeChunk"/>. A <paramref name="definition"/> may name only <see cref="KnowledgeChunk"/> properties; its
    /// embedding generator overrides the store's and its vector dimensions size a collection created later.
    /// </summary>
    /// <exception cref="NotSupportedException">Other key or record types.</exception>
    [RequiresDynamicCode("This API is not compatible with NativeAOT.")]
    [RequiresUnreferencedCode("This API is not compatible with trimming.")]
    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null)
    {
        if (typeof(TKey) != typeof(string) || typeof(TRecord) != typeof(KnowledgeChunk))
            throw new NotSupportedException($"GetCollection<{typeof(TKey).Name}, {typeof(TRecord).Name}>: knowledge-base collections hold "
                + $"{nameof(KnowledgeChunk)} records with string keys; expected GetCollection<string, {nameof(KnowledgeChunk)}>");
        var options = new QdrantKnowledgeChunkCollectionOptions { Definition = definition, EmbeddingGenerator = _embeddingGenerator };
        return (VectorStoreCollection<TKey, TRecord>)(object)new QdrantKnowledgeChunkCollection(_client, name, options);
    }

    /// <summary>Typed shortcut for <c>GetCollection&lt;string, KnowledgeChunk&gt;(name)</c>; <paramref name="dimensions"/> sizes a collection created later.</summary>
    public QdrantKnowledgeChunkCollection GetChunkCollection(string name, int? dimensions = null) =>
        new(_client, name, new QdrantKnowledgeChunkCollectionOptions { EmbeddingGenerator = _embeddingGenerator, Dimensions = dimensions });

    /// <summary>Not supported: the schema is fixed (<see cref="KnowledgeChunk"/>).</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition) =>
        throw new NotSupportedException($"dynamic collections are not supported: knowledge base '{name}' has the fixed {nameof(KnowledgeChunk)} schema; use GetCollection<string, {nameof(KnowledgeChunk)}>");

    /// <inheritdoc />
    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var name in await Run("ListCollectionNames", null, () => _client.ListCollectionsAsync(cancellationToken)).ConfigureAwait(false))
            yield return name;
    }

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) =>
        Run("CollectionExists", name, () => _client.CollectionExistsAsync(name, cancellationToken));

    /// <summary>Deletes the collection and its points (nothing when it does not exist).</summary>
    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default) =>
        Run("EnsureCollectionDeleted", name, async () => { await _client.DeleteCollectionAsync(name, cancellationToken).ConfigureAwait(false); return true; });

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreMetadata))
            return new VectorStoreMetadata { VectorStoreSystemName = QdrantKnowledgeChunkCollection.SystemName, VectorStoreName = _client.BaseUrl.ToString() };
        if (serviceType == typeof(QdrantRestClient)) return _client;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsClient) _client.Dispose();
        base.Dispose(disposing);
    }

    private async Task<T> Run<T>(string operation, string? collection, Func<Task<T>> action)
    {
        try { return await action().ConfigureAwait(false); }
        catch (GlmException e)
        {
            throw new VectorStoreException($"Qdrant {operation}{(collection is null ? "" : $" '{collection}'")}: {e.Message}", e)
            {
                VectorStoreSystemName = QdrantKnowledgeChunkCollection.SystemName, VectorStoreName = _client.BaseUrl.ToString(),
                CollectionName = collection, OperationName = operation,
            };
        }
    }
}
