using AgentHost.Rag.Prompts;
using Glm.Engine;

namespace AgentHost.Tests.Rag;

public class PromptLibraryTests
{
    [Fact]
    public async Task ShippedPromptsLoadAndRenderVariablesVerbatim()
    {
        var prompts = RagFixtures.Prompts();
        prompts.ValidateAll();
        string text = await prompts.RenderAsync(PromptLibrary.Qa, new Dictionary<string, object?>
        {
            ["question"] = "\"孔乙己\" <是谁> & 为什么？", ["context"] = "[1] 来源：a.md\n正文", ["count"] = "1",
        });
        Assert.Contains("\"孔乙己\" <是谁> & 为什么？", text); // not HTML-encoded
        Assert.Contains("[1] 来源：a.md\n正文", text);
        Assert.Contains("[1] 到 [1]", text);
        Assert.DoesNotContain("{{$", text);
        Assert.Equal(512, prompts.OptionsFor(PromptLibrary.Qa)!.MaxOutputTokens);
    }

    [Fact]
    public async Task AnOverrideFolderReplacesTheShippedText()
    {
        using var temp = new TempFolder();
        string dir = RagFixtures.CopyPrompts(temp.File("p"));
        File.WriteAllText(Path.Combine(dir, "no_answer", "skprompt.txt"), "资料里没有。");
        Assert.Equal("资料里没有。", await new PromptLibrary(dir).RenderAsync(PromptLibrary.NoAnswer, new Dictionary<string, object?>()));
    }

    [Fact]
    public void AMissingTemplateNamesTheFile()
    {
        using var temp = new TempFolder();
        string dir = RagFixtures.CopyPrompts(temp.File("p"));
        File.Delete(Path.Combine(dir, "map", "skprompt.txt"));
        var e = Assert.Throws<GlmException>(() => new PromptLibrary(dir).ValidateAll());
        Assert.Contains(Path.Combine(dir, "map", "skprompt.txt"), e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void AMalformedConfigNamesTheFile()
    {
        using var temp = new TempFolder();
        string dir = RagFixtures.CopyPrompts(temp.File("p"));
        File.WriteAllText(Path.Combine(dir, "qa", "config.json"), "{ \"input_variables\": [ { \"name\": ");
        var e = Assert.Throws<GlmException>(() => new PromptLibrary(dir).Load(PromptLibrary.Qa));
        Assert.Contains(Path.Combine(dir, "qa", "config.json"), e.Message);
        Assert.Contains("malformed", e.Message);
    }

    [Fact]
    public void AnUndeclaredVariableIsReported()
    {
        using var temp = new TempFolder();
        string dir = RagFixtures.CopyPrompts(temp.File("p"));
        File.AppendAllText(Path.Combine(dir, "reduce", "skprompt.txt"), "{{$typo}}");
        var e = Assert.Throws<GlmException>(() => new PromptLibrary(dir).Load(PromptLibrary.Reduce));
        Assert.Contains("{{$typo}}", e.Message);
        Assert.Contains(Path.Combine(dir, "reduce", "skprompt.txt"), e.Message);
    }
}
