using System.CommandLine;
using AgentHost.Hosting;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Evaluation;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm eval-rag --dataset FILE [--limit N] [--kb NAME] [--no-generate]</c>: retrieval and answer quality on CMRC 2018.</summary>
internal static class EvalRagVerb
{
    public static Command Create(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var dataset = new Option<string>("--dataset") { Description = "SQuAD-layout JSON, e.g. ../shared/data/eval/cmrc2018/cmrc2018_dev.json.", Required = true };
        var limit = new Option<int?>("--limit") { Description = "Ask only the first N questions (every context is still indexed)." };
        var kb = new Option<string?>("--kb") { Description = "Knowledge base for the contexts (default: eval-<dataset file name>)." };
        var noGenerate = new Option<bool>("--no-generate") { Description = "Measure retrieval only (no model calls)." };
        var topK = new Option<int?>("--top-k", "-k") { Description = "Passages per answer (default Rag:TopK)." };
        var output = new Option<string?>("--out", "-o") { Description = "Also write the markdown report to this file." };
        var cmd = new Command("eval-rag", "Index a reading-comprehension set and report retrieval recall@1/5/10 and MRR (keyword, dense, hybrid; plus hybrid + rerank when Rag:Reranker:ModelDir is set) and answer EM/F1.");
        cmd.Add(dataset); cmd.Add(limit); cmd.Add(kb); cmd.Add(noGenerate); cmd.Add(topK); cmd.Add(output);
        rag.AddTo(cmd, model: true, embedding: true);
        cmd.SetAction(async (parse, ct) =>
        {
            int? n = parse.GetValue(limit);
            if (n is < 1) throw new GlmException($"--limit {n}: expected 1 or more");
            string datasetPath = parse.GetValue(dataset)!;
            var data = EvalDataset.Load(datasetPath);
            using var host = rag.BuildHost(parse, console);
            var services = host.Services;
            var settings = services.GetRequiredService<GlmSettings>();
            var catalog = services.GetRequiredService<KnowledgeBaseCatalog>();
            string name = parse.GetValue(kb) ?? "eval-" + Path.GetFileNameWithoutExtension(datasetPath);
            IngestVerb.CheckName(catalog, name);
            var embedder = services.GetService<IEmbeddingGenerator<string, Embedding<float>>>();
            string embedding = embedder is null ? "none (keyword only)"
                : embedder.GetService<EmbeddingGeneratorMetadata>()?.DefaultModelId ?? settings.Embedding.Provider;
            bool generate = !parse.GetValue(noGenerate);
            if (generate) services.GetRequiredService<PromptLibrary>().ValidateAll();

            using var store = catalog.Open(name);
            // Always the file's own collection: the evaluator ingests its documents into the file as it goes (Rag:VectorStore is not consulted).
            var retriever = AskVerb.CreateRetriever(services, new AgentHost.Rag.Stores.VectorData.SqliteKnowledgeChunkCollection(store));
            var ingestion = new IngestionPipeline(store, new IngestionOptions { Chunking = new ChunkingOptions(settings.Rag.ChunkTokens, settings.Rag.OverlapTokens) }, embedder);
            var evaluator = new RagEvaluator(store, retriever, ingestion, Path.Combine(catalog.Root, name + ".docs"));
            var ask = generate ? new AskPipeline(retriever, new LazyChatClient(services), services.GetRequiredService<PromptLibrary>(),
                services.GetRequiredService<ILoggerFactory>().CreateLogger("eval-rag")) : null;
            var askOptions = new AskOptions
            {
                TopK = parse.GetValue(topK) ?? settings.Rag.TopK, Mode = RetrievalMode.Hybrid,
                Thresholds = new RelevanceThresholds(settings.Rag.MinTermCoverage, settings.Rag.MinCosine),
                ContextTokens = settings.Rag.ContextTokens, MaxOutputTokens = settings.Chat.MaxOutputTokens,
            };
            var report = await RagConsole.RunWithProgressAsync(console, progress =>
                evaluator.RunAsync(data, n, ask, askOptions, new SyncProgress<EvalProgress>(p => progress(p.Stage, p.Done, p.Total)), ct));
            report = report with { EmbeddingModel = embedding };
            string markdown = report.ToMarkdown();
            console.Out.Write(markdown);
            if (parse.GetValue(output) is { } file)
            {
                try { File.WriteAllText(file, markdown); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new GlmException($"--out '{file}' cannot be written: {e.Message}", e); }
                console.Error.WriteLine($"report written to {file}");
            }
            return report.Ingestion.Failures.Count == 0 ? 0 : IngestVerb.SomeFailed;
        });
        return cmd;
    }
}
