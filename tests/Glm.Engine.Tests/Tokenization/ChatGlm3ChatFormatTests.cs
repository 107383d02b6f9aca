using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

/// <summary>
/// Prompt ids computed with python3-sentencepiece by replaying tokenization_chatglm.py's build_chat_input
/// (role id + sp.encode(metadata + "\n") + sp.encode(content), tools as json.dumps(indent=4, ensure_ascii=False)).
/// </summary>
public class ChatGlm3ChatFormatTests
{
    private static readonly Lazy<ChatGlm3ChatFormat> Format =
        new(() => new ChatGlm3ChatFormat(ChatGlm3Tokenizer.Load(SharedData.PathOf(ChatGlm3TokenizerTests.ModelPath))));

    internal static readonly ToolDefinition Weather = new("get_weather", "查询城市天气",
        """{"type": "object", "properties": {"city": {"type": "string", "description": "城市名"}}, "required": ["city"]}""");

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void SingleUserTurnMatchesChatGlmCpp()
    {
        Assert.Equal(new[] { 64790, 64792, 64795, 30910, 13, 36474, 54591, 64796 },
            Format.Value.BuildPrompt([new ChatTurn(ChatRole.User, "你好")], null, addGenerationPrompt: true));
        Assert.Equal(new[] { 64790, 64792, 64795, 30910, 13, 36474, 54591 },
            Format.Value.BuildPrompt([new ChatTurn(ChatRole.User, "你好")], null, addGenerationPrompt: false));
    }

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void MultiTurnMatchesReference()
    {
        ChatTurn[] turns =
        [
            new(ChatRole.User, "你好"),
            new(ChatRole.Assistant, "你好👋！我是人工智能助手 ChatGLM3-6B，很高兴见到你，欢迎问我任何问题。"),
            new(ChatRole.User, "晚上睡不着应该怎么办"),
        ];
        int[] expected =
        [
            64790, 64792, 64795, 30910, 13, 36474, 54591, 64796, 30910, 13, 36474, 54591, 243, 162, 148, 142, 31404,
            33030, 34797, 42481, 22011, 10461, 30944, 30966, 30941, 30978, 30949, 31123, 48895, 35214, 54622, 31123,
            32616, 39905, 31901, 31639, 31155, 64795, 30910, 13, 30910, 32820, 54266, 31876, 35153, 64796,
        ];
        Assert.Equal(expected, Format.Value.BuildPrompt(turns, null, addGenerationPrompt: true));
    }

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void ToolConversationMatchesReference()
    {
        ChatTurn[] turns =
        [
            new(ChatRole.System, ChatGlm3ChatFormat.DefaultToolSystemPrompt),
            new(ChatRole.User, "北京天气怎么样？"),
            new(ChatRole.Assistant, "```python\ntool_call(city=\"北京\")\n```", "get_weather"),
            new(ChatRole.Observation, "{\"temperature\": 25}"),
        ];
        int[] expected =
        [
            64790, 64792, 64794, 30910, 13, 20115, 267, 1762, 2554, 362, 1077, 362, 344, 457, 30930, 809, 431, 1675, 289,
            267, 1762, 4159, 30954, 13, 30995, 13, 296, 30982, 13, 352, 30955, 2323, 2932, 449, 752, 30962, 27564, 1252,
            13, 352, 30955, 16302, 2932, 449, 34262, 31733, 33071, 1252, 13, 352, 30955, 24940, 2932, 729, 13, 753, 30955,
            3543, 2932, 449, 8178, 1252, 13, 753, 30955, 27448, 2932, 729, 13, 647, 30955, 17654, 2932, 729, 13, 647, 296,
            30955, 3543, 2932, 449, 4423, 1252, 13, 647, 296, 30955, 16302, 2932, 449, 31733, 54653, 30955, 13, 647, 30983,
            13, 753, 4143, 13, 753, 30955, 20379, 2932, 790, 13, 647, 30955, 17654, 30955, 13, 753, 30996, 13, 352, 30983,
            13, 296, 30983, 13, 30996, 64795, 30910, 13, 37536, 33071, 35367, 31514, 64796, 634, 30962, 27564, 13, 16014,
            23720, 13, 22268, 30962, 10372, 30946, 17654, 1104, 31719, 2479, 13, 10846, 31040, 64797, 30910, 13, 15821,
            17175, 21460, 2932, 30910, 30943, 30970, 30983, 64796,
        ];
        Assert.Equal(expected, Format.Value.BuildPrompt(turns, [Weather], addGenerationPrompt: true));
        // Without a system turn the default tool prompt is inserted, giving the same ids.
        Assert.Equal(expected, Format.Value.BuildPrompt(turns[1..], [Weather], addGenerationPrompt: true));
    }

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void StopIdsAreEosUserObservation()
    {
        Assert.Equal(new[] { 2, 64795, 64797 }, Format.Value.StopIds);
    }

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void ParsesPlainReplyToolCallAndMalformedCall()
    {
        var f = Format.Value;
        string[] tools = ["get_weather"];
        var plain = f.Parse("\n 你好，有什么可以帮你？ ", tools);
        Assert.Equal("你好，有什么可以帮你？", plain.Content);
        Assert.False(plain.HasToolCalls);
        Assert.Null(plain.Error);

        var call = f.Parse("get_weather\n```python\ntool_call(city='北京', days=3, detail=True, hours=[1, 2.5], extra={\"unit\": None})\n```", tools);
        var toolCall = Assert.Single(call.ToolCalls);
        Assert.Equal("get_weather", toolCall.Name);
        Assert.Equal("{\"city\": \"北京\", \"days\": 3, \"detail\": true, \"hours\": [1, 2.5], \"extra\": {\"unit\": null}}", toolCall.ArgumentsJson);
        Assert.Null(call.Error);

        // The last <|assistant|> segment counts, as in process_response.
        var second = f.Parse("get_weather\n```python\ntool_call(city=\"上海\")\n```<|assistant|>\n 上海今天晴。", tools);
        Assert.Equal("上海今天晴。", second.Content);

        var broken = f.Parse("get_weather\n```python\ntool_call(\"北京\")\n```", tools);
        Assert.Empty(broken.ToolCalls);
        Assert.Contains("positional", broken.Error);

        var injected = f.Parse("get_weather\n```python\ntool_call(city=__import__('os').system('x'))\n```", tools);
        Assert.NotNull(injected.Error);

        var unknown = f.Parse("send_mail\n```python\ntool_call(to=\"a\")\n```", tools);
        Assert.Contains("unknown tool 'send_mail'", unknown.Error);

        var interpreter = f.Parse("interpreter\n```python\nprint(1)\n```", []);
        Assert.Equal("interpreter", interpreter.Metadata);
        Assert.Equal("```python\nprint(1)\n```", interpreter.Content);
    }

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void InvalidToolSchemaIsAGlmException()
    {
        var e = Assert.Throws<Glm.Engine.GlmException>(() =>
            Format.Value.BuildPrompt([new ChatTurn(ChatRole.User, "x")], [new ToolDefinition("f", null, "{not json")], true));
        Assert.Contains("'f'", e.Message);
    }
}
