using Microsoft.Extensions.VectorData;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>What <see cref="KnowledgeChunkMirror.SyncAsync"/> did.</summary>
/// <param name="Upserted">Records written to the target.</param>
/// <param name="Deleted">Target records removed because the source no longer holds their keys.</param>
public sealed record MirrorReport(int Upserted, int Deleted);

/// <summary>
/// Copies one <see cref="KnowledgeChunk"/> collection into another through the VectorData abstractions only: used to keep a Qdrant
/// collection equal to its SQLite knowledge base (the file stays the document catalog that incremental ingestion works on).
/// </summary>
public static class KnowledgeChunkMirror
{
    /// <summary>Records per upsert batch.</summary>
    public const int BatchSize = 256;

    /// <summary>
    /// Creates <paramref name="target"/> when missing, upserts every record of <paramref name="source"/> (with vectors) and deletes the
    /// target records whose keys the source no longer has. Upserts are idempotent, so an interrupted sync is completed by running it again.
    /// </summary>
    public static async Task<MirrorReport> SyncAsync(VectorStoreCollection<string, KnowledgeChunk> source, VectorStoreCollection<string, KnowledgeChunk> target,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        await target.EnsureCollectionExistsAsync(cancellationToken).ConfigureAwait(false);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var batch = new List<KnowledgeChunk>(BatchSize);
        int upserted = 0;
        if (await source.CollectionExistsAsync(cancellationToken).ConfigureAwait(false))
        {
            var all = source.GetAsync(r => true, int.MaxValue, new FilteredRecordRetrievalOptions<KnowledgeChunk> { IncludeVectors = true }, cancellationToken);
            await foreach (var record in all.ConfigureAwait(false))
            {
                keys.Add(record.Key);
                batch.Add(record);
                if (batch.Count == BatchSize) upserted += await FlushAsync(target, batch, cancellationToken).ConfigureAwait(false);
            }
            upserted += await FlushAsync(target, batch, cancellationToken).ConfigureAwait(false);
        }
        var stale = new List<string>();
        await foreach (var record in target.GetAsync(r => true, int.MaxValue, cancellationToken: cancellationToken).ConfigureAwait(false))
            if (!keys.Contains(record.Key)) stale.Add(record.Key);
        if (stale.Count > 0) await target.DeleteAsync(stale, cancellationToken).ConfigureAwait(false);
        return new MirrorReport(upserted, stale.Count);
    }

    private static async Task<int> FlushAsync(VectorStoreCollection<string, KnowledgeChunk> target, List<KnowledgeChunk> batch, CancellationToken cancellationToken)
    {
        int n = batch.Count;
        if (n > 0) await target.UpsertAsync(batch.ToList(), cancellationToken).ConfigureAwait(false);
        batch.Clear();
        return n;
    }
}
