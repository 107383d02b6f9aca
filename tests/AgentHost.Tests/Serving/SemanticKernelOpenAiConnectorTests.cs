using System.ComponentModel;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.Connectors.OpenAI;

namespace AgentHost.Tests.Serving;

/// <summary>
/// Semantic Kernel's own OpenAI connector (1.82.0) talking to <c>glm serve</c>: plain prompts, streaming and automatic
/// function calling where the kernel function runs in the client and the server only sees tools and tool results.
/// </summary>
public sealed class SemanticKernelOpenAiConnectorTests
{
    private sealed class ClockPlugin
    {
        public int Calls;

        [KernelFunction("get_time"), Description("Current time in a city")]
        public string GetTime(string city)
        {
            Interlocked.Increment(ref Calls);
            return $"{city} 10:30";
        }
    }

    private static Kernel KernelFor(TestServer server, ClockPlugin? plugin = null)
    {
        var builder = Kernel.CreateBuilder();
        builder.AddOpenAIChatCompletion("glm-test", server.V1, apiKey: "unused");
        if (plugin is not null) builder.Plugins.AddFromObject(plugin, "clock");
        return builder.Build();
    }

    [Fact]
    public async Task PromptsAndStreamingWorkThroughSksOpenAiConnector()
    {
        await using var server = await TestServer.StartAsync(new ScriptedSource("\n你好！", "\nstreamed reply"));
        var kernel = KernelFor(server);

        Assert.Equal("你好！", (await kernel.InvokePromptAsync("打个招呼")).GetValue<string>());
        var text = "";
        await foreach (var chunk in kernel.InvokePromptStreamingAsync("again")) text += chunk;
        Assert.Equal("streamed reply", text);
    }

    [Fact]
    public async Task AutoFunctionCallingRunsTheKernelFunctionAcrossTheServer()
    {
        var source = new ScriptedSource("clock-get_time\n{\"city\": \"北京\"}", "\n北京现在 10:30。");
        await using var server = await TestServer.StartAsync(source);
        var plugin = new ClockPlugin();
        var kernel = KernelFor(server, plugin);

        var result = await kernel.InvokePromptAsync("北京几点了？", new KernelArguments(
            new OpenAIPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }));

        Assert.Equal("北京现在 10:30。", result.GetValue<string>());
        Assert.Equal(1, plugin.Calls);
        Assert.Contains("## clock-get_time", source.Prompts[0]); // SK's OpenAI connector advertises plugin-function
        Assert.Contains("<|observation|>\n北京 10:30<|assistant|>", source.Prompts[1]);
    }
}
