using System.CommandLine;
using System.Text;
using AgentHost.Hosting;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Summarization;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm summarize FILE | --kb NAME [--source S] [--length short|medium|long]</c>: map-reduce Chinese summary.</summary>
internal static class SummarizeVerb
{
    public static Command Create(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var file = new Argument<string?>("FILE") { Description = "Document to summarise (txt, md, html, pdf, docx).", Arity = ArgumentArity.ZeroOrOne };
        var kb = new Option<string?>("--kb") { Description = "Summarise documents stored in this knowledge base instead of a file." };
        var source = new Option<string?>("--source") { Description = "With --kb: only the document whose path or file name matches (exact path, file name, or path ending)." };
        var length = new Option<SummaryLength>("--length") { Description = "short (~100 字), medium (~300 字) or long (~800 字).", DefaultValueFactory = _ => SummaryLength.Medium };
        var cmd = new Command("summarize", "Summarise a document or knowledge base in Chinese; text longer than the context window is summarised map-reduce.");
        cmd.Add(file); cmd.Add(kb); cmd.Add(source); cmd.Add(length);
        rag.AddTo(cmd, model: true);
        cmd.SetAction(async (parse, ct) =>
        {
            string? path = parse.GetValue(file), name = parse.GetValue(kb), src = parse.GetValue(source);
            if ((path is null) == (name is null)) throw new GlmException("summarize needs exactly one of FILE or --kb NAME.");
            if (src is not null && name is null) throw new GlmException("--source only applies with --kb NAME.");
            using var host = rag.BuildHost(parse, console);
            var services = host.Services;
            var settings = services.GetRequiredService<GlmSettings>();
            var prompts = services.GetRequiredService<PromptLibrary>();
            prompts.ValidateAll();
            string text = path is not null ? ReadFile(path) : ReadKnowledgeBase(services.GetRequiredService<KnowledgeBaseCatalog>(), name!, src);
            var summarizer = new MapReduceSummarizer(new LazyChatClient(services), prompts,
                new SummarizeOptions(settings.Summarize.ContextTokens, settings.Summarize.MaxOutputTokens, parse.GetValue(length)));
            var result = await RagConsole.RunWithProgressAsync(console, report =>
                summarizer.SummarizeAsync(text, new SyncProgress<SummaryProgress>(p =>
                    report(p.Stage == "map" ? "map (chunks)" : $"reduce round {p.Round}", p.Done, p.Total)), ct));
            console.Out.WriteLine(result.Summary);
            console.Error.WriteLine($"[{text.Length} chars → {result.Chunks} chunk(s), {result.MapCalls} map call(s), {result.ReduceCalls} reduce call(s) in {result.ReduceRounds} round(s)]");
            return 0;
        });
        return cmd;
    }

    private static string ReadFile(string path)
    {
        if (!File.Exists(path)) throw new GlmException($"FILE '{path}' does not exist.");
        var extractors = new ExtractorRegistry();
        var extractor = extractors.For(path) ?? throw new GlmException($"FILE '{path}': unsupported format '{Path.GetExtension(path)}'; supported: {string.Join(' ', extractors.Extensions)}");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new GlmException($"FILE '{path}' cannot be read: {e.Message}", e); }
        return extractor.Extract(Path.GetFullPath(path), bytes).Text;
    }

    private static string ReadKnowledgeBase(KnowledgeBaseCatalog catalog, string name, string? source)
    {
        using var store = catalog.Open(name, mustExist: true);
        var docs = store.ListSources();
        if (source is not null)
        {
            docs = docs.Where(d => d.Source == source || Path.GetFileName(d.Source) == source
                || d.Source.EndsWith(Path.DirectorySeparatorChar + source.TrimStart(Path.DirectorySeparatorChar), StringComparison.Ordinal)).ToList();
            if (docs.Count == 0)
                throw new GlmException($"--source '{source}' matches no document of knowledge base '{name}'; see glm kb stats --kb {name}");
        }
        if (docs.Count == 0) throw new GlmException($"knowledge base '{name}' holds no documents");
        var sb = new StringBuilder();
        foreach (var doc in docs)
        {
            if (docs.Count > 1) sb.Append("# ").Append(Path.GetFileName(doc.Source)).Append("\n\n");
            sb.Append(store.ReadDocumentText(doc.Source)).Append("\n\n");
        }
        return sb.ToString().Trim();
    }
}
