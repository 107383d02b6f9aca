using System.ComponentModel;
using Glm.Connector.Tests.Support;
using Microsoft.SemanticKernel;

namespace Glm.Connector.Tests;

/// <summary>The README's ten-line example, run verbatim against the tiny test model (which may or may not call the plugin).</summary>
public sealed class ReadmeSnippetTests
{
    public sealed class WeatherPlugin
    {
        [KernelFunction, Description("Gets the weather of a city")]
        public string GetWeather([Description("city name")] string city) => $"{city}: 晴, 25℃";
    }

    [SharedDataFact]
    public async Task TheReadmeExampleRuns()
    {
        string modelFolder = TinyChatGlm3Model.Folder;
        // ---- README snippet ----
        var builder = Kernel.CreateBuilder();
        builder.AddGlmChatCompletion(modelFolder);                 // ChatGLM3 / GLM-4 folder; loaded once, shared
        builder.Plugins.AddFromType<WeatherPlugin>("weather");
        var kernel = builder.Build();
        var settings = new GlmPromptExecutionSettings
        {
            FunctionChoiceBehavior = FunctionChoiceBehavior.Auto(), Temperature = 0, MaxTokens = 8,
        };
        var answer = await kernel.InvokePromptAsync("北京今天天气怎么样？", new(settings));
        Console.WriteLine(answer);
        // ---- end ----
        Assert.NotNull(answer.GetValue<string>());
    }
}
