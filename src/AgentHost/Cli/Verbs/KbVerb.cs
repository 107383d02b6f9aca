using System.CommandLine;
using AgentHost.Rag.Stores;
using Glm.Engine;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm kb list | stats [--kb NAME] | delete --kb NAME [--yes]</c>.</summary>
internal static class KbVerb
{
    public static Command Create(CliConsole console)
    {
        var cmd = new Command("kb", "List, inspect and delete knowledge bases.");
        cmd.Add(List(console));
        cmd.Add(Stats(console));
        cmd.Add(Delete(console));
        return cmd;
    }

    private static Command List(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var cmd = new Command("list", "List the knowledge bases with their size.");
        rag.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            using var host = rag.BuildHost(parse, console);
            var catalog = host.Services.GetRequiredService<KnowledgeBaseCatalog>();
            var names = catalog.ListKnowledgeBases();
            if (names.Count == 0)
            {
                console.Out.WriteLine($"no knowledge bases in {catalog.Root}; create one with: glm ingest PATH --kb NAME");
                return 0;
            }
            var table = new Table().Title(Markup.Escape(catalog.Root)).AddColumns("name", "documents", "chunks", "embedded", "size");
            foreach (var name in names)
            {
                using var store = catalog.Open(name, mustExist: true);
                var s = store.Stats();
                table.AddRow(Markup.Escape(name), s.Documents.ToString(), s.Chunks.ToString(), s.EmbeddedChunks.ToString(), Size(s.FileBytes));
            }
            RagConsole.Output(console).Write(table);
            return 0;
        });
        return cmd;
    }

    private static Command Stats(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var kb = new Option<string?>("--kb") { Description = "Knowledge base (default Rag:DefaultKb)." };
        var cmd = new Command("stats", "Counts, sizes and documents of one knowledge base.");
        cmd.Add(kb);
        rag.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            using var host = rag.BuildHost(parse, console);
            string name = parse.GetValue(kb) ?? host.Services.GetRequiredService<Hosting.GlmSettings>().Rag.DefaultKb;
            var catalog = host.Services.GetRequiredService<KnowledgeBaseCatalog>();
            IngestVerb.CheckName(catalog, name);
            using var store = catalog.Open(name, mustExist: true);
            var s = store.Stats();
            var output = RagConsole.Output(console);
            var summary = new Table().Title($"knowledge base '{Markup.Escape(name)}'").AddColumns("field", "value");
            summary.AddRow("file", Markup.Escape(s.FilePath));
            summary.AddRow("size", Size(s.FileBytes));
            summary.AddRow("documents", s.Documents.ToString());
            summary.AddRow("chunks", s.Chunks.ToString());
            summary.AddRow("embedded chunks", s.EmbeddedChunks.ToString());
            summary.AddRow("embedding dimensions", s.EmbeddingDimensions?.ToString() ?? "none (keyword-only)");
            summary.AddRow("characters", s.TotalChars.ToString());
            output.Write(summary);
            var docs = new Table().AddColumns("source", "format", "chars", "chunks", "ingested (UTC)");
            foreach (var d in store.ListSources())
                docs.AddRow(Markup.Escape(d.Source), d.Format, d.CharCount.ToString(), d.ChunkCount.ToString(), d.IngestedUtc.ToString("yyyy-MM-dd HH:mm"));
            output.Write(docs);
            return 0;
        });
        return cmd;
    }

    private static Command Delete(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var kb = new Option<string>("--kb") { Description = "Knowledge base to delete.", Required = true };
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation." };
        var cmd = new Command("delete", "Delete a knowledge base file (the source documents are not touched).");
        cmd.Add(kb); cmd.Add(yes);
        rag.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            using var host = rag.BuildHost(parse, console);
            string name = parse.GetValue(kb)!;
            var catalog = host.Services.GetRequiredService<KnowledgeBaseCatalog>();
            IngestVerb.CheckName(catalog, name);
            if (!catalog.Exists(name))
                throw new GlmException($"--kb '{name}': no such knowledge base in {catalog.Root}; existing: {Existing(catalog)}");
            if (!parse.GetValue(yes))
            {
                var input = Hosting.RagHostHooks.Input ?? (console.IsInteractive ? Console.In : null)
                    ?? throw new GlmException($"deleting '{name}' needs confirmation; pass --yes when not running in a terminal");
                console.Error.Write($"delete knowledge base '{name}' ({catalog.PathFor(name)})? [y/N] ");
                string? answer = input.ReadLine()?.Trim().ToLowerInvariant();
                if (answer is not ("y" or "yes"))
                {
                    console.Error.WriteLine("not deleted.");
                    return 1;
                }
            }
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            catalog.Delete(name);
            console.Out.WriteLine($"deleted knowledge base '{name}'.");
            return 0;
        });
        return cmd;
    }

    private static string Existing(KnowledgeBaseCatalog catalog) =>
        catalog.ListKnowledgeBases() is { Count: > 0 } names ? string.Join(", ", names) : "(none)";

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes / 1024.0 / 1024.0:F1} MiB",
    };
}
