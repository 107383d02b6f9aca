using System.Net;
using System.Text;
using System.Text.Json;
using AgentHost.Serving;
using Glm.Engine;

namespace AgentHost.Tests.Serving;

/// <summary>Raw HTTP behaviour: error bodies and status codes, SSE framing, completions, queue limits, disconnects.</summary>
public sealed class ServerProtocolTests
{
    private static async Task<JsonElement> ErrorOf(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.True(error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _));
        return error;
    }

    [Fact]
    public async Task BadRequestsGetOpenAiStyleErrors()
    {
        await using var server = await TestServer.StartAsync(new ScriptedSource(), new GlmServerOptions { MaxBodyBytes = 4096 });

        var invalid = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions", "{\"model\": \"glm-test\", \"messages\": ["), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_json", invalid.GetProperty("code").GetString());

        var unknown = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions",
            """{"model":"nope","messages":[{"role":"user","content":"hi"}]}"""), HttpStatusCode.NotFound);
        Assert.Equal("model_not_found", unknown.GetProperty("code").GetString());

        var negative = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions",
            """{"model":"glm-test","max_tokens":-5,"messages":[{"role":"user","content":"hi"}]}"""), HttpStatusCode.BadRequest);
        Assert.Equal("max_tokens", negative.GetProperty("param").GetString());

        var tooMany = await ErrorOf(await server.PostJsonAsync("/v1/completions", """{"model":"glm-test","prompt":"x","max_tokens":999999}"""), HttpStatusCode.BadRequest);
        Assert.Contains("limit", tooMany.GetProperty("message").GetString());

        var noMessages = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions", """{"model":"glm-test","messages":[]}"""), HttpStatusCode.BadRequest);
        Assert.Equal("messages", noMessages.GetProperty("param").GetString());

        var badRole = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions",
            """{"model":"glm-test","messages":[{"role":"wizard","content":"hi"}]}"""), HttpStatusCode.BadRequest);
        Assert.Equal("messages[0].role", badRole.GetProperty("param").GetString());

        var temperature = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions",
            """{"model":"glm-test","temperature":"hot","messages":[{"role":"user","content":"hi"}]}"""), HttpStatusCode.BadRequest);
        Assert.Equal("temperature", temperature.GetProperty("param").GetString());

        string big = "{\"model\":\"glm-test\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 10_000) + "\"}]}";
        var oversize = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions", big), HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("request_too_large", oversize.GetProperty("code").GetString());

        var chunked = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big))) };
        chunked.Headers.TransferEncodingChunked = true;
        using (var fresh = new HttpClient { BaseAddress = server.BaseAddress })
            await ErrorOf(await fresh.SendAsync(chunked), HttpStatusCode.RequestEntityTooLarge);

        await ErrorOf(await server.Http.GetAsync("/v1/nothing-here"), HttpStatusCode.NotFound);
        var embeddings = await ErrorOf(await server.PostJsonAsync("/v1/embeddings", """{"model":"glm-test","input":"x"}"""), HttpStatusCode.BadRequest);
        Assert.Equal("embeddings_unavailable", embeddings.GetProperty("code").GetString());
    }

    [Fact]
    public async Task StreamingUsesSseDataLinesAndEndsWithDone()
    {
        await using var server = await TestServer.StartAsync(new ScriptedSource("\nabcdef"));
        var response = await server.PostJsonAsync("/v1/chat/completions",
            """{"model":"glm-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        string body = await response.Content.ReadAsStringAsync();
        var events = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Equal("abcdef", string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta")).Select(d => d.TryGetProperty("content", out var t) ? t.GetString() : "")));
        Assert.Equal("stop", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(4, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task CompletionsContinueThePlainPrompt()
    {
        var source = new ScriptedSource(" there", " streamed");
        await using var server = await TestServer.StartAsync(source);

        var plain = JsonDocument.Parse(await (await server.PostJsonAsync("/v1/completions",
            """{"model":"glm-test","prompt":"Hello","max_tokens":16}""")).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("text_completion", plain.GetProperty("object").GetString());
        Assert.Equal(" there", plain.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("stop", plain.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(3, plain.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("[gMASK]<sop>Hello", source.Prompts[0]);

        string sse = await (await server.PostJsonAsync("/v1/completions",
            """{"model":"glm-test","prompt":"Hi","stream":true,"max_tokens":2}""")).Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", sse);
        Assert.Contains("\"finish_reason\":\"length\"", sse);
    }

    [Fact]
    public async Task AFullQueueAnswers429AndTheHealthEndpointStaysUp()
    {
        var hold = new TaskCompletionSource();
        var source = new ScriptedSource("\nfirst", "\nsecond") { Hold = hold.Task };
        await using var server = await TestServer.StartAsync(source, new GlmServerOptions { MaxConcurrentRequests = 1, MaxQueuedRequests = 0 });
        const string body = """{"model":"glm-test","messages":[{"role":"user","content":"hi"}]}""";

        var first = server.PostJsonAsync("/v1/chat/completions", body);
        await source.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var busy = await ErrorOf(await server.PostJsonAsync("/v1/chat/completions", body), HttpStatusCode.TooManyRequests);
        Assert.Equal("rate_limit_error", busy.GetProperty("type").GetString());
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health")).StatusCode);

        hold.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.PostJsonAsync("/v1/chat/completions", body)).StatusCode);
    }

    [Fact]
    public async Task AClientThatDisconnectsCancelsItsGeneration()
    {
        var source = new ScriptedSource("\n" + new string('z', 2000)) { PieceDelay = TimeSpan.FromMilliseconds(5) };
        await using var server = await TestServer.StartAsync(source);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"glm-test","stream":true,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        using (var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
        }
        await source.CancelSeen.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(source.PiecesSent < 1000, $"generation ran on after the disconnect ({source.PiecesSent} pieces)");
    }

    [Fact]
    public void NonLoopbackBindingRequiresAnApiKey()
    {
        var error = Assert.Throws<GlmException>(() => new GlmServerOptions { Host = "0.0.0.0" }.Validate());
        Assert.Contains("--api-key", error.Message);
        new GlmServerOptions { Host = "0.0.0.0", ApiKey = "k" }.Validate();
        new GlmServerOptions { Host = "::1" }.Validate();
    }

    [Fact]
    public async Task RequestGateAdmitsUpToConcurrentPlusQueued()
    {
        var gate = new RequestGate(concurrent: 1, queued: 1);
        var a = await gate.TryEnterAsync(CancellationToken.None);
        var b = gate.TryEnterAsync(CancellationToken.None);
        Assert.Null(await gate.TryEnterAsync(CancellationToken.None));
        Assert.False(b.IsCompleted);
        a!.Dispose();
        (await b)!.Dispose();
        Assert.Equal(0, gate.Admitted);
    }
}
