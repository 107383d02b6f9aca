using System.Text;
using Glm.Connector.Tests.Support;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.TextGeneration;

namespace Glm.Connector.Tests;

/// <summary>The SK services inside a real kernel, with a scripted model and the real GLM-4 chat format.</summary>
public sealed class KernelIntegrationTests
{
    private static (Kernel Kernel, ScriptedTokenSource Source) ChatKernel(params string[] replies)
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, replies);
        var builder = Kernel.CreateBuilder();
        builder.AddGlmChatCompletion(source);
        return (builder.Build(), source);
    }

    [Fact]
    public async Task InvokePromptRunsThroughTheChatServiceWithSettings()
    {
        var (kernel, source) = ChatKernel("\n你好！我是 GLM。");
        var settings = new GlmPromptExecutionSettings { Temperature = 0, MaxTokens = 64, RepetitionPenalty = 1.1, TopK = 5 };

        var result = await kernel.InvokePromptAsync("Say hello to {{$name}}", new KernelArguments(settings) { ["name"] = "Ada" });

        Assert.Equal("你好！我是 GLM。", result.GetValue<string>());
        Assert.Equal("[gMASK]<sop><|user|>\nSay hello to Ada<|assistant|>", source.Prompts.Single());
        var g = source.Options.Single();
        Assert.Equal((0f, 64, 1.1f, 5), (g.Temperature, g.MaxNewTokens, g.RepetitionPenalty, g.TopK));
        var usage = Assert.IsType<UsageDetails>(result.Metadata!["Usage"]);
        Assert.Equal(source.PromptIds.Single().Count, usage.InputTokenCount);
        Assert.True(usage.OutputTokenCount > 0);
    }

    [Fact]
    public async Task InvokePromptStreamingYieldsPiecesAndUsage()
    {
        var (kernel, source) = ChatKernel("\nstreamed answer here");
        var text = new StringBuilder();
        UsageDetails? usage = null;
        int pieces = 0;
        await foreach (var chunk in kernel.InvokePromptStreamingAsync<StreamingChatMessageContent>("go"))
        {
            text.Append(chunk.Content);
            pieces++;
            if (chunk.Metadata?.TryGetValue("Usage", out var m) == true && m is UsageContent uc) usage = uc.Details;
        }
        Assert.Equal("streamed answer here", text.ToString());
        Assert.True(pieces > 2);
        Assert.NotNull(usage);
        Assert.Equal(source.PromptIds.Single().Count, usage!.InputTokenCount);
    }

    [Fact]
    public async Task ChatHistoryConversationCarriesEarlierTurnsIntoTheNextPrompt()
    {
        var (kernel, source) = ChatKernel("\n第一次回答", "\n第二次回答");
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        var history = new ChatHistory("You are terse.");
        history.AddUserMessage("第一个问题");
        var first = await chat.GetChatMessageContentAsync(history);
        history.Add(first);
        history.AddUserMessage("第二个问题");
        var second = await chat.GetChatMessageContentAsync(history);

        Assert.Equal("第一次回答", first.Content);
        Assert.Equal("第二次回答", second.Content);
        Assert.Equal("[gMASK]<sop><|system|>\nYou are terse.<|user|>\n第一个问题<|assistant|>\n第一次回答<|user|>\n第二个问题<|assistant|>", source.Prompts[1]);
        Assert.Equal("scripted-glm", chat.Attributes["ModelId"]);
    }

    [Fact]
    public async Task CancellationStopsTheStreamingChatService()
    {
        using var cts = new CancellationTokenSource();
        var (kernel, source) = ChatKernel("\n" + new string('x', 60));
        source.AfterPiece = i => { if (i == 3) cts.Cancel(); };
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in chat.GetStreamingChatMessageContentsAsync(new ChatHistory("s") { }, kernel: kernel, cancellationToken: cts.Token)) { }
        });
    }

    [Fact]
    public async Task TextGenerationServiceContinuesThePlainPrompt()
    {
        var source = new ScriptedTokenSource(TestTokenizers.Glm4, [" continued text"]);
        var builder = Kernel.CreateBuilder();
        builder.AddGlmTextGeneration(source);
        var kernel = builder.Build();

        var result = await kernel.InvokePromptAsync("Once upon a time", new KernelArguments(new PromptExecutionSettings
        {
            ExtensionData = new Dictionary<string, object> { ["max_tokens"] = 50, ["temperature"] = 0.0 },
        }));
        Assert.Equal(" continued text", result.GetValue<string>());
        Assert.Equal(GlmTextGenerationService.PromptIds(source.Tokenizer, "Once upon a time"), source.PromptIds.Single());
        Assert.Equal(50, source.Options.Single().MaxNewTokens);
        var usage = Assert.IsType<UsageDetails>(result.Metadata!["Usage"]);
        Assert.Equal(5, usage.OutputTokenCount); // 15 characters in pieces of 3

        var streamed = new StringBuilder();
        var service = kernel.GetRequiredService<ITextGenerationService>();
        source = new ScriptedTokenSource(TestTokenizers.Glm4, ["abcdefgh"]);
        service = new GlmTextGenerationService(source);
        IReadOnlyDictionary<string, object?>? lastMetadata = null;
        await foreach (var piece in service.GetStreamingTextContentsAsync("p", new GlmPromptExecutionSettings { MaxTokens = 2 }))
        {
            streamed.Append(piece.Text);
            lastMetadata = piece.Metadata;
        }
        Assert.Equal("abcdef", streamed.ToString());
        Assert.Equal("length", lastMetadata!["FinishReason"]);
    }
}
