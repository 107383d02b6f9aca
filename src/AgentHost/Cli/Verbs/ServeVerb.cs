using System.CommandLine;
using AgentHost.Serving;
using Glm.Engine.Generation;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm serve</c>: an OpenAI-compatible HTTP server (chat, completions, embeddings) over one model.</summary>
internal static class ServeVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var host = new Option<string>("--host") { Description = "Address to bind (default 127.0.0.1; a non-loopback address needs --api-key).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (default 8000).", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string?>("--api-key") { Description = "Bearer key clients must send (default: none; required off loopback). Also read from GLM_API_KEY." };
        var modelId = new Option<string?>("--model-id") { Description = "Model id clients pass as 'model' (default: the model folder's name)." };
        var maxTokens = new Option<int>("--max-tokens-limit") { Description = "Largest max_tokens a request may ask for (default 4096).", DefaultValueFactory = _ => 4096 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests that may wait for the model (default 16); more get 429.", DefaultValueFactory = _ => 16 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body (default 1048576); larger get 413.", DefaultValueFactory = _ => 1 << 20 };
        var concurrency = new Option<int>("--concurrency")
        {
            Description = "Requests decoded together by continuous batching (default 1: one at a time). Above 1, a batch scheduler serves "
                + "chat and completions (ChatGLM / GLM-4 models).",
            DefaultValueFactory = _ => 1,
        };
        var batchContext = new Option<int?>("--batch-context") { Description = "With --concurrency > 1: longest prompt + completion per request (default: the model's context, at most 2048)." };
        var cmd = new Command("serve", "Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /health).");
        model.AddTo(cmd);
        foreach (var option in new Option[] { host, port, apiKey, modelId, maxTokens, maxQueue, maxBody, concurrency, batchContext }) cmd.Add(option);
        cmd.SetAction(async (parse, ct) =>
        {
            var options = new GlmServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                ApiKey = parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("GLM_API_KEY"),
                MaxTokensLimit = parse.GetValue(maxTokens),
                DefaultMaxTokens = Math.Min(512, parse.GetValue(maxTokens)),
                MaxQueuedRequests = parse.GetValue(maxQueue),
                MaxBodyBytes = parse.GetValue(maxBody),
                MaxConcurrentRequests = parse.GetValue(concurrency),
            };
            options.Validate(); // before loading a model for nothing
            using var glm = model.Load(parse);
            using var scheduler = options.MaxConcurrentRequests > 1
                ? new BatchScheduler(glm, new BatchSchedulerOptions { MaxBatch = options.MaxConcurrentRequests, MaxContext = parse.GetValue(batchContext) })
                : null;
            var backend = GlmServerBackend.ForModel(glm, parse.GetValue(modelId), scheduler);
            await using var app = GlmServer.Build(backend, options);
            await app.StartAsync(ct);
            console.Error.WriteLine($"serving {backend.ModelId} on {GlmServer.BaseAddress(app)} (OpenAI-compatible, /v1"
                + (scheduler is null ? "" : $", continuous batching of up to {scheduler.MaxBatch} requests, {scheduler.MaxContext} tokens each") + "); Ctrl+C to stop.");
            try { await Task.Delay(Timeout.Infinite, ct); }
            catch (OperationCanceledException) { }
            await app.StopAsync(CancellationToken.None);
            return 0;
        });
        return cmd;
    }
}
