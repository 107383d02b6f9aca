using AgentHost.Rag.Stores;
using Glm.Engine;
using AgentHost.Rag.Stores.VectorData;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Hosting;

/// <summary>
/// Picks the VectorData collection retrieval goes through, by <see cref="RagSettings.VectorStore"/>: the SQLite knowledge base
/// itself ("sqlite") or the Qdrant collection of the same name ("qdrant"), which <see cref="SyncToQdrantAsync"/> fills from the file.
/// </summary>
public static class KnowledgeChunkCollections
{
    /// <summary>The chunk collection that retrieval over the open knowledge base <paramref name="knowledgeBase"/> searches.</summary>
    public static VectorStoreCollection<string, KnowledgeChunk> ForRetrieval(IServiceProvider services, SqliteKnowledgeBase knowledgeBase)
    {
        var settings = services.GetRequiredService<GlmSettings>();
        return settings.Rag.UsesQdrant
            ? services.GetRequiredService<QdrantKnowledgeVectorStore>().GetChunkCollection(knowledgeBase.Name, knowledgeBase.EmbeddingDimensions)
            : new SqliteKnowledgeChunkCollection(knowledgeBase);
    }

    /// <summary>The chunk collection that retrieval over knowledge base <paramref name="name"/> of the catalog searches.</summary>
    public static VectorStoreCollection<string, KnowledgeChunk> ForRetrieval(IServiceProvider services, string name) =>
        services.GetRequiredService<GlmSettings>().Rag.UsesQdrant
            ? services.GetRequiredService<QdrantKnowledgeVectorStore>().GetChunkCollection(name)
            : services.GetRequiredService<SqliteKnowledgeVectorStore>().GetChunkCollection(name);

    /// <summary>
    /// With <c>Rag:VectorStore = qdrant</c>: makes the Qdrant collection of <paramref name="knowledgeBase"/> hold exactly its chunks
    /// (created with the file's embedding dimensions when missing). Null with the SQLite store (nothing to do).
    /// </summary>
    public static async Task<MirrorReport?> SyncToQdrantAsync(IServiceProvider services, SqliteKnowledgeBase knowledgeBase, CancellationToken cancellationToken = default)
    {
        if (!services.GetRequiredService<GlmSettings>().Rag.UsesQdrant) return null;
        using var source = new SqliteKnowledgeChunkCollection(knowledgeBase);
        using var target = services.GetRequiredService<QdrantKnowledgeVectorStore>().GetChunkCollection(knowledgeBase.Name, knowledgeBase.EmbeddingDimensions);
        try { return await KnowledgeChunkMirror.SyncAsync(source, target, cancellationToken).ConfigureAwait(false); }
        catch (VectorStoreException e) when (e.InnerException is GlmException)
        {
            throw new GlmException($"knowledge base '{knowledgeBase.Name}' could not be copied to Qdrant: {e.Message}", e);
        }
    }

    /// <summary>
    /// With <c>Rag:VectorStore = qdrant</c>: fills the Qdrant collection of knowledge base <paramref name="name"/> from its file when the
    /// collection does not exist yet (a knowledge base ingested before Qdrant was chosen). True when it copied.
    /// </summary>
    public static async Task<bool> EnsureInQdrantAsync(IServiceProvider services, string name, CancellationToken cancellationToken = default)
    {
        if (!services.GetRequiredService<GlmSettings>().Rag.UsesQdrant) return false;
        using var target = services.GetRequiredService<QdrantKnowledgeVectorStore>().GetChunkCollection(name);
        bool exists;
        try { exists = await target.CollectionExistsAsync(cancellationToken).ConfigureAwait(false); }
        catch (VectorStoreException e) when (e.InnerException is GlmException inner) { throw new GlmException(inner.Message, e); }
        if (exists) return false;
        using var knowledgeBase = services.GetRequiredService<KnowledgeBaseCatalog>().Open(name, mustExist: true);
        await SyncToQdrantAsync(services, knowledgeBase, cancellationToken).ConfigureAwait(false);
        return true;
    }
}
