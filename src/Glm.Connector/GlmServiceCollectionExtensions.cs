using Glm.Connector;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.TextGeneration;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers GLM services. Models named by path are loaded once per process through <see cref="GlmModelCache"/> (on first
/// resolution) and shared by every service that names the same path and load options.
/// </summary>
public static class GlmServiceCollectionExtensions
{
    /// <summary>Adds a <see cref="GlmChatClient"/> as the <see cref="IChatClient"/>; returns the builder to add middleware.</summary>
    public static ChatClientBuilder AddGlmChatClient(this IServiceCollection services, string modelPath, GlmLoadOptions? loadOptions = null,
        GlmChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        return services.AddChatClient(_ => new GlmChatClient(new GlmModelTokenSource(GlmModelCache.GetOrLoad(modelPath, loadOptions)), options));
    }

    /// <summary>Adds a <see cref="GlmEmbeddingGenerator"/> as the <c>IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt;</c>.</summary>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> AddGlmEmbeddingGenerator(this IServiceCollection services, string modelPath,
        GlmLoadOptions? loadOptions = null, GlmEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        return services.AddEmbeddingGenerator<string, Embedding<float>>(_ => new GlmEmbeddingGenerator(GlmModelCache.GetOrLoad(modelPath, loadOptions), options));
    }

    /// <summary>Adds the chat completion service of a token source (a loaded model or a scripted one), keyed by <paramref name="serviceId"/>.</summary>
    public static IServiceCollection AddGlmChatCompletion(this IServiceCollection services, Func<IServiceProvider, IGlmTokenSource> sourceFactory,
        GlmChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(sourceFactory);
        services.AddKeyedSingleton<IChatCompletionService>(serviceId, (sp, _) =>
            new GlmChatCompletionService(new GlmChatClient(sourceFactory(sp), options), sp.GetService<ILoggerFactory>(), sp));
        return services;
    }

    /// <summary>Adds the text generation service of a token source, keyed by <paramref name="serviceId"/>.</summary>
    public static IServiceCollection AddGlmTextGeneration(this IServiceCollection services, Func<IServiceProvider, IGlmTokenSource> sourceFactory,
        GlmChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(sourceFactory);
        services.AddKeyedSingleton<ITextGenerationService>(serviceId, (sp, _) => new GlmTextGenerationService(sourceFactory(sp), options));
        return services;
    }
}

