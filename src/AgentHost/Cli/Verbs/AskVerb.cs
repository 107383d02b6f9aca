using System.CommandLine;
using AgentHost.Hosting;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Stores.VectorData;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm ask "问题" [--kb NAME] [--top-k K] [--model DIR]</c>: retrieval-augmented answer with checked citations.</summary>
internal static class AskVerb
{
    public static Command Create(CliConsole console)
    {
        var rag = new RagVerbOptions();
        var question = new Argument<string>("QUESTION") { Description = "The question, e.g. \"孔乙己欠了咸亨酒店多少钱？\"" };
        var kb = new Option<string?>("--kb") { Description = "Knowledge base (default Rag:DefaultKb, 'samples': built from samples/docs on first use)." };
        var topK = new Option<int?>("--top-k", "-k") { Description = "Passages to retrieve (default Rag:TopK, 5)." };
        var mode = new Option<RetrievalMode?>("--mode") { Description = "keyword, dense or hybrid (default hybrid; keyword-only without an embedder)." };
        var rewrite = new Option<bool>("--rewrite") { Description = "Let the model rewrite the question into a search query first (prompts/query_rewrite)." };
        var cmd = new Command("ask", "Answer a question from a knowledge base, streaming, with numbered citations [n] listed after the answer.");
        cmd.Add(question); cmd.Add(kb); cmd.Add(topK); cmd.Add(mode); cmd.Add(rewrite);
        rag.AddTo(cmd, model: true, embedding: true);
        cmd.SetAction(async (parse, ct) =>
        {
            using var host = rag.BuildHost(parse, console);
            var services = host.Services;
            var settings = services.GetRequiredService<GlmSettings>();
            int k = parse.GetValue(topK) ?? settings.Rag.TopK;
            if (k is < 1 or > 50) throw new GlmException($"--top-k {k}: expected 1–50");
            string name = parse.GetValue(kb) ?? settings.Rag.DefaultKb;
            var prompts = services.GetRequiredService<PromptLibrary>();
            prompts.ValidateAll();
            await EnsureKnowledgeBaseAsync(console, services, name, parse.GetValue(kb) is null, ct);

            services.GetRequiredService<KnowledgeBaseCatalog>().CheckExists(name);
            if (await KnowledgeChunkCollections.EnsureInQdrantAsync(services, name, ct))
                console.Error.WriteLine($"copied knowledge base '{name}' to its Qdrant collection (Rag:VectorStore = qdrant).");
            using var chunks = KnowledgeChunkCollections.ForRetrieval(services, name);
            var retriever = CreateRetriever(services, chunks);
            var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("ask");
            var chat = new LazyChatClient(services);
            var pipeline = new AskPipeline(retriever, chat, prompts, logger);
            var options = new AskOptions
            {
                TopK = k, Mode = parse.GetValue(mode) ?? RetrievalMode.Hybrid,
                Thresholds = new RelevanceThresholds(settings.Rag.MinTermCoverage, settings.Rag.MinCosine),
                ContextTokens = settings.Rag.ContextTokens, MaxOutputTokens = settings.Chat.MaxOutputTokens,
                RewriteQuery = parse.GetValue(rewrite),
            };
            var result = await pipeline.AskAsync(parse.GetValue(question)!, options, delta => { console.Out.Write(delta); console.Out.Flush(); }, ct);
            console.Out.WriteLine();
            PrintCitations(console, result);
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// A retriever over <paramref name="store"/> through the VectorData collection Rag:VectorStore chooses (the file itself, or its
    /// Qdrant collection), with the configured embedder and reranker, if any.
    /// </summary>
    public static Retriever CreateRetriever(IServiceProvider services, SqliteKnowledgeBase store) =>
        CreateRetriever(services, KnowledgeChunkCollections.ForRetrieval(services, store));

    /// <summary>A retriever over a knowledge base's VectorData collection with the configured embedder and reranker (Rag:Reranker:ModelDir), if any.</summary>
    public static Retriever CreateRetriever(IServiceProvider services, VectorStoreCollection<string, KnowledgeChunk> chunks) =>
        new(chunks, services.GetService<IEmbeddingGenerator<string, Embedding<float>>>(), services.GetService<IPassageReranker>(),
            services.GetRequiredService<GlmSettings>().Rag.Reranker.Candidates);

    /// <summary>Prints the cited passages (or, when the answer cites none, the passages the model saw).</summary>
    public static void PrintCitations(CliConsole console, AskResult result)
    {
        if (result.NoAnswer) return;
        if (result.DroppedCitations.Count > 0)
            console.Error.WriteLine($"note: removed citation(s) {string.Join(", ", result.DroppedCitations.Select(n => $"[{n}]"))} that pointed at no retrieved passage (1–{result.Passages.Count}).");
        console.Out.WriteLine();
        IEnumerable<Citation> list = result.Citations;
        if (result.Citations.Count == 0)
        {
            console.Out.WriteLine("（回答未标注引用；以下是提供给模型的资料）");
            list = result.Passages.Select((p, i) => new Citation(i + 1, p.Hit.Source, p.Hit.Section, AskPipeline.Snippet(p.Hit.Text), p.Hit.StartOffset, p.Hit.EndOffset));
        }
        else console.Out.WriteLine("参考来源：");
        foreach (var c in list)
        {
            string section = c.Section.Length > 0 ? $" › {c.Section}" : "";
            console.Out.WriteLine($"[{c.Number}] {c.Source}{section} (字符 {c.StartOffset}–{c.EndOffset})");
            console.Out.WriteLine($"    {c.Snippet}");
        }
    }

    /// <summary>Builds the default 'samples' knowledge base from samples/docs when it is missing; other missing names are an error.</summary>
    public static async Task EnsureKnowledgeBaseAsync(CliConsole console, IServiceProvider services, string name, bool isDefault, CancellationToken ct)
    {
        var catalog = services.GetRequiredService<KnowledgeBaseCatalog>();
        IngestVerb.CheckName(catalog, name);
        if (catalog.Exists(name)) return;
        var settings = services.GetRequiredService<GlmSettings>();
        if (!isDefault || name != settings.Rag.DefaultKb) return; // Open(mustExist) reports the missing name with the known ones
        string samples = settings.Rag.SamplesDir ?? FindSamples()
            ?? throw new GlmException($"knowledge base '{name}' does not exist and the bundled samples/docs folder was not found next to the program or in a parent folder; create one with: glm ingest PATH --kb {name}");
        if (!Directory.Exists(samples)) throw new GlmException($"Rag:SamplesDir '{samples}' does not exist");
        console.Error.WriteLine($"knowledge base '{name}' not found at {catalog.PathFor(name)}; indexing the sample documents in {samples} first.");
        var report = await IngestVerb.RunAsync(console, services, name, [samples], new ChunkingOptions(settings.Rag.ChunkTokens, settings.Rag.OverlapTokens), false, ct);
        if (report.Failures.Count > 0)
            console.Error.WriteLine($"warning: {report.Failures.Count} sample file(s) failed: {string.Join("; ", report.Failures.Select(f => f.Message))}");
    }

    /// <summary>samples/docs next to the program or in a parent folder of it or of the current directory.</summary>
    public static string? FindSamples()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "samples", "docs");
                if (Directory.Exists(candidate)) return candidate;
            }
        return null;
    }
}

/// <summary>Resolves the configured chat client on first use, so a question answered without the model never loads it.</summary>
internal sealed class LazyChatClient(IServiceProvider services) : IChatClient
{
    private IChatClient Inner => services.GetRequiredService<IChatClient>();

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Inner.GetResponseAsync(messages, options, cancellationToken);

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Inner.GetStreamingResponseAsync(messages, options, cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null) => Inner.GetService(serviceType, serviceKey);

    public void Dispose() { }
}
