using System.ComponentModel;
using Glm.Connector.Tests.Support;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace Glm.Connector.Tests;

/// <summary>
/// Automatic function calling end to end: SK's kernel-function-invocation pipeline runs over the GLM client, the scripted
/// model emits a GLM tool call, the kernel function runs, and its result is fed back as an observation turn.
/// </summary>
public sealed class FunctionCallingTests
{
    private sealed class WeatherPlugin
    {
        public List<string> Cities { get; } = new();

        [KernelFunction("get_weather"), Description("Gets today's weather of a city")]
        public string GetWeather([Description("city name")] string city)
        {
            Cities.Add(city);
            return $"{city}: 晴, 25℃";
        }
    }

    private static (Kernel, ScriptedTokenSource, WeatherPlugin) Setup(params string[] replies)
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, replies);
        var builder = Kernel.CreateBuilder();
        builder.AddGlmChatCompletion(source);
        var plugin = new WeatherPlugin();
        builder.Plugins.AddFromObject(plugin, "weather");
        return (builder.Build(), source, plugin);
    }

    [Fact]
    public async Task AutoInvokesTheKernelFunctionAndFeedsTheResultBackAsAnObservation()
    {
        var (kernel, source, plugin) = Setup("weather_get_weather\n{\"city\": \"北京\"}", "\n北京今天晴，25℃。");
        var settings = new GlmPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() };

        var result = await kernel.InvokePromptAsync("北京天气怎么样？", new KernelArguments(settings));

        Assert.Equal("北京今天晴，25℃。", result.GetValue<string>());
        Assert.Equal(["北京"], plugin.Cities);
        Assert.Equal(2, source.Prompts.Count);
        Assert.Contains("## weather_get_weather\n\n{\n    \"name\": \"weather_get_weather\"", source.Prompts[0]);
        Assert.EndsWith("<|user|>\n北京天气怎么样？<|assistant|>weather_get_weather\n{\"city\": \"北京\"}<|observation|>\n北京: 晴, 25℃<|assistant|>",
            source.Prompts[1]);
    }

    [Fact]
    public async Task StreamingAutoInvocationAlsoReachesTheFinalAnswer()
    {
        var (kernel, source, plugin) = Setup("weather_get_weather\n{\"city\": \"上海\"}", "\n上海晴。");
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        var history = new ChatHistory();
        history.AddUserMessage("上海？");
        var text = "";
        await foreach (var chunk in chat.GetStreamingChatMessageContentsAsync(history,
                           new GlmPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }, kernel))
            text += chunk.Content;

        Assert.Equal("上海晴。", text);
        Assert.Equal(["上海"], plugin.Cities);
        Assert.Contains("<|observation|>\n上海: 晴, 25℃<|assistant|>", source.Prompts[1]);
        // The bridge records the call and its result in the caller's history.
        Assert.Contains(history, m => m.Items.OfType<Microsoft.SemanticKernel.FunctionResultContent>().Any());
    }

    [Fact]
    public async Task NoneOffersNoToolsAndInvokesNothing()
    {
        var (kernel, source, plugin) = Setup("\n我不能查天气。");
        var result = await kernel.InvokePromptAsync("北京天气？",
            new KernelArguments(new GlmPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.None() }));

        Assert.Equal("我不能查天气。", result.GetValue<string>());
        Assert.DoesNotContain("可用工具", source.Prompts.Single());
        Assert.Empty(plugin.Cities);
    }

    [Fact]
    public async Task AutoWithoutInvocationReturnsTheCallToTheCaller()
    {
        var (kernel, source, plugin) = Setup("weather_get_weather\n{\"city\": \"广州\"}");
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        var reply = await chat.GetChatMessageContentAsync(new ChatHistory("s") { new(AuthorRole.User, "广州?") },
            new GlmPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto(autoInvoke: false) }, kernel);

        var call = Assert.Single(Microsoft.SemanticKernel.FunctionCallContent.GetFunctionCalls(reply));
        Assert.Equal("weather_get_weather", call.FunctionName); // the bridge passes the advertised name through unsplit
        Assert.Equal("广州", call.Arguments!["city"]?.ToString());
        Assert.Empty(plugin.Cities);
        Assert.Single(source.Prompts);
    }

    [Fact]
    public async Task RequiredOffersTheToolsAndRunsTheCall()
    {
        var (kernel, source, plugin) = Setup("weather_get_weather\n{\"city\": \"深圳\"}", "\n深圳晴。");
        var result = await kernel.InvokePromptAsync("深圳？",
            new KernelArguments(new GlmPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Required() }));

        Assert.Equal(["深圳"], plugin.Cities);
        Assert.Contains("可用工具", source.Prompts[0]);
        Assert.Equal("深圳晴。", result.GetValue<string>());
    }

    [Fact]
    public async Task AMalformedCallDoesNotCrashTheKernel()
    {
        var (kernel, _, plugin) = Setup("weather_get_weather\n{city: 北京");
        var result = await kernel.InvokePromptAsync("北京？",
            new KernelArguments(new GlmPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }));

        Assert.Empty(plugin.Cities);
        Assert.Contains("weather_get_weather", result.GetValue<string>());
    }
}
