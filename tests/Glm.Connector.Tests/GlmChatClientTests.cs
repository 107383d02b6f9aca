using System.Text.Json;
using Glm.Connector.Tests.Support;
using Glm.Engine.Tokenization;
using Microsoft.Extensions.AI;
using ChatRole = Microsoft.Extensions.AI.ChatRole;
using GlmRole = Glm.Engine.Tokenization.ChatRole;

namespace Glm.Connector.Tests;

/// <summary>The IChatClient layer with a scripted model: message and tool rendering, parsing, options, usage, cancellation.</summary>
public sealed class GlmChatClientTests
{
    private static readonly AIFunction Weather = AIFunctionFactory.Create(
        (string city) => $"{city}: sunny", "weather_get_weather", "Gets the weather of a city");

    private static ChatOptions ToolOptions(ChatToolMode? mode = null) => new() { Tools = [Weather], ToolMode = mode ?? ChatToolMode.Auto };

    [Fact]
    public async Task Glm4_ToolPromptAndHistoryAreRenderedInTheModelsOwnFormat()
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["\nIt is sunny."]);
        var client = new GlmChatClient(source);
        var call = new FunctionCallContent("call_1", "weather_get_weather", new Dictionary<string, object?> { ["city"] = "北京" });
        ChatMessage[] messages =
        [
            new(ChatRole.System, "Be brief."),
            new(ChatRole.User, "Weather in 北京?"),
            new(ChatRole.Assistant, [call]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "北京: sunny")]),
        ];

        var response = await client.GetResponseAsync(messages, ToolOptions());

        Assert.Equal("It is sunny.", response.Text);
        string expectedTools =
            "[gMASK]<sop><|system|>\n" + Glm4ChatFormat.ChatGlmToolPreamble + "\n\n# 可用工具\n## weather_get_weather\n\n{\n" +
            "    \"name\": \"weather_get_weather\",\n    \"description\": \"Gets the weather of a city\",\n    \"parameters\": {\n" +
            "        \"type\": \"object\",\n        \"properties\": {\n            \"city\": {\n                \"type\": \"string\"\n            }\n" +
            "        },\n        \"required\": [\n            \"city\"\n        ]\n    }\n}\n" + Glm4ChatFormat.ToolCallInstruction;
        string expectedTurns =
            "<|system|>\nBe brief.<|user|>\nWeather in 北京?<|assistant|>weather_get_weather\n{\"city\": \"北京\"}" +
            "<|observation|>\n北京: sunny<|assistant|>";
        Assert.Equal(expectedTools + expectedTurns, source.Prompts.Single());
    }

    [SharedDataFact]
    public void ChatGlm3_AssistantToolCallBecomesMetadataAndToolCallBlock()
    {
        var format = new ChatGlm3ChatFormat(TestTokenizers.ChatGlm3);
        var call = new FunctionCallContent("c", "weather_get_weather", new Dictionary<string, object?> { ["city"] = "北京", ["days"] = 2, ["metric"] = true });
        var turns = GlmPromptMapper.ToTurns(
            [new ChatMessage(ChatRole.User, "天气?"), new ChatMessage(ChatRole.Assistant, [call]),
             new ChatMessage(ChatRole.Tool, [new FunctionResultContent("c", new { temperature = 25 })])], format);

        Assert.Equal(
            [
                new ChatTurn(GlmRole.User, "天气?"),
                new ChatTurn(GlmRole.Assistant, "```python\ntool_call(city=\"北京\", days=2, metric=True)\n```", "weather_get_weather"),
                new ChatTurn(GlmRole.Observation, "{\"temperature\": 25}"),
            ], turns);
    }

    [SharedDataFact]
    public async Task ChatGlm3_ToolsGoIntoTheSystemTurnAndTheToolCallIsParsed()
    {
        var tok = TestTokenizers.ChatGlm3;
        var source = new ScriptedTokenSource(tok, ["weather_get_weather\n```python\ntool_call(city='上海')\n```"]);
        var client = new GlmChatClient(source);

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "上海天气")], ToolOptions());

        var expectedPrompt = source.ChatFormat.BuildPrompt([new ChatTurn(GlmRole.User, "上海天气")],
            [new ToolDefinition("weather_get_weather", "Gets the weather of a city", Weather.JsonSchema.GetRawText())], addGenerationPrompt: true);
        Assert.Equal(expectedPrompt, source.PromptIds.Single());
        Assert.Contains("\"name\": \"weather_get_weather\"", source.Prompts.Single());
        var call = Assert.IsType<FunctionCallContent>(Assert.Single(response.Messages.Single().Contents));
        Assert.Equal("weather_get_weather", call.Name);
        Assert.Equal("上海", ((JsonElement)call.Arguments!["city"]!).GetString());
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
    }

    [Fact]
    public async Task Glm4_ToolCallIsParsedWithTheExactAdvertisedNameAndAFreshCallId()
    {
        var hyphenated = AIFunctionFactory.Create((string city) => city, "weather-get_weather");
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["weather-get_weather\n{\"city\": \"北京\"}", "weather-get_weather\n{\"city\": \"上海\"}"]);
        var client = new GlmChatClient(source);
        var options = new ChatOptions { Tools = [hyphenated] };

        var first = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "?")], options);
        var second = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "?")], options);

        var a = Assert.IsType<FunctionCallContent>(Assert.Single(first.Messages.Single().Contents));
        var b = Assert.IsType<FunctionCallContent>(Assert.Single(second.Messages.Single().Contents));
        Assert.Equal("weather-get_weather", a.Name);
        Assert.Equal("北京", ((JsonElement)a.Arguments!["city"]!).GetString());
        Assert.StartsWith("call_", a.CallId);
        Assert.NotEqual(a.CallId, b.CallId);
        Assert.Equal("{\"city\": \"北京\"}", GlmPromptMapper.ArgumentsJson(a));
        Assert.False(source.Options[0].SkipSpecialTokensInText); // raw output is parsed when tools are offered
    }

    [Fact]
    public async Task MalformedToolCallBecomesAnErrorContentNotAnException()
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["weather_get_weather\n{\"city\": 北京"]);
        var response = await new GlmChatClient(source).GetResponseAsync([new ChatMessage(ChatRole.User, "?")], ToolOptions());

        var contents = response.Messages.Single().Contents;
        Assert.DoesNotContain(contents, c => c is FunctionCallContent);
        var error = Assert.Single(contents.OfType<ErrorContent>());
        Assert.Equal(GlmChatClient.ToolCallParseErrorCode, error.ErrorCode);
        Assert.Contains("not valid JSON", error.Message);
        Assert.Contains("weather_get_weather", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
    }

    [Fact]
    public async Task ToolModeNoneRendersNoTools()
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["\nno tools"]);
        var response = await new GlmChatClient(source).GetResponseAsync([new ChatMessage(ChatRole.User, "hi")], ToolOptions(ChatToolMode.None));

        Assert.Equal("no tools", response.Text);
        Assert.Equal("[gMASK]<sop><|user|>\nhi<|assistant|>", source.Prompts.Single());
        Assert.True(source.Options[0].SkipSpecialTokensInText);
    }

    [Fact]
    public async Task StreamingYieldsTrimmedTextThenUsageAndFinishReason()
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["\n  Hello there, friend.  \n"], pieceLength: 2);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in new GlmChatClient(source).GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hi")]))
            updates.Add(u);

        Assert.True(updates.Count > 3);
        Assert.Equal("Hello there, friend.", string.Concat(updates.Select(u => u.Text)));
        var last = updates[^1];
        Assert.Equal(ChatFinishReason.Stop, last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.Equal(source.PromptIds.Single().Count, usage.InputTokenCount);
        Assert.Equal(13, usage.OutputTokenCount); // 26 characters in pieces of 2
        Assert.All(updates, u => Assert.Equal("scripted-glm", u.ModelId));
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
    }

    [Fact]
    public async Task OptionsAreMappedOntoGenerationOptions()
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["\nabcdefghijklmnop"], pieceLength: 1);
        var options = new ChatOptions
        {
            Temperature = 0.3f, TopP = 0.9f, TopK = 7, Seed = 42, MaxOutputTokens = 4, StopSequences = ["###"],
            AdditionalProperties = new() { ["repetition_penalty"] = 1.2 },
        };
        var response = await new GlmChatClient(source).GetResponseAsync([new ChatMessage(ChatRole.User, "x")], options);

        var g = source.Options.Single();
        Assert.Equal((0.3f, 0.9f, 7, 42UL, 4, 1.2f), (g.Temperature, g.TopP, g.TopK, g.Seed!.Value, g.MaxNewTokens, g.RepetitionPenalty));
        Assert.Equal(["###"], g.StopStrings);
        Assert.Equal(source.ChatFormat.StopIds.ToHashSet(), g.StopTokenIds!.ToHashSet());
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(4, response.Usage!.OutputTokenCount);
        Assert.Equal("abc", response.Text); // the leading "\n" counts as a token and is trimmed
    }

    [Theory]
    [InlineData(-1, null, "MaxOutputTokens")]
    [InlineData(null, -0.5f, "Temperature")]
    public async Task InvalidOptionsAreRejectedWithAClearMessage(int? maxTokens, float? temperature, string expected)
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["\nx"]);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => new GlmChatClient(source).GetResponseAsync(
            [new ChatMessage(ChatRole.User, "x")], new ChatOptions { MaxOutputTokens = maxTokens, Temperature = temperature }));
        Assert.Contains(expected, error.Message);
        Assert.Empty(source.Prompts);
    }

    [Fact]
    public async Task CancellingBetweenTokensStopsTheStream()
    {
        using var cts = new CancellationTokenSource();
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, ["\n" + new string('a', 90)], pieceLength: 1) { AfterPiece = i => { if (i == 5) cts.Cancel(); } };
        var seen = new List<string>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in new GlmChatClient(source).GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], null, cts.Token))
                seen.Add(u.Text);
        });
        Assert.InRange(string.Concat(seen).Length, 1, 6);
    }

    [Fact]
    public void MetadataNamesProviderAndModel()
    {
        var client = new GlmChatClient(new ScriptedTokenSource(TestTokenizers.Glm4, []), new GlmChatClientOptions { ModelId = "glm-4-test" });
        var metadata = client.GetService<ChatClientMetadata>()!;
        Assert.Equal(("glm", "glm-4-test"), (metadata.ProviderName, metadata.DefaultModelId));
    }
}
