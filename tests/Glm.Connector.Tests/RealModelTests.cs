using Glm.Connector.Tests.Support;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using ChatRole = Microsoft.Extensions.AI.ChatRole;

namespace Glm.Connector.Tests;

/// <summary>The connector over a real (tiny, random-weight) GLM model with the real ChatGLM3 tokenizer and chat format.</summary>
public sealed class RealModelTests
{
    [SharedDataFact]
    public async Task ChatClientGeneratesWithUsageAndGreedyStreamingMatchesNonStreaming()
    {
        var client = new GlmChatClient(new GlmModelTokenSource(TinyChatGlm3Model.Model));
        ChatMessage[] messages = [new(ChatRole.User, "你好")];
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 6 };

        var response = await client.GetResponseAsync(messages, options);
        var streamed = string.Concat(await client.GetStreamingResponseAsync(messages, options).Select(u => u.Text).ToListAsync());

        var chatPrompt = TinyChatGlm3Model.Model.ChatFormat!.BuildPrompt([new Glm.Engine.Tokenization.ChatTurn(Glm.Engine.Tokenization.ChatRole.User, "你好")], null, true);
        Assert.Equal(chatPrompt.Count, response.Usage!.InputTokenCount);
        Assert.InRange(response.Usage.OutputTokenCount!.Value, 0, 6);
        Assert.Equal(response.Text, streamed);
        Assert.Equal("chatglm3-tiny", response.ModelId);
    }

    [SharedDataFact]
    public async Task KernelRegisteredByPathSharesOneLoadedModel()
    {
        var builder = Kernel.CreateBuilder();
        builder.AddGlmChatCompletion(TinyChatGlm3Model.Folder);
        builder.AddGlmTextGeneration(TinyChatGlm3Model.Folder, serviceId: "text");
        var kernel = builder.Build();

        var result = await kernel.InvokePromptAsync("hi", new KernelArguments(new GlmPromptExecutionSettings { MaxTokens = 3, Temperature = 0 }));
        var usage = Assert.IsType<UsageDetails>(result.Metadata!["Usage"]);
        Assert.InRange(usage.OutputTokenCount!.Value, 0, 3);
        Assert.Same(TinyChatGlm3Model.Model, GlmModelCache.GetOrLoad(TinyChatGlm3Model.Folder + "/"));
    }

    [SharedDataFact]
    public async Task EmbeddingsAreNormalisedDeterministicAndLayerDependent()
    {
        var services = new ServiceCollection();
        services.AddGlmEmbeddingGenerator(TinyChatGlm3Model.Folder);
        using var provider = services.BuildServiceProvider();
        var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();

        var embeddings = await generator.GenerateAsync(["北京的天气", "北京的天气", "a completely different sentence"]);
        var layer0 = await new GlmEmbeddingGenerator(TinyChatGlm3Model.Model, new GlmEmbeddingOptions { Layer = 0 }).GenerateAsync(["北京的天气"]);

        Assert.Equal(3, embeddings.Count);
        Assert.All(embeddings, e => Assert.Equal(64, e.Dimensions));
        Assert.All(embeddings, e => Assert.Equal(1.0, Math.Sqrt(e.Vector.ToArray().Sum(x => (double)x * x)), 4));
        Assert.Equal(embeddings[0].Vector.ToArray(), embeddings[1].Vector.ToArray());
        Assert.NotEqual(embeddings[0].Vector.ToArray(), embeddings[2].Vector.ToArray());
        Assert.NotEqual(embeddings[0].Vector.ToArray(), layer0[0].Vector.ToArray());
        Assert.True(embeddings.Usage!.InputTokenCount > 0);
        Assert.Equal("chatglm3-tiny", embeddings[0].ModelId);
    }

    [SharedDataFact]
    public async Task EmbeddingInputErrorsAreClear()
    {
        Assert.Throws<ArgumentException>(() => new GlmEmbeddingGenerator(TinyChatGlm3Model.Model, new GlmEmbeddingOptions { Layer = 9 }));
        var generator = new GlmEmbeddingGenerator(TinyChatGlm3Model.Model);
        var empty = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync([""]));
        Assert.Contains("empty", empty.Message);
        var dims = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 10 }));
        Assert.Contains("64", dims.Message);
        Assert.Throws<GlmException>(() => TinyChatGlm3Model.Model.EmbedIds([1, 2], layer: -2));
    }

    [SharedDataFact]
    public async Task ConcurrentChatsThroughTheBatchSchedulerMatchOneAtATime()
    {
        var model = TinyChatGlm3Model.Model;
        string[] questions = ["你好", "北京今天天气怎么样？", "Write one word.", "1+1=?", "讲一个很长很长的故事"];
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 12 };
        var plain = new GlmChatClient(new GlmModelTokenSource(model));
        var expected = new List<string>();
        foreach (var q in questions) expected.Add((await plain.GetResponseAsync([new ChatMessage(ChatRole.User, q)], options)).Text);

        using var scheduler = new Glm.Engine.Generation.BatchScheduler(model, new() { MaxBatch = 3, MaxContext = 256 });
        var batched = new GlmChatClient(new GlmModelTokenSource(model, scheduler: scheduler));
        var answers = await Task.WhenAll(questions.Select(q => batched.GetResponseAsync([new ChatMessage(ChatRole.User, q)], options)));
        Assert.Equal(expected, answers.Select(a => a.Text));
        Assert.True(scheduler.PeakActive > 1, "the requests were not decoded together");
    }
}
