using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

/// <summary>
/// The expected prompt text was rendered from the glm-4-9b-chat jinja template (function-tool branch) with jinja2 in
/// HF's environment (trim_blocks, lstrip_blocks, tojson = json.dumps(ensure_ascii=False, indent=4)).
/// </summary>
public sealed class Glm4ChatFormatTests : IDisposable
{
    private const string ExpectedToolPrompt =
        "[gMASK]<sop><|system|>\n你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具\n## get_weather\n\n{\n    \"name\": \"get_weather\",\n    \"description\": \"查询城市天气\",\n    \"parameters\": {\n        \"type\": \"object\",\n        \"properties\": {\n            \"city\": {\n                \"type\": \"string\",\n                \"description\": \"城市名\"\n            }\n        },\n        \"required\": [\n            \"city\"\n        ]\n    }\n}\n在调用上述函数时，请使用 Json 格式表示调用的参数。\n## now\n\n{\n    \"name\": \"now\",\n    \"parameters\": {\n        \"type\": \"object\",\n        \"properties\": {}\n    }\n}\n在调用上述函数时，请使用 Json 格式表示调用的参数。<|user|>\n北京天气怎么样？<|assistant|>get_weather\n{\"city\": \"北京\"}<|observation|>\n{\"temperature\": 25}<|assistant|>";

    private static readonly ToolDefinition Now = new("now", null, """{"type": "object", "properties": {}}""");

    private static readonly ChatTurn[] ToolTurns =
    [
        new(ChatRole.User, "北京天气怎么样？"),
        new(ChatRole.Assistant, "{\"city\": \"北京\"}", "get_weather"),
        new(ChatRole.Observation, "{\"temperature\": 25}"),
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("glm4chat").FullName;
    private readonly Glm4Tokenizer _tok;
    private readonly Glm4ChatFormat _format;

    public Glm4ChatFormatTests()
    {
        _tok = Glm4Tokenizer.LoadTiktoken(Glm4TestRanks.WriteRankFile(_dir));
        _format = new Glm4ChatFormat(_tok);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void RendersTheJinjaTemplateTextExactly()
    {
        Assert.Equal(ExpectedToolPrompt, _format.RenderPrompt(ToolTurns, [ChatGlm3ChatFormatTests.Weather, Now], addGenerationPrompt: true));
    }

    [Fact]
    public void LiteralTemplateStyleKeepsTheDoubleNewlineBeforeToolHeadings()
    {
        var literal = new Glm4ChatFormat(_tok, jinjaTrimBlocks: false);
        string text = literal.RenderPrompt(ToolTurns, [Now], addGenerationPrompt: false);
        Assert.Contains("# 可用工具\n\n## now\n\n{", text);
        Assert.EndsWith("<|observation|>\n{\"temperature\": 25}", text);
    }

    [Fact]
    public void PromptIdsAreSpecialIdsPlusEncodedTextBetweenThem()
    {
        int first = Glm4TestRanks.FirstSpecial;
        var ids = _format.BuildPrompt([new ChatTurn(ChatRole.User, "你好")], null, addGenerationPrompt: true);
        // Same shape as chatglm.cpp's real-tokenizer vector [151331, 151333, 151336, 198, 109377, 151337].
        Assert.Equal(new[] { first + 2, first + 4, first + 7, 10, 263, first + 8 }, ids);

        var toolIds = _format.BuildPrompt(ToolTurns, [ChatGlm3ChatFormatTests.Weather, Now], addGenerationPrompt: true);
        Assert.Equal(ExpectedToolPrompt, _tok.Decode(toolIds));
        Assert.Equal(new[] { first + 2, first + 4, first + 6 }, toolIds.Take(3));
        Assert.Equal(first + 8, toolIds[^1]);
    }

    [Fact]
    public void EmptyTurnsAreSkippedAndContentWithSpecialTextStaysText()
    {
        int first = Glm4TestRanks.FirstSpecial;
        var ids = _format.BuildPrompt([new ChatTurn(ChatRole.System, ""), new ChatTurn(ChatRole.User, "<|user|>")], null, false);
        Assert.Equal(new[] { first + 2, first + 4, first + 7 }, ids.Take(3));
        Assert.Equal(1, ids.Count(id => id == first + 7));
    }

    [Fact]
    public void StopIdsAreEndOfTextUserObservation()
    {
        int first = Glm4TestRanks.FirstSpecial;
        Assert.Equal(new[] { first, first + 7, first + 9 }, _format.StopIds);
    }

    [Fact]
    public void ParsesLikeTheGlm4Server()
    {
        string[] tools = ["get_weather"];
        var call = _format.Parse("get_weather\n{\"city\": \"北京\",\n \"days\": 3}", tools);
        var toolCall = Assert.Single(call.ToolCalls);
        Assert.Equal("get_weather", toolCall.Name);
        Assert.Equal("{\"city\": \"北京\", \"days\": 3}", toolCall.ArgumentsJson);

        var text = _format.Parse("\n北京今天晴，25 度。\n", tools);
        Assert.Equal("北京今天晴，25 度。", text.Content);
        Assert.False(text.HasToolCalls);

        // Unknown name: plain text, like the reference.
        Assert.False(_format.Parse("send_mail\n{\"to\": \"a\"}", tools).HasToolCalls);

        var broken = _format.Parse("get_weather\n{\"city\": 北京}", tools);
        Assert.Empty(broken.ToolCalls);
        Assert.Contains("not valid JSON", broken.Error);
        Assert.Equal("get_weather\n{\"city\": 北京}", broken.Content);

        Assert.True(_format.Parse("cogview\n{\"prompt\": \"a cat\"}", []).HasToolCalls);
    }
}
