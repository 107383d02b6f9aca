using System.ClientModel;
using AgentHost.Cli;
using Glm.Connector;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Llm;
using Glm.Engine.Encoders;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Stores.Qdrant;
using AgentHost.Rag.Stores.VectorData;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenAI;

namespace AgentHost.Hosting;

/// <summary>
/// The generic host behind the RAG verbs: configuration (appsettings.json next to the program → environment variables
/// <c>GLM_*</c> → command-line options), logging to stderr (warnings only unless --verbose) and DI for the knowledge-base
/// catalog, prompt library, chat client and embedding generator. Services that load models are created lazily, so
/// <c>glm kb list</c> never loads one.
/// </summary>
public static class RagHost
{
    /// <summary>File name of the configuration shipped next to the program.</summary>
    public const string SettingsFileName = "appsettings.json";

    /// <summary>Builds the host.</summary>
    /// <param name="console">Where logs go (stderr). See <see cref="RagHostHooks"/> for test hooks.</param>
    /// <param name="overrides">Configuration keys set by command-line options ("Rag:KbRoot" → value); highest precedence.</param>
    /// <param name="verbose">Log at Debug level instead of Warning.</param>
    public static IHost Build(CliConsole console, IReadOnlyDictionary<string, string?> overrides, bool verbose)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ContentRootPath = AppContext.BaseDirectory,
        });
        string settingsFile = RagHostHooks.SettingsFile ?? Path.Combine(AppContext.BaseDirectory, SettingsFileName);
        try
        {
            builder.Configuration.AddJsonFile(settingsFile, optional: true, reloadOnChange: false);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or System.Text.Json.JsonException)
        {
            throw new GlmException($"{settingsFile}: not valid JSON configuration ({e.Message})", e);
        }
        builder.Configuration.AddEnvironmentVariables("GLM_");
        builder.Configuration.AddInMemoryCollection(overrides.Where(kv => kv.Value is not null));

        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning);
        builder.Logging.AddProvider(new TextWriterLoggerProvider(console.Error, verbose ? LogLevel.Debug : LogLevel.Warning));

        GlmSettings settings;
        try { settings = builder.Configuration.Get<GlmSettings>() ?? new GlmSettings(); }
        catch (InvalidOperationException e)
        {
            throw new GlmException($"configuration ({settingsFile}, GLM_* environment variables or options) has a bad value: {e.Message}", e);
        }
        Validate(settings);
        FitToLocalModelContext(settings, console);
        var services = builder.Services;
        services.AddSingleton(settings);
        services.AddSingleton(console);
        services.AddSingleton(_ => new KnowledgeBaseCatalog(settings.Rag.KbRoot));
        // The knowledge bases as a Microsoft.Extensions.VectorData store (collections = knowledge bases); retrieval goes through it.
        services.AddSingleton(sp => new SqliteKnowledgeVectorStore(sp.GetRequiredService<KnowledgeBaseCatalog>()));
        if (settings.Rag.UsesQdrant)
        {
            // Rag:VectorStore = qdrant: retrieval searches the Qdrant collection of each knowledge base (KnowledgeChunkCollections).
            services.AddSingleton(_ => new QdrantKnowledgeVectorStore(new QdrantRestClient(new QdrantOptions(ParseEndpoint(settings.Rag.Qdrant.Url, "Rag:Qdrant:Url"))
            {
                ApiKey = settings.Rag.Qdrant.ApiKey, MaxRetries = settings.Rag.Qdrant.MaxRetries,
            }), ownsClient: true));
            services.AddSingleton<Microsoft.Extensions.VectorData.VectorStore>(sp => sp.GetRequiredService<QdrantKnowledgeVectorStore>());
        }
        else services.AddSingleton<Microsoft.Extensions.VectorData.VectorStore>(sp => sp.GetRequiredService<SqliteKnowledgeVectorStore>());
        services.AddSingleton(_ => new PromptLibrary(settings.Rag.PromptsDir ?? Path.Combine(AppContext.BaseDirectory, "prompts")));
        services.AddSingleton<IChatClient>(sp => CreateChatClient(settings.Chat, sp.GetRequiredService<ILoggerFactory>()));
        if (!settings.Embedding.Provider.Equals("none", StringComparison.OrdinalIgnoreCase))
            services.AddSingleton(sp => CreateEmbeddingGenerator(settings.Embedding, sp.GetRequiredService<ILoggerFactory>()));
        if (settings.Rag.Reranker.ModelDir is { } rerankerDir)
            services.AddSingleton<IPassageReranker>(sp =>
            {
                sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RagHost)).LogInformation("loading reranker {Model}", rerankerDir);
                return CrossEncoderPassageReranker.Load(rerankerDir, settings.Rag.Reranker.Device);
            });
        RagHostHooks.ConfigureServices?.Invoke(services);
        return builder.Build();
    }

    private static void Validate(GlmSettings s)
    {
        if (s.Rag.TopK < 1) throw new GlmException($"Rag:TopK = {s.Rag.TopK}: expected 1 or more");
        if (s.Rag.MinTermCoverage is < 0 or > 1) throw new GlmException($"Rag:MinTermCoverage = {s.Rag.MinTermCoverage}: expected a fraction in [0, 1]");
        if (s.Rag.Reranker.Candidates is < 1 or > 500) throw new GlmException($"Rag:Reranker:Candidates = {s.Rag.Reranker.Candidates}: expected 1–500");
        if (s.Rag.Reranker.ModelDir is { } r && string.IsNullOrWhiteSpace(r)) throw new GlmException("Rag:Reranker:ModelDir is empty; set a cross-encoder folder or null");
        if (!s.Rag.VectorStore.Equals("sqlite", StringComparison.OrdinalIgnoreCase) && !s.Rag.UsesQdrant)
            throw new GlmException($"Rag:VectorStore = '{s.Rag.VectorStore}': expected 'sqlite' or 'qdrant'");
        if (s.Rag.UsesQdrant)
        {
            ParseEndpoint(s.Rag.Qdrant.Url, "Rag:Qdrant:Url");
            if (s.Rag.Qdrant.MaxRetries is < 0 or > 10) throw new GlmException($"Rag:Qdrant:MaxRetries = {s.Rag.Qdrant.MaxRetries}: expected 0–10");
        }
        if (s.Rag.ContextTokens < 64) throw new GlmException($"Rag:ContextTokens = {s.Rag.ContextTokens}: expected at least 64");
        if (s.Summarize.ContextTokens < 256) throw new GlmException($"Summarize:ContextTokens = {s.Summarize.ContextTokens}: expected at least 256");
        if (s.Summarize.MaxOutputTokens < 16 || s.Summarize.MaxOutputTokens * 2 >= s.Summarize.ContextTokens)
            throw new GlmException($"Summarize:MaxOutputTokens = {s.Summarize.MaxOutputTokens}: expected 16 or more and under half of Summarize:ContextTokens ({s.Summarize.ContextTokens})");
    }

    /// <summary>The chat client the settings choose: the local GLM adapter or an OpenAI-compatible endpoint.</summary>
    public static IChatClient CreateChatClient(ChatSettings chat, ILoggerFactory? loggerFactory = null)
    {
        switch (chat.Provider.ToLowerInvariant())
        {
            case "local":
                var options = new GlmLoadOptions { Device = chat.Device, DType = chat.DType };
                string? dir = chat.ModelDir;
                loggerFactory?.CreateLogger(typeof(RagHost)).LogInformation("loading local model {Model}", dir ?? ModelOptions.BundledChatModelName);
                var model = dir is not null && dir.StartsWith("random:", StringComparison.Ordinal)
                    ? GlmModel.CreateRandom(dir["random:".Length..], options)
                    : GlmModel.Load(dir ?? ModelOptions.FindBundledModel(preferChatModel: true), options);
                return new OwnedModelChatClient(new GlmChatClient(new GlmModelTokenSource(model)), model);
            case "openai":
                var endpoint = ParseEndpoint(chat.Endpoint, "Chat:Endpoint");
                return new OpenAI.Chat.ChatClient(chat.Model, new ApiKeyCredential(chat.ApiKey ?? "none"),
                    new OpenAIClientOptions { Endpoint = endpoint }).AsIChatClient();
            default:
                throw new GlmException($"Chat:Provider = '{chat.Provider}': expected 'local' or 'openai'");
        }
    }

    /// <summary>The embedding generator the settings choose (models of the "glm" and "bge" providers are loaded here and owned by it).</summary>
    public static IEmbeddingGenerator<string, Embedding<float>> CreateEmbeddingGenerator(EmbeddingSettings embedding, ILoggerFactory? loggerFactory = null)
    {
        switch (embedding.Provider.ToLowerInvariant())
        {
            case "hashing":
                if (embedding.Dimensions is < 16 or > 8192)
                    throw new GlmException($"Embedding:Dimensions = {embedding.Dimensions}: expected 16–8192");
                return new HashingEmbeddingGenerator(embedding.Dimensions);
            case "openai":
                var endpoint = ParseEndpoint(embedding.Endpoint, "Embedding:Endpoint");
                if (string.IsNullOrWhiteSpace(embedding.Model)) throw new GlmException("Embedding:Model is empty; name the embedding model served at Embedding:Endpoint");
                return new OpenAI.Embeddings.EmbeddingClient(embedding.Model, new ApiKeyCredential(embedding.ApiKey ?? "none"),
                    new OpenAIClientOptions { Endpoint = endpoint }).AsIEmbeddingGenerator();
            case "glm":
            {
                string dir = RequireModelDir(embedding, "a GLM model folder or random:NAME");
                loggerFactory?.CreateLogger(typeof(RagHost)).LogInformation("loading GLM embedding model {Model}", dir);
                var options = new GlmLoadOptions { Device = embedding.Device };
                var model = dir.StartsWith("random:", StringComparison.Ordinal) ? GlmModel.CreateRandom(dir["random:".Length..], options) : GlmModel.Load(dir, options);
                try
                {
                    if (embedding.Layer < -1 || embedding.Layer > model.LayerCount)
                        throw new GlmException($"Embedding:Layer = {embedding.Layer}: expected -1 (last) or 0..{model.LayerCount} for {dir}");
                    return new OwnedEmbeddingGenerator(new GlmEmbeddingGenerator(model, new GlmEmbeddingOptions { Layer = embedding.Layer }), model);
                }
                catch { model.Dispose(); throw; }
            }
            case "bge":
            {
                string dir = RequireModelDir(embedding, "a sentence-embedding folder such as bge-small-zh-v1.5");
                if (!Directory.Exists(dir)) throw new GlmException($"Embedding:ModelDir = '{dir}': folder not found; expected a BERT / XLM-R embedding model (config.json, weights, vocab.txt or sentencepiece.bpe.model)");
                loggerFactory?.CreateLogger(typeof(RagHost)).LogInformation("loading encoder embedding model {Model}", dir);
                var model = EncoderEmbeddingModel.Load(dir, new EncoderEmbeddingOptions { Device = embedding.Device });
                return new EncoderEmbeddingGenerator(model, ownsModel: true);
            }
            default:
                throw new GlmException($"Embedding:Provider = '{embedding.Provider}': expected 'none', 'hashing', 'openai', 'glm' or 'bge'");
        }
    }

    /// <summary>
    /// A local model's context (config.json, read without loading weights) bounds every prompt: passages, answers and summary
    /// windows are shrunk to fit it, so a small model such as the bundled one answers instead of failing on prompt length.
    /// </summary>
    private static void FitToLocalModelContext(GlmSettings s, CliConsole console)
    {
        if (!s.Chat.Provider.Equals("local", StringComparison.OrdinalIgnoreCase)) return;
        if (RagHostHooks.ConfigureServices is not null) return; // the chat client is supplied by the embedding application
        string? dir = s.Chat.ModelDir;
        int context;
        if (dir is not null && dir.StartsWith("random:", StringComparison.Ordinal))
            context = Glm.Engine.Modeling.ModelPresets.Get(dir["random:".Length..]).MaxPositions;
        else
        {
            try { dir ??= ModelOptions.FindBundledModel(preferChatModel: true); }
            catch (GlmException) { return; } // reported when the model is actually needed
            context = Glm.Engine.Modeling.GlmConfig.Load(dir).MaxPositions;
        }
        int answer = Math.Min(s.Chat.MaxOutputTokens, Math.Max(32, context / 4));
        // Passage budget is counted with an approximate tokenizer: keep half the remaining room for the template and slack.
        int passages = Math.Min(s.Rag.ContextTokens, Math.Max(64, (context - answer) / 2));
        int summaryWindow = Math.Min(s.Summarize.ContextTokens, context);
        int summaryAnswer = Math.Min(s.Summarize.MaxOutputTokens, Math.Max(16, summaryWindow / 4));
        if (answer != s.Chat.MaxOutputTokens || passages != s.Rag.ContextTokens || summaryWindow != s.Summarize.ContextTokens)
            console.Error.WriteLine($"note: the model's context is {context} tokens; using {passages} tokens of passages, answers up to {answer} tokens, summary windows of {summaryWindow}.");
        s.Chat.MaxOutputTokens = answer;
        s.Rag.ContextTokens = passages;
        s.Summarize.ContextTokens = Math.Max(256, summaryWindow);
        s.Summarize.MaxOutputTokens = summaryAnswer;
    }

    private static string RequireModelDir(EmbeddingSettings embedding, string expected) =>
        string.IsNullOrWhiteSpace(embedding.ModelDir)
            ? throw new GlmException($"Embedding:Provider = '{embedding.Provider}' needs Embedding:ModelDir ({expected})")
            : embedding.ModelDir;

    private static Uri ParseEndpoint(string? value, string key) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new GlmException($"{key} = '{value}': expected an http(s) URL such as http://localhost:8000/v1");
}
