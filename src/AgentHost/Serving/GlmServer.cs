using System.Net;
using Glm.Connector;
using Glm.Engine;
using Glm.Engine.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentHost.Serving;

/// <summary>What the server answers with: the chat client, the text service and (optionally) the embedding generator of one model.</summary>
public sealed record GlmServerBackend(GlmChatClient Chat, GlmTextGenerationService Text, IEmbeddingGenerator<string, Embedding<float>>? Embeddings)
{
    /// <summary>The served model id (what clients pass as <c>model</c>).</summary>
    public string ModelId => Chat.ModelId;

    /// <summary>
    /// The backend of a loaded model: chat, text and embeddings over the same weights. With <paramref name="scheduler"/> (on
    /// the same model, owned by the caller) concurrent chat and text requests are decoded together (continuous batching).
    /// </summary>
    public static GlmServerBackend ForModel(GlmModel model, string? modelId = null, BatchScheduler? scheduler = null)
    {
        var source = new GlmModelTokenSource(model, modelId, scheduler);
        return new GlmServerBackend(new GlmChatClient(source), new GlmTextGenerationService(source),
            new GlmEmbeddingGenerator(model, new GlmEmbeddingOptions { ModelId = source.ModelId }));
    }
}

/// <summary>
/// The OpenAI-compatible HTTP server: <c>POST /v1/chat/completions</c>, <c>/v1/completions</c>, <c>/v1/embeddings</c>,
/// <c>GET /v1/models</c>, <c>/health</c> on Kestrel, with bearer-key auth, body-size and token limits and a bounded queue.
/// </summary>
public static class GlmServer
{
    /// <summary>Builds (does not start) the web application for <paramref name="backend"/>.</summary>
    public static WebApplication Build(GlmServerBackend backend, GlmServerOptions options, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            var address = options.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(options.Host);
            kestrel.Listen(address, options.Port);
        });
        builder.Services.AddSingleton(backend);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(new RequestGate(options.MaxConcurrentRequests, options.MaxQueuedRequests));

        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            try
            {
                if (context.Request.Path != "/health" && options.ApiKey is { Length: > 0 } key && !Authorized(context.Request, key))
                    throw new OpenAiError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'.", "authentication_error", code: "invalid_api_key");
                await next(context).ConfigureAwait(false);
            }
            catch (OpenAiError error) { await error.WriteAsync(context.Response).ConfigureAwait(false); }
            catch (BadHttpRequestException bad) when (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                await new OpenAiError(413, $"The request body exceeds the limit of {options.MaxBodyBytes} bytes.", code: "request_too_large")
                    .WriteAsync(context.Response).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { /* the client left */ }
            catch (Exception e) when (e is ArgumentException or GlmException)
            {
                await new OpenAiError(400, e.Message, code: e is GlmException ? "model_error" : "invalid_value").WriteAsync(context.Response).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                app.Logger.LogError(e, "request failed");
                await new OpenAiError(500, "The server failed to process the request: " + e.Message, "server_error").WriteAsync(context.Response).ConfigureAwait(false);
            }
        });
        OpenAiEndpoints.Map(app);
        return app;
    }

    private static bool Authorized(HttpRequest request, string key)
    {
        string? header = request.Headers.Authorization;
        const string prefix = "Bearer ";
        return header is not null && header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()), System.Text.Encoding.UTF8.GetBytes(key));
    }

    /// <summary>The first address the started <paramref name="app"/> listens on (e.g. http://127.0.0.1:53124).</summary>
    public static Uri BaseAddress(WebApplication app) =>
        new(app.Urls.FirstOrDefault() ?? throw new InvalidOperationException("the server is not started"));
}
