using AgentHost.Cli;
using AgentHost.Hosting;
using AgentHost.Tests.Rag;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Tests.Agent;

/// <summary><c>glm chat --kb</c> end to end through the command line (the samples knowledge base is built on first use).</summary>
[Collection("RagHost")]
public sealed class ChatKbVerbTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private async Task<(int Code, string Out, string Err)> Run(IChatClient chat, string stdin, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        using var hooks = RagHostHooks.Use(s => s.AddSingleton(chat), input: new StringReader(stdin));
        int code = await GlmCommandLine.RunAsync([.. args, "--kb-root", _temp.File("kb")], o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task ChatWithAKnowledgeBaseCallsSearchAndPrintsCheckedCitations()
    {
        var chat = new ToolScriptedChatClient(_ => "孔乙己 咸亨酒店", result => result.Contains("kongyiji.md") ? "他欠十九个钱。[1]" : "无", _ => "孔乙己");
        var (code, stdout, stderr) = await Run(chat, "孔乙己欠了多少钱？\n/exit\n", "chat", "--kb", "samples");
        Assert.True(code == 0, stderr);
        Assert.Contains("GLM: 他欠十九个钱。[1]", stdout);
        Assert.Contains("参考来源：", stdout);
        Assert.Contains("[1] ", stdout);
        Assert.Contains("kongyiji.md", stdout);
        Assert.Contains("chatting with knowledge base 'samples'", stderr);
        Assert.Equal(2, chat.Requests.Count);
    }

    [Fact]
    public async Task ChatWithAKnowledgeBaseFallsBackForABaseModel()
    {
        var chat = new BaseModelChatClient(new ScriptedChatClient(p => p.Contains("<已知信息>") ? "十九个钱[1]" : "孔乙己"));
        var (code, stdout, stderr) = await Run(chat, "孔乙己欠了咸亨酒店多少钱？\n/reset\n他是谁？\n", "chat", "--kb", "samples");
        Assert.True(code == 0, stderr);
        Assert.Contains("GLM: 十九个钱[1]", stdout);
        Assert.Contains("no tool format", stderr);
        Assert.Contains("knowledge base 'nothing' not found", (await Run(chat, "", "chat", "--kb", "nothing")).Err);
    }
}
