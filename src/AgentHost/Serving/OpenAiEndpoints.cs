using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Glm.Connector;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Serving;

/// <summary>The OpenAI-compatible routes and their response bodies (non-streaming JSON and SSE streams).</summary>
internal static class OpenAiEndpoints
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/health", (GlmServerBackend b, RequestGate gate) => Results.Json(new { status = "ok", model = b.ModelId, in_flight = gate.Admitted }));
        app.MapGet("/v1/models", (GlmServerBackend b) => Results.Json(new
        {
            @object = "list",
            data = new[] { new { id = b.ModelId, @object = "model", created = Started, owned_by = "glm" } },
        }));
        app.MapPost("/v1/chat/completions", ChatAsync);
        app.MapPost("/v1/completions", CompletionAsync);
        app.MapPost("/v1/embeddings", EmbeddingsAsync);
        app.MapFallback((HttpContext c) => throw new OpenAiError(404, $"Unknown route {c.Request.Method} {c.Request.Path}.", code: "unknown_url"));
    }

    private static readonly long Started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static async Task<JsonElement> ReadBodyAsync(HttpContext context, GlmServerOptions options)
    {
        if (context.Request.ContentLength > options.MaxBodyBytes)
            throw new OpenAiError(413, $"The request body ({context.Request.ContentLength} bytes) exceeds the limit of {options.MaxBodyBytes} bytes.", code: "request_too_large");
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
        return OpenAiRequests.ParseBody(buffer.ToArray());
    }

    private static async Task<IDisposable> EnterAsync(HttpContext context)
    {
        var gate = context.RequestServices.GetRequiredService<RequestGate>();
        return await gate.TryEnterAsync(context.RequestAborted).ConfigureAwait(false)
            ?? throw new OpenAiError(429, "The server is busy: the request queue is full. Retry later.", "rate_limit_error", code: "queue_full");
    }

    private static async Task ChatAsync(HttpContext context, GlmServerBackend backend, GlmServerOptions options)
    {
        var request = OpenAiRequests.ReadChat(await ReadBodyAsync(context, options).ConfigureAwait(false), backend.ModelId, options);
        using var lease = await EnterAsync(context).ConfigureAwait(false);
        var ct = context.RequestAborted;
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (!request.Stream)
        {
            var response = await backend.Chat.GetResponseAsync(request.Messages, request.Options, ct).ConfigureAwait(false);
            var contents = response.Messages.SelectMany(m => m.Contents).ToList();
            var calls = contents.OfType<FunctionCallContent>().ToList();
            await WriteJsonAsync(context, new Dictionary<string, object?>
            {
                ["id"] = id, ["object"] = "chat.completion", ["created"] = created, ["model"] = backend.ModelId,
                ["choices"] = new[]
                {
                    new Dictionary<string, object?>
                    {
                        ["index"] = 0,
                        ["message"] = new Dictionary<string, object?>
                        {
                            ["role"] = "assistant",
                            ["content"] = calls.Count > 0 && response.Text.Length == 0 ? null : response.Text,
                            ["tool_calls"] = calls.Count > 0 ? calls.Select((c, i) => ToolCallJson(c, null)).ToArray() : null,
                        },
                        ["logprobs"] = null,
                        ["finish_reason"] = FinishReason(response.FinishReason),
                    },
                },
                ["usage"] = UsageJson(response.Usage),
            }).ConfigureAwait(false);
            return;
        }

        StartSse(context);
        object Chunk(object delta, string? finish) => new Dictionary<string, object?>
        {
            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = backend.ModelId,
            ["choices"] = new[] { new Dictionary<string, object?> { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish } },
        };
        await SendAsync(context, Chunk(new { role = "assistant", content = "" }, null)).ConfigureAwait(false);
        UsageDetails? usage = null;
        ChatFinishReason? finishReason = null;
        int toolIndex = 0;
        await foreach (var update in backend.Chat.GetStreamingResponseAsync(request.Messages, request.Options, ct).ConfigureAwait(false))
        {
            finishReason = update.FinishReason ?? finishReason;
            foreach (var content in update.Contents)
            {
                switch (content)
                {
                    case TextContent text when text.Text.Length > 0:
                        await SendAsync(context, Chunk(new { content = text.Text }, null)).ConfigureAwait(false);
                        break;
                    case FunctionCallContent call:
                        await SendAsync(context, Chunk(new { tool_calls = new[] { ToolCallJson(call, toolIndex++) } }, null)).ConfigureAwait(false);
                        break;
                    case UsageContent u:
                        usage = u.Details;
                        break;
                }
            }
        }
        await SendAsync(context, Chunk(new { }, FinishReason(finishReason))).ConfigureAwait(false);
        if (request.IncludeUsage)
            await SendAsync(context, new Dictionary<string, object?>
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = backend.ModelId,
                ["choices"] = Array.Empty<object>(), ["usage"] = UsageJson(usage),
            }).ConfigureAwait(false);
        await DoneAsync(context).ConfigureAwait(false);
    }

    private static async Task CompletionAsync(HttpContext context, GlmServerBackend backend, GlmServerOptions options)
    {
        var request = OpenAiRequests.ReadCompletion(await ReadBodyAsync(context, options).ConfigureAwait(false), backend.ModelId, options);
        using var lease = await EnterAsync(context).ConfigureAwait(false);
        var ct = context.RequestAborted;
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        object Body(string text, string? finish, UsageDetails? usage, bool chunk) => new Dictionary<string, object?>
        {
            ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = backend.ModelId,
            ["choices"] = new[] { new Dictionary<string, object?> { ["text"] = text, ["index"] = 0, ["logprobs"] = null, ["finish_reason"] = finish } },
            ["usage"] = chunk ? null : UsageJson(usage),
        };
        if (!request.Stream)
        {
            var result = (await backend.Text.GetTextContentsAsync(request.Prompt, request.Settings, null, ct).ConfigureAwait(false))[0];
            string text = (request.Echo ? request.Prompt : "") + result.Text;
            await WriteJsonAsync(context, Body(text, result.Metadata?["FinishReason"] as string, result.Metadata?["Usage"] as UsageDetails, false)).ConfigureAwait(false);
            return;
        }
        StartSse(context);
        if (request.Echo) await SendAsync(context, Body(request.Prompt, null, null, true)).ConfigureAwait(false);
        UsageDetails? usage = null;
        string? finish = null;
        await foreach (var piece in backend.Text.GetStreamingTextContentsAsync(request.Prompt, request.Settings, null, ct).ConfigureAwait(false))
        {
            if (piece.Metadata is { } m && m.TryGetValue("Usage", out var u)) { usage = u as UsageDetails; finish = m["FinishReason"] as string; continue; }
            if (!string.IsNullOrEmpty(piece.Text)) await SendAsync(context, Body(piece.Text, null, null, true)).ConfigureAwait(false);
        }
        await SendAsync(context, Body("", finish ?? "stop", null, true)).ConfigureAwait(false);
        if (request.IncludeUsage)
            await SendAsync(context, new Dictionary<string, object?>
            {
                ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = backend.ModelId,
                ["choices"] = Array.Empty<object>(), ["usage"] = UsageJson(usage),
            }).ConfigureAwait(false);
        await DoneAsync(context).ConfigureAwait(false);
    }

    private static async Task EmbeddingsAsync(HttpContext context, GlmServerBackend backend, GlmServerOptions options)
    {
        var request = OpenAiRequests.ReadEmbedding(await ReadBodyAsync(context, options).ConfigureAwait(false), backend.ModelId, options);
        var generator = backend.Embeddings ?? throw new OpenAiError(400, "This server has no embedding model.", code: "embeddings_unavailable");
        using var lease = await EnterAsync(context).ConfigureAwait(false);
        var embeddings = await generator.GenerateAsync(request.Inputs, null, context.RequestAborted).ConfigureAwait(false);
        await WriteJsonAsync(context, new
        {
            @object = "list",
            data = embeddings.Select((e, i) => new Dictionary<string, object?>
            {
                ["object"] = "embedding", ["index"] = i,
                ["embedding"] = request.Base64 ? Convert.ToBase64String(MemoryMarshal.AsBytes(e.Vector.Span)) : e.Vector.ToArray(),
            }).ToArray(),
            model = backend.ModelId,
            usage = new { prompt_tokens = embeddings.Usage?.InputTokenCount ?? 0, total_tokens = embeddings.Usage?.InputTokenCount ?? 0 },
        }).ConfigureAwait(false);
    }

    private static object ToolCallJson(FunctionCallContent call, int? index)
    {
        var json = new Dictionary<string, object?>();
        if (index is int i) json["index"] = i;
        json["id"] = call.CallId;
        json["type"] = "function";
        json["function"] = new { name = call.Name, arguments = GlmPromptMapper.ArgumentsJson(call) };
        return json;
    }

    private static string FinishReason(ChatFinishReason? reason) =>
        reason == ChatFinishReason.Length ? "length" : reason == ChatFinishReason.ToolCalls ? "tool_calls" : "stop";

    private static object UsageJson(UsageDetails? usage)
    {
        long prompt = usage?.InputTokenCount ?? 0, completion = usage?.OutputTokenCount ?? 0;
        return new { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion };
    }

    private static Task WriteJsonAsync(HttpContext context, object body)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, Json), context.RequestAborted);
    }

    private static void StartSse(HttpContext context)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    private static async Task SendAsync(HttpContext context, object chunk)
    {
        await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, Json) + "\n\n", Encoding.UTF8, context.RequestAborted).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task DoneAsync(HttpContext context)
    {
        await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
