using System.Diagnostics;
using System.Security.Cryptography;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Stores;
using Glm.Engine;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Ingestion;

/// <summary>
/// <c>glm ingest</c>: walks paths, skips files whose content hash is already stored, runs extract → chunk → embed → save for
/// the rest, and (with <see cref="IngestionOptions.Sync"/>) removes documents whose files are gone. A bad file is reported
/// and the run continues; each document is committed on its own, so an interrupted run resumes where it stopped.
/// </summary>
public sealed class IngestionPipeline
{
    private readonly IKnowledgeBase _knowledgeBase;
    private readonly IngestionOptions _options;
    private readonly ExtractorRegistry _extractors;
    private readonly IReadOnlyList<IIngestionHandler> _handlers;

    /// <summary>Creates the pipeline. Without <paramref name="embeddingGenerator"/> the knowledge base is keyword-only.</summary>
    /// <param name="knowledgeBase">Target store.</param>
    /// <param name="options">Chunking, token counter, sync.</param>
    /// <param name="embeddingGenerator">Optional embedding model.</param>
    /// <param name="extractors">Optional extractor set (defaults to txt/md/html/pdf/docx).</param>
    /// <param name="handlers">Optional replacement handler list (defaults to extract, chunk, embed, save).</param>
    public IngestionPipeline(IKnowledgeBase knowledgeBase, IngestionOptions? options = null,
        IEmbeddingGenerator<string, Embedding<float>>? embeddingGenerator = null,
        ExtractorRegistry? extractors = null, IReadOnlyList<IIngestionHandler>? handlers = null)
    {
        _knowledgeBase = knowledgeBase;
        _options = options ?? new IngestionOptions();
        _options.Chunking.Validate();
        _extractors = extractors ?? new ExtractorRegistry();
        _handlers = handlers ??
        [
            new ExtractHandler(_extractors),
            new ChunkHandler(new ChineseChunker(_options.CountTokens, _options.Chunking)),
            new EmbedHandler(embeddingGenerator, _options.EmbeddingBatchSize),
            new SaveHandler(knowledgeBase),
        ];
    }

    /// <summary>Ingests files and folders (recursively; names starting with '.' are ignored).</summary>
    /// <param name="paths">Files or folders.</param>
    /// <param name="onProgress">Called before (Outcome null) and after each file, on the calling flow.</param>
    /// <param name="cancellationToken">Stops between documents or mid-document; committed documents stay.</param>
    public async Task<IngestionReport> IngestAsync(IEnumerable<string> paths, Action<IngestionProgress>? onProgress = null,
        CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var results = new List<FileResult>();
        var roots = paths.Select(p => Path.GetFullPath(p)).Distinct().ToList();
        var files = new List<string>();
        foreach (var root in roots)
        {
            if (Directory.Exists(root)) files.AddRange(EnumerateFolder(root, results));
            else if (File.Exists(root)) files.Add(root);
            else if (!(_options.Sync && _knowledgeBase.GetDocument(root) is not null))
                results.Add(new FileResult(root, FileOutcome.Failed, 0, $"{root}: no such file or folder"));
        }
        files = files.Distinct().ToList();

        for (int i = 0; i < files.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            onProgress?.Invoke(new IngestionProgress(i, files.Count, files[i], null, 0, null));
            var result = await IngestFileAsync(files[i], cancellationToken);
            results.Add(result);
            onProgress?.Invoke(new IngestionProgress(i, files.Count, files[i], result.Outcome, result.Chunks, result.Message));
        }

        if (_options.Sync) results.AddRange(RemoveMissing(roots, files.ToHashSet()));
        return new IngestionReport(results, watch.Elapsed);
    }

    private async Task<FileResult> IngestFileAsync(string path, CancellationToken cancellationToken)
    {
        if (_extractors.For(path) is null)
            return new FileResult(path, FileOutcome.Skipped, 0,
                $"{path}: unsupported format '{Path.GetExtension(path)}'; supported: {string.Join(' ', _extractors.Extensions)}");
        byte[] content;
        try { content = await File.ReadAllBytesAsync(path, cancellationToken); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new FileResult(path, FileOutcome.Failed, 0, $"{path}: cannot read file ({e.Message})");
        }

        string hash = Convert.ToHexStringLower(SHA256.HashData(content));
        var stored = _knowledgeBase.GetDocument(path);
        if (stored?.ContentHash == hash) return new FileResult(path, FileOutcome.Unchanged, stored.ChunkCount, null);

        var context = new IngestionContext(path, content, hash);
        foreach (var handler in _handlers)
        {
            try { await handler.InvokeAsync(context, cancellationToken); }
            catch (Exception e) when (e is not (OperationCanceledException or SqliteException or OutOfMemoryException))
            {
                // Per-file problems are reported and the run goes on; store failures (disk full, locked file) abort it.
                string message = e is GlmException ? e.Message : $"{path}: {handler.StepName} step failed: {e.GetType().Name}: {e.Message}";
                if (stored is not null) message += " (the previously indexed version is kept)";
                return new FileResult(path, FileOutcome.Failed, 0, message);
            }
        }
        return new FileResult(path, stored is null ? FileOutcome.Added : FileOutcome.Updated, context.Chunks?.Count ?? 0, null);
    }

    private static IEnumerable<string> EnumerateFolder(string root, List<FileResult> results)
    {
        var pending = new Stack<string>([root]);
        var files = new List<string>();
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            try
            {
                foreach (var sub in Directory.EnumerateDirectories(dir))
                    if (!Path.GetFileName(sub).StartsWith('.')) pending.Push(sub);
                files.AddRange(Directory.EnumerateFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                results.Add(new FileResult(dir, FileOutcome.Failed, 0, $"{dir}: cannot list folder ({e.Message})"));
            }
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    private List<FileResult> RemoveMissing(List<string> roots, HashSet<string> present)
    {
        var removed = new List<FileResult>();
        foreach (var doc in _knowledgeBase.ListSources())
        {
            bool underRoot = roots.Any(r => doc.Source == r || doc.Source.StartsWith(r.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal));
            if (!underRoot || present.Contains(doc.Source) || File.Exists(doc.Source)) continue;
            if (_knowledgeBase.DeleteDocument(doc.Source))
                removed.Add(new FileResult(doc.Source, FileOutcome.Removed, doc.ChunkCount, $"{doc.Source}: file is gone; removed from the index"));
        }
        return removed;
    }
}
