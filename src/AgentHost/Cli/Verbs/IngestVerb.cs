using System.CommandLine;
using AgentHost.Hosting;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Stores;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm ingest PATH… [--kb NAME] [--sync] [--chunk-tokens N --overlap N]</c>: index files into a knowledge base.</summary>
internal static class IngestVerb
{
    /// <summary>Exit code when some files failed (the others were indexed).</summary>
    public const int SomeFailed = 2;

    public static Command Create(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var paths = new Argument<string[]>("PATH") { Description = "Files or folders (recursively) to index.", Arity = ArgumentArity.OneOrMore };
        var kb = new Option<string?>("--kb") { Description = "Knowledge base name (default: Rag:DefaultKb, 'samples')." };
        var sync = new Option<bool>("--sync") { Description = "Also remove indexed documents under PATH whose files are gone." };
        var chunkTokens = new Option<int?>("--chunk-tokens") { Description = "Chunk size in approximate tokens (default Rag:ChunkTokens, 256)." };
        var overlap = new Option<int?>("--overlap") { Description = "Chunk overlap in approximate tokens (default Rag:OverlapTokens, 32)." };
        var cmd = new Command("ingest", "Index documents (txt, md, html, pdf, docx) into a knowledge base; unchanged files are skipped, an interrupted run resumes.");
        cmd.Add(paths); cmd.Add(kb); cmd.Add(sync); cmd.Add(chunkTokens); cmd.Add(overlap);
        rag.AddTo(cmd, embedding: true);
        cmd.SetAction(async (parse, ct) =>
        {
            using var host = rag.BuildHost(parse, console);
            var settings = host.Services.GetRequiredService<GlmSettings>();
            var chunking = new ChunkingOptions(parse.GetValue(chunkTokens) ?? settings.Rag.ChunkTokens, parse.GetValue(overlap) ?? settings.Rag.OverlapTokens);
            string name = parse.GetValue(kb) ?? settings.Rag.DefaultKb;
            var report = await RunAsync(console, host.Services, name, parse.GetValue(paths)!, chunking, parse.GetValue(sync), ct);
            PrintReport(console, name, report);
            if (report.Failures.Count == 0) return 0;
            console.Error.WriteLine($"{report.Failures.Count} file(s) failed; the others were indexed (exit code {SomeFailed}):");
            foreach (var f in report.Failures) console.Error.WriteLine($"  {f.Message}");
            return SomeFailed;
        });
        return cmd;
    }

    /// <summary>Ingests <paramref name="paths"/> into knowledge base <paramref name="name"/> with progress.</summary>
    public static async Task<IngestionReport> RunAsync(CliConsole console, IServiceProvider services, string name, IReadOnlyList<string> paths,
        ChunkingOptions chunking, bool sync, CancellationToken ct)
    {
        var catalog = services.GetRequiredService<KnowledgeBaseCatalog>();
        using var store = catalog.Open(name);
        var embedder = services.GetService<IEmbeddingGenerator<string, Embedding<float>>>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("ingest");
        if (embedder is null && store.EmbeddingDimensions is int dims)
            console.Error.WriteLine($"warning: knowledge base '{name}' holds {dims}-dimension embeddings but no embedding model is configured (Embedding:Provider); new chunks will be found by keyword search only.");
        var pipeline = new IngestionPipeline(store, new IngestionOptions { Chunking = chunking, Sync = sync }, embedder);
        try
        {
            var result = await RagConsole.RunWithProgressAsync(console, report =>
                pipeline.IngestAsync(paths, p =>
                {
                    if (p.Outcome is { } outcome) logger.LogDebug("{Outcome} {Path} ({Chunks} chunks) {Message}", outcome, p.Path, p.Chunks, p.Message);
                    report($"ingest → {name}", p.FileIndex + (p.Outcome is null ? 0 : 1), p.FileCount);
                }, ct));
            // Rag:VectorStore = qdrant: the Qdrant collection mirrors the file, which stays the catalog incremental ingestion works on.
            if (await KnowledgeChunkCollections.SyncToQdrantAsync(services, store, ct) is { } mirror)
                console.Error.WriteLine($"Qdrant collection '{name}': {mirror.Upserted} chunk(s) written, {mirror.Deleted} stale removed.");
            return result;
        }
        catch (OperationCanceledException)
        {
            console.Error.WriteLine($"interrupted: documents finished so far are saved in '{name}'; run the same command again to continue.");
            throw;
        }
    }

    /// <summary>Prints the outcome table.</summary>
    public static void PrintReport(CliConsole console, string name, IngestionReport report)
    {
        var table = new Table().Title($"knowledge base '{Markup.Escape(name)}'")
            .AddColumns("added", "updated", "unchanged", "skipped", "failed", "removed", "chunks", "seconds");
        table.AddRow(report.Count(FileOutcome.Added).ToString(), report.Count(FileOutcome.Updated).ToString(), report.Count(FileOutcome.Unchanged).ToString(),
            report.Count(FileOutcome.Skipped).ToString(), report.Count(FileOutcome.Failed).ToString(), report.Count(FileOutcome.Removed).ToString(),
            report.ChunksWritten.ToString(), report.Elapsed.TotalSeconds.ToString("F1"));
        RagConsole.Output(console).Write(table);
        foreach (var skipped in report.Files.Where(f => f.Outcome == FileOutcome.Skipped))
            console.Error.WriteLine($"skipped: {skipped.Message}");
    }

    /// <summary>Validates a knowledge-base name early (clear error naming the option).</summary>
    public static void CheckName(KnowledgeBaseCatalog catalog, string name)
    {
        try { catalog.PathFor(name); }
        catch (GlmException e) { throw new GlmException($"--kb: {e.Message}", e); }
    }
}
