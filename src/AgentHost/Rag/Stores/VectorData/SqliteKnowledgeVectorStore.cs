using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>
/// The knowledge bases of a <see cref="KnowledgeBaseCatalog"/> as a Microsoft.Extensions.VectorData store: one collection per
/// knowledge base (<c>&lt;root&gt;/&lt;name&gt;.db</c>), holding <see cref="KnowledgeChunk"/> records with string keys.
/// </summary>
/// <param name="catalog">Where the knowledge-base files live.</param>
/// <param name="embeddingGenerator">Default generator for string search values of the collections it hands out (null: vectors only).</param>
public sealed class SqliteKnowledgeVectorStore(KnowledgeBaseCatalog catalog, IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator = null) : VectorStore
{
    /// <summary>The catalog behind the store.</summary>
    public KnowledgeBaseCatalog Catalog => catalog;

    /// <summary>
    /// The collection for knowledge base <paramref name="name"/>; <typeparamref name="TKey"/> must be string and
    /// <typeparamref name="TRecord"/> <see cref="KnowledgeChunk"/>. A <paramref name="definition"/> may name only
    /// <see cref="KnowledgeChunk"/> properties; its embedding generator overrides the store's.
    /// </summary>
    /// <exception cref="NotSupportedException">Other key or record types.</exception>
    [RequiresDynamicCode("This API is not compatible with NativeAOT.")]
    [RequiresUnreferencedCode("This API is not compatible with trimming.")]
    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null)
    {
        if (typeof(TKey) != typeof(string) || typeof(TRecord) != typeof(KnowledgeChunk))
            throw new NotSupportedException($"GetCollection<{typeof(TKey).Name}, {typeof(TRecord).Name}>: knowledge-base collections hold "
                + $"{nameof(KnowledgeChunk)} records with string keys; expected GetCollection<string, {nameof(KnowledgeChunk)}>");
        var options = new SqliteKnowledgeChunkCollectionOptions { Definition = definition, EmbeddingGenerator = embeddingGenerator };
        return (VectorStoreCollection<TKey, TRecord>)(object)new SqliteKnowledgeChunkCollection(catalog, name, options);
    }

    /// <summary>Typed shortcut for <c>GetCollection&lt;string, KnowledgeChunk&gt;(name)</c>.</summary>
    public SqliteKnowledgeChunkCollection GetChunkCollection(string name) =>
        new(catalog, name, new SqliteKnowledgeChunkCollectionOptions { EmbeddingGenerator = embeddingGenerator });

    /// <summary>Not supported: the schema is fixed (<see cref="KnowledgeChunk"/>).</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition) =>
        throw new NotSupportedException($"dynamic collections are not supported: knowledge base '{name}' has the fixed {nameof(KnowledgeChunk)} schema; use GetCollection<string, {nameof(KnowledgeChunk)}>");

    /// <inheritdoc />
    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var name in catalog.ListKnowledgeBases())
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return name;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) => Task.FromResult(catalog.Exists(name));

    /// <summary>Deletes the knowledge-base file and its WAL/SHM files (nothing when it does not exist).</summary>
    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default)
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        catalog.Delete(name);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreMetadata))
            return new VectorStoreMetadata { VectorStoreSystemName = SqliteKnowledgeChunkCollection.SystemName, VectorStoreName = catalog.Root };
        if (serviceType == typeof(KnowledgeBaseCatalog)) return catalog;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }
}
