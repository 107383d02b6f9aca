using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

public class GlmBlankChatFormatTests
{
    private static GlmChineseTokenizer Tokenizer() => GlmChineseTokenizer.Load(SharedData.PathOf(GlmChineseTokenizerTests.ModelPath));

    [SharedDataFact(GlmChineseTokenizerTests.ModelPath)]
    public void PromptIsPlainTextDialogueThenGMaskAndSop()
    {
        var tok = Tokenizer();
        var format = new GlmBlankChatFormat(tok);
        var ids = format.BuildPrompt(new[]
        {
            new ChatTurn(ChatRole.User, "你好"),
            new ChatTurn(ChatRole.Assistant, "你好！"),
            new ChatTurn(ChatRole.User, "今天星期几？"),
        }, null, addGenerationPrompt: true);
        Assert.Equal(50002, ids[0]);          // [CLS]
        Assert.Equal(50009, ids[^2]);         // [gMASK]
        Assert.Equal(50006, ids[^1]);         // sop
        Assert.Equal(new[] { 50007 }, format.StopIds); // eop
        var expectedText = tok.Encode("问：你好\n答：你好！\n问：今天星期几？\n答：");
        Assert.Equal(expectedText, ids.Skip(1).Take(ids.Count - 3));
    }

    [SharedDataFact(GlmChineseTokenizerTests.ModelPath)]
    public void ReplyIsCutAtTheFirstLineBreakAndToolsAreRefused()
    {
        var format = new GlmBlankChatFormat(Tokenizer());
        Assert.Equal("星期一。", format.Parse(" 星期一。\n问：明天呢？", Array.Empty<string>()).Content);
        var ex = Assert.Throws<GlmException>(() => format.BuildPrompt(new[] { new ChatTurn(ChatRole.User, "x") },
            new[] { new ToolDefinition("f", null, "{}") }, true));
        Assert.Contains("no tool format", ex.Message);
    }
}
