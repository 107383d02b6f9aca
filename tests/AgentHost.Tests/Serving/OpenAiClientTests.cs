using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace AgentHost.Tests.Serving;

/// <summary>The server as the official OpenAI .NET client (2.15.0) sees it, on a real loopback port.</summary>
public sealed class OpenAiClientTests
{
    private static OpenAIClientOptions Options(TestServer server) => new() { Endpoint = server.V1, NetworkTimeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task ChatCompletionReturnsTextAndUsage()
    {
        var source = new ScriptedSource("\n你好，我是 GLM。");
        await using var server = await TestServer.StartAsync(source);
        var client = new ChatClient("glm-test", new ApiKeyCredential("unused"), Options(server));

        ChatCompletion completion = await client.CompleteChatAsync([new SystemChatMessage("简短回答"), new UserChatMessage("你是谁？")],
            new ChatCompletionOptions { Temperature = 0.2f, MaxOutputTokenCount = 100 });

        Assert.Equal("你好，我是 GLM。", completion.Content.Single().Text);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("glm-test", completion.Model);
        Assert.True(completion.Usage.InputTokenCount > 10);
        Assert.Equal(6, completion.Usage.OutputTokenCount); // 11 characters in pieces of 2
        Assert.Equal("[gMASK]<sop><|system|>\n简短回答<|user|>\n你是谁？<|assistant|>", source.Prompts.Single());
    }

    [Fact]
    public async Task StreamingDeliversPiecesFinishReasonAndUsage()
    {
        await using var server = await TestServer.StartAsync(new ScriptedSource("\nstreaming works fine"));
        var client = new ChatClient("glm-test", new ApiKeyCredential("unused"), Options(server));

        var text = new StringBuilder();
        int updates = 0;
        OpenAI.Chat.ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("go")]))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal("streaming works fine", text.ToString());
        Assert.True(updates > 5);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, finish);
        Assert.NotNull(usage); // the client asks for stream_options.include_usage
        Assert.Equal(11, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task ToolCallsRoundTripThroughTheOfficialClient()
    {
        var source = new ScriptedSource("get_weather\n{\"city\": \"北京\"}", "\n北京晴，25℃。", "get_weather\n{\"city\": \"上海\"}");
        await using var server = await TestServer.StartAsync(source);
        var client = new ChatClient("glm-test", new ApiKeyCredential("unused"), Options(server));
        var tool = ChatTool.CreateFunctionTool("get_weather", "Gets the weather",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        var messages = new List<OpenAI.Chat.ChatMessage> { new UserChatMessage("北京天气？") };

        ChatCompletion first = await client.CompleteChatAsync(messages, options);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("北京", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());
        Assert.StartsWith("call_", call.Id);

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "{\"weather\": \"晴\", \"temperature\": 25}"));
        ChatCompletion second = await client.CompleteChatAsync(messages, options);
        Assert.Equal("北京晴，25℃。", second.Content.Single().Text);
        Assert.EndsWith("<|user|>\n北京天气？<|assistant|>get_weather\n{\"city\": \"北京\"}<|observation|>\n{\"weather\": \"晴\", \"temperature\": 25}<|assistant|>",
            source.Prompts[1]);

        // Streaming tool calls arrive as tool_call deltas.
        var name = new StringBuilder();
        var args = new StringBuilder();
        OpenAI.Chat.ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("上海？")], options))
        {
            foreach (var t in update.ToolCallUpdates)
            {
                name.Append(t.FunctionName);
                if (t.FunctionArgumentsUpdate is { } a && !a.ToMemory().IsEmpty) args.Append(a.ToString());
            }
            finish ??= update.FinishReason;
        }
        Assert.Equal("get_weather", name.ToString());
        Assert.Equal("{\"city\": \"上海\"}", args.ToString());
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, finish);
    }

    [Fact]
    public async Task ModelsListAndApiKeyAreHonoured()
    {
        await using var server = await TestServer.StartAsync(new ScriptedSource("\nok"), new AgentHost.Serving.GlmServerOptions { ApiKey = "sekrit" });
        var models = new OpenAIModelClient(new ApiKeyCredential("sekrit"), Options(server));
        var list = (await models.GetModelsAsync()).Value;
        Assert.Equal("glm-test", Assert.Single(list).Id);

        var wrong = new ChatClient("glm-test", new ApiKeyCredential("wrong"), Options(server));
        var error = await Assert.ThrowsAsync<ClientResultException>(() => wrong.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, error.Status);

        var unknown = new ChatClient("gpt-4o", new ApiKeyCredential("sekrit"), Options(server));
        var notFound = await Assert.ThrowsAsync<ClientResultException>(() => unknown.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, notFound.Status);
        Assert.Contains("gpt-4o", notFound.Message);
    }

    [SharedDataFact]
    public async Task EmbeddingsThroughTheOfficialClientMatchTheGenerator()
    {
        await using var server = await TestServer.StartAsync(new ScriptedSource(), embeddingModel: TinyModel.Model);
        var client = new EmbeddingClient("glm-test", new ApiKeyCredential("unused"), Options(server));

        OpenAIEmbeddingCollection result = await client.GenerateEmbeddingsAsync(["北京的天气", "上海的天气"]);

        Assert.Equal(2, result.Count);
        var expected = await new Glm.Connector.GlmEmbeddingGenerator(TinyModel.Model).GenerateAsync(["北京的天气"]);
        Assert.Equal(expected[0].Vector.ToArray(), result[0].ToFloats().ToArray());
        Assert.Equal(64, result[1].ToFloats().Length);
        Assert.True(result.Usage.InputTokenCount > 0);
    }
}
