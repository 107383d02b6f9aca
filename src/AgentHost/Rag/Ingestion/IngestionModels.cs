using AgentHost.Rag.Chunking;

namespace AgentHost.Rag.Ingestion;

/// <summary>What happened to one file.</summary>
public enum FileOutcome
{
    /// <summary>New document indexed.</summary>
    Added,
    /// <summary>Content changed; the old version was replaced.</summary>
    Updated,
    /// <summary>Same content hash as stored; nothing done.</summary>
    Unchanged,
    /// <summary>Not a supported format.</summary>
    Skipped,
    /// <summary>Could not be read or parsed; the stored version (if any) is kept.</summary>
    Failed,
    /// <summary>File no longer exists; removed from the index (<c>--sync</c>).</summary>
    Removed,
}

/// <summary>Result for one file.</summary>
public sealed record FileResult(string Path, FileOutcome Outcome, int Chunks, string? Message);

/// <summary>Progress event, raised before (Outcome null) and after each file.</summary>
public sealed record IngestionProgress(int FileIndex, int FileCount, string Path, FileOutcome? Outcome, int Chunks, string? Message);

/// <summary>Options for <see cref="IngestionPipeline"/>.</summary>
public sealed record IngestionOptions
{
    /// <summary>Chunk size and overlap.</summary>
    public ChunkingOptions Chunking { get; init; } = new();

    /// <summary>Token counter for chunk sizes; defaults to <see cref="TokenCounters.Approximate"/>.</summary>
    public Func<string, int> CountTokens { get; init; } = TokenCounters.Approximate;

    /// <summary>Remove stored documents under the given folders (or given file paths) that no longer exist.</summary>
    public bool Sync { get; init; }

    /// <summary>Chunks per embedding request.</summary>
    public int EmbeddingBatchSize { get; init; } = 32;
}

/// <summary>Summary of an ingestion run.</summary>
public sealed record IngestionReport(IReadOnlyList<FileResult> Files, TimeSpan Elapsed)
{
    /// <summary>Files with the given outcome.</summary>
    public int Count(FileOutcome outcome) => Files.Count(f => f.Outcome == outcome);

    /// <summary>Files that failed, with their messages.</summary>
    public IReadOnlyList<FileResult> Failures => Files.Where(f => f.Outcome == FileOutcome.Failed).ToList();

    /// <summary>Chunks written in this run.</summary>
    public int ChunksWritten => Files.Where(f => f.Outcome is FileOutcome.Added or FileOutcome.Updated).Sum(f => f.Chunks);

    /// <summary>Chunks written per second of the run.</summary>
    public double ChunksPerSecond => Elapsed.TotalSeconds > 0 ? ChunksWritten / Elapsed.TotalSeconds : 0;
}
