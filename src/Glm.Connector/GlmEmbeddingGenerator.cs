using Glm.Engine;
using Microsoft.Extensions.AI;

namespace Glm.Connector;

/// <summary>Options of <see cref="GlmEmbeddingGenerator"/>.</summary>
public sealed record GlmEmbeddingOptions
{
    /// <summary>Hidden-state layer to pool: -1 (default) = last block + final norm; 0 = token embeddings; k = after k blocks.</summary>
    public int Layer { get; init; } = -1;

    /// <summary>Inputs longer than this many tokens are truncated (default: 512; never more than the model's context).</summary>
    public int MaxInputTokens { get; init; } = 512;

    /// <summary>The model id to report (default: the model folder's name).</summary>
    public string? ModelId { get; init; }
}

/// <summary>
/// Text embeddings from a GLM model: mean-pooled, L2-normalised hidden states of a configurable layer
/// (<see cref="GlmModel.EmbedIds"/>). Inputs are embedded one after another on the thread pool.
/// </summary>
public sealed class GlmEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly GlmModel _model;
    private readonly GlmEmbeddingOptions _options;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Creates the generator over <paramref name="model"/> (which stays owned by the caller).</summary>
    public GlmEmbeddingGenerator(GlmModel model, GlmEmbeddingOptions? options = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        if (model.Tokenizer is null) throw new GlmException($"{model.Source} has no tokenizer; embeddings need one.");
        _options = options ?? new GlmEmbeddingOptions();
        if (_options.Layer < -1 || _options.Layer > model.LayerCount)
            throw new ArgumentException($"Layer = {_options.Layer}; expected -1 or 0..{model.LayerCount}.", nameof(options));
        if (_options.MaxInputTokens < 1) throw new ArgumentException($"MaxInputTokens = {_options.MaxInputTokens}; expected 1 or more.", nameof(options));
        ModelId = _options.ModelId ?? GlmModelTokenSource.DefaultModelId(model.Source);
        _metadata = new EmbeddingGeneratorMetadata(GlmChatClient.ProviderName, null, ModelId, model.EmbeddingDimensions);
    }

    /// <summary>The model id reported on embeddings.</summary>
    public string ModelId { get; }

    /// <summary>Length of every vector.</summary>
    public int Dimensions => _model.EmbeddingDimensions;

    /// <inheritdoc />
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (options?.Dimensions is int dims && dims != Dimensions)
            throw new ArgumentException($"Dimensions = {dims} is not supported; this model's embeddings have {Dimensions}.", nameof(options));
        var inputs = values.ToList();
        var result = new GeneratedEmbeddings<Embedding<float>>(inputs.Count);
        long tokens = 0;
        int limit = Math.Min(_options.MaxInputTokens, _model.MaxContext);
        foreach (var text in inputs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (string.IsNullOrEmpty(text)) throw new ArgumentException("An input text is empty; expected non-empty strings.", nameof(values));
            var ids = _model.Tokenizer!.Encode(text);
            if (ids.Count > limit) ids = ids.Take(limit).ToList();
            tokens += ids.Count;
            var vector = await Task.Run(() => _model.EmbedIds(ids, _options.Layer), cancellationToken).ConfigureAwait(false);
            result.Add(new Embedding<float>(vector) { ModelId = ModelId, CreatedAt = DateTimeOffset.UtcNow });
        }
        result.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
        return result;
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(GlmModel)) return _model;
        return null;
    }

    /// <summary>Nothing to free: the model is owned by the caller (or the <see cref="GlmModelCache"/>).</summary>
    public void Dispose() { }
}
