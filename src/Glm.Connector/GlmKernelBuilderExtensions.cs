using Glm.Connector;
using Glm.Engine;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.SemanticKernel;

/// <summary>Adds GLM services to a Semantic Kernel <see cref="IKernelBuilder"/>.</summary>
public static class GlmKernelBuilderExtensions
{
    /// <summary>
    /// Adds GLM chat completion for the model folder <paramref name="modelPath"/> (or <c>random:NAME</c>), with automatic
    /// kernel-function invocation (<c>FunctionChoiceBehavior.Auto()</c>).
    /// </summary>
    public static IKernelBuilder AddGlmChatCompletion(this IKernelBuilder builder, string modelPath, GlmLoadOptions? loadOptions = null,
        GlmChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        builder.Services.AddGlmChatCompletion(_ => new GlmModelTokenSource(GlmModelCache.GetOrLoad(modelPath, loadOptions)), options, serviceId);
        return builder;
    }

    /// <summary>Adds GLM chat completion over an existing token source (a loaded model or a scripted one).</summary>
    public static IKernelBuilder AddGlmChatCompletion(this IKernelBuilder builder, IGlmTokenSource source, GlmChatClientOptions? options = null,
        string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(source);
        builder.Services.AddGlmChatCompletion(_ => source, options, serviceId);
        return builder;
    }

    /// <summary>Adds GLM plain-text generation for the model folder <paramref name="modelPath"/> (or <c>random:NAME</c>).</summary>
    public static IKernelBuilder AddGlmTextGeneration(this IKernelBuilder builder, string modelPath, GlmLoadOptions? loadOptions = null,
        GlmChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        builder.Services.AddGlmTextGeneration(_ => new GlmModelTokenSource(GlmModelCache.GetOrLoad(modelPath, loadOptions)), options, serviceId);
        return builder;
    }

    /// <summary>Adds GLM plain-text generation over an existing token source.</summary>
    public static IKernelBuilder AddGlmTextGeneration(this IKernelBuilder builder, IGlmTokenSource source, GlmChatClientOptions? options = null,
        string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(source);
        builder.Services.AddGlmTextGeneration(_ => source, options, serviceId);
        return builder;
    }
}
