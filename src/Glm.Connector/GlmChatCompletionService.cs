using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Services;

namespace Glm.Connector;

/// <summary>
/// SK chat completion over <see cref="GlmChatClient"/>, built the way SK's own local connectors are:
/// <c>client.AsBuilder().UseKernelFunctionInvocation().Build().AsChatCompletionService()</c>. So
/// <c>FunctionChoiceBehavior.Auto()</c> invokes kernel functions (with the kernel's auto-invocation filters), <c>Required()</c>
/// offers the tools and requires a call on the first request, <c>None()</c> renders no tools. Usage is in
/// <c>Metadata["Usage"]</c> (non-streaming: <see cref="UsageDetails"/>; streaming: <see cref="UsageContent"/> on the last update).
/// </summary>
public sealed class GlmChatCompletionService : IChatCompletionService
{
    private readonly IChatCompletionService _inner;
    private readonly Dictionary<string, object?> _attributes;

    /// <summary>Wraps <paramref name="chatClient"/> in the kernel-function-invocation pipeline.</summary>
    public GlmChatCompletionService(GlmChatClient chatClient, ILoggerFactory? loggerFactory = null, IServiceProvider? serviceProvider = null)
    {
        ArgumentNullException.ThrowIfNull(chatClient);
        ChatClient = chatClient;
        _inner = chatClient.AsBuilder().UseKernelFunctionInvocation(loggerFactory).Build(serviceProvider).AsChatCompletionService(serviceProvider);
        _attributes = new() { [AIServiceExtensions.ModelIdKey] = chatClient.ModelId };
    }

    /// <summary>The GLM chat client underneath.</summary>
    public GlmChatClient ChatClient { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, object?> Attributes => _attributes;

    /// <inheritdoc />
    public Task<IReadOnlyList<ChatMessageContent>> GetChatMessageContentsAsync(ChatHistory chatHistory, PromptExecutionSettings? executionSettings = null,
        Kernel? kernel = null, CancellationToken cancellationToken = default) =>
        _inner.GetChatMessageContentsAsync(chatHistory, executionSettings, kernel, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<StreamingChatMessageContent> GetStreamingChatMessageContentsAsync(ChatHistory chatHistory,
        PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, CancellationToken cancellationToken = default) =>
        _inner.GetStreamingChatMessageContentsAsync(chatHistory, executionSettings, kernel, cancellationToken);
}
