using System.CommandLine;
using AgentHost.Hosting;
using AgentHost.Rag.Agent;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Summarization;
using Glm.Engine;
using Glm.Engine.Generation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm chat</c>: interactive multi-turn chat with the model's own template, streaming. With <c>--kb NAME</c> it is a
/// knowledge-base agent (<see cref="KnowledgeBaseAgent"/>): Semantic Kernel function calling over search_documents,
/// summarize_document and list_sources, or retrieve-then-answer per turn for models without a tool format.
/// </summary>
internal static class ChatVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var sampling = new SamplingOptions();
        var rag = new RagVerbOptions();
        var system = new Option<string?>("--system") { Description = "System prompt (plain chat only)." };
        var kb = new Option<string?>("--kb") { Description = "Chat with a knowledge base: the model searches, summarises and lists its documents and cites passages [n]." };
        var topK = new Option<int?>("--passages", "-k") { Description = "With --kb: passages per retrieve-then-answer turn (default Rag:TopK; --top-k is the sampling option)." };
        var cmd = new Command("chat", "Interactive multi-turn chat (type /exit or an empty line at EOF to leave, /reset to clear history); --kb NAME answers from a knowledge base.");
        model.AddTo(cmd);
        sampling.AddTo(cmd);
        cmd.Add(system); cmd.Add(kb); cmd.Add(topK);
        rag.AddTo(cmd, model: false, embedding: true);
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(kb) is { } name) return await RunAgentAsync(console, parse, model, rag, name, parse.GetValue(topK), ct);
            var options = sampling.Build(parse, defaultTemperature: 0.8f, defaultTopP: 0.8f);
            using var glm = model.Load(parse, preferChatModel: true);
            var session = ChatSession.Create(glm, parse.GetValue(system));
            console.Error.WriteLine($"chatting with {glm.Source} — /exit to leave, /reset to start over.");
            await RunLoopAsync(console, session.Reset, async line =>
            {
                await foreach (var delta in session.SendAsync(line, options, ct))
                {
                    console.Out.Write(delta);
                    console.Out.Flush();
                }
                console.Out.WriteLine();
            }, ct);
            return 0;
        });
        return cmd;
    }

    private static async Task<int> RunAgentAsync(CliConsole console, ParseResult parse, ModelOptions model, RagVerbOptions rag, string name, int? topK,
        CancellationToken ct)
    {
        var overrides = new Dictionary<string, string?>();
        if (parse.GetValue(model.Model) is { } dir)
        {
            overrides["Chat:Provider"] = "local";
            overrides["Chat:ModelDir"] = dir;
        }
        if (parse.GetValue(model.Device) is { } device) overrides["Chat:Device"] = device;
        if (parse.GetValue(model.DType) is { } dtype) overrides["Chat:DType"] = dtype;
        using var host = rag.BuildHost(parse, console, overrides);
        var services = host.Services;
        var settings = services.GetRequiredService<GlmSettings>();
        int k = topK ?? settings.Rag.TopK;
        if (k is < 1 or > 50) throw new GlmException($"--passages {k}: expected 1–50");
        var prompts = services.GetRequiredService<PromptLibrary>();
        prompts.ValidateAll();
        await AskVerb.EnsureKnowledgeBaseAsync(console, services, name, isDefault: name == settings.Rag.DefaultKb, ct);
        if (await KnowledgeChunkCollections.EnsureInQdrantAsync(services, name, ct))
            console.Error.WriteLine($"copied knowledge base '{name}' to its Qdrant collection (Rag:VectorStore = qdrant).");
        using var store = services.GetRequiredService<KnowledgeBaseCatalog>().Open(name, mustExist: true);
        var agent = CreateAgent(services, store, name, k, console.Error);
        console.Error.WriteLine($"chatting with knowledge base '{name}' — /exit to leave, /reset to start over.");
        await RunLoopAsync(console, agent.Reset, async line =>
        {
            var result = await agent.SendAsync(line, delta => { console.Out.Write(delta); console.Out.Flush(); }, ct);
            console.Out.WriteLine();
            AskVerb.PrintCitations(console, result);
        }, ct);
        return 0;
    }

    /// <summary>The knowledge-base agent over <paramref name="store"/> with the host's chat client, embedder, reranker and settings.</summary>
    public static KnowledgeBaseAgent CreateAgent(IServiceProvider services, SqliteKnowledgeBase store, string name, int topK, TextWriter? notices)
    {
        var settings = services.GetRequiredService<GlmSettings>();
        var prompts = services.GetRequiredService<PromptLibrary>();
        var loggers = services.GetRequiredService<ILoggerFactory>();
        var chat = new LazyChatClient(services);
        var retriever = AskVerb.CreateRetriever(services, store);
        var thresholds = new RelevanceThresholds(settings.Rag.MinTermCoverage, settings.Rag.MinCosine);
        var plugin = new KnowledgeBasePlugin(store, retriever, chat, prompts, new KnowledgeBasePluginOptions
        {
            Thresholds = thresholds,
            Summarize = new SummarizeOptions(settings.Summarize.ContextTokens, settings.Summarize.MaxOutputTokens),
        });
        return new KnowledgeBaseAgent(chat, retriever, plugin, prompts, new KnowledgeBaseAgentOptions
        {
            KnowledgeBase = name,
            Ask = new AskOptions
            {
                TopK = topK, Mode = RetrievalMode.Hybrid, Thresholds = thresholds,
                ContextTokens = settings.Rag.ContextTokens, MaxOutputTokens = settings.Chat.MaxOutputTokens,
            },
        }, notices, loggers);
    }

    private static async Task RunLoopAsync(CliConsole console, Action reset, Func<string, Task> answer, CancellationToken ct)
    {
        var input = RagHostHooks.Input ?? Console.In;
        while (!ct.IsCancellationRequested)
        {
            console.Out.Write("\n你: ");
            console.Out.Flush();
            string? line = input.ReadLine();
            if (line is null || line.Trim() == "/exit") break;
            if (line.Trim() == "/reset") { reset(); continue; }
            if (string.IsNullOrWhiteSpace(line)) continue;
            console.Out.Write("GLM: ");
            await answer(line);
        }
    }
}
