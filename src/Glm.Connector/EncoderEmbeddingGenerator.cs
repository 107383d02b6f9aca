using Glm.Engine;
using Glm.Engine.Encoders;
using Microsoft.Extensions.AI;

namespace Glm.Connector;

/// <summary>
/// An M.E.AI embedding generator over a BERT / XLM-RoBERTa sentence-embedding model (bge-small-zh, bge-large-zh, bge-m3)
/// run by <see cref="EncoderEmbeddingModel"/>. Inputs are passages unless the request marks them as queries with
/// <c>options.AdditionalProperties["input_type"] = "query"</c> (<see cref="ForQueries"/>); queries get the model's
/// instruction prefix. All inputs of one call are embedded in length-sorted batches on the thread pool.
/// </summary>
public sealed class EncoderEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>Key in <see cref="EmbeddingGenerationOptions.AdditionalProperties"/> that says what the inputs are.</summary>
    public const string InputTypeKey = "input_type";
    /// <summary>Value of <see cref="InputTypeKey"/> for search queries.</summary>
    public const string QueryInputType = "query";
    /// <summary>Value of <see cref="InputTypeKey"/> for documents / passages (the default).</summary>
    public const string PassageInputType = "passage";

    private readonly EncoderEmbeddingModel _model;
    private readonly bool _ownsModel;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Wraps <paramref name="model"/>; with <paramref name="ownsModel"/> disposing the generator frees the weights.</summary>
    public EncoderEmbeddingGenerator(EncoderEmbeddingModel model, bool ownsModel = false, string? modelId = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _ownsModel = ownsModel;
        ModelId = modelId ?? GlmModelTokenSource.DefaultModelId(model.Source);
        _metadata = new EmbeddingGeneratorMetadata("glm-encoder", null, ModelId, model.Dimension);
    }

    /// <summary>The model id reported on embeddings.</summary>
    public string ModelId { get; }

    /// <summary>Length of every vector.</summary>
    public int Dimensions => _model.Dimension;

    /// <summary>Options that mark the inputs as search queries (what a retriever passes for the user's question).</summary>
    public static EmbeddingGenerationOptions ForQueries() => new()
    {
        AdditionalProperties = new AdditionalPropertiesDictionary { [InputTypeKey] = QueryInputType },
    };

    /// <summary>True when <paramref name="options"/> mark the inputs as queries.</summary>
    /// <exception cref="GlmException">The input type is neither "query" nor "passage".</exception>
    public static bool IsQuery(EmbeddingGenerationOptions? options)
    {
        if (options?.AdditionalProperties is not { } props || !props.TryGetValue(InputTypeKey, out object? value) || value is null) return false;
        string type = value.ToString() ?? "";
        if (type.Equals(QueryInputType, StringComparison.OrdinalIgnoreCase)) return true;
        if (type.Equals(PassageInputType, StringComparison.OrdinalIgnoreCase) || type.Equals("document", StringComparison.OrdinalIgnoreCase)) return false;
        throw new GlmException($"embedding option {InputTypeKey} = '{type}': expected '{QueryInputType}' or '{PassageInputType}'.");
    }

    /// <inheritdoc />
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (options?.Dimensions is int dims && dims != Dimensions)
            throw new ArgumentException($"Dimensions = {dims} is not supported; this model's embeddings have {Dimensions}.", nameof(options));
        bool isQuery = IsQuery(options);
        var inputs = values.ToList();
        for (int i = 0; i < inputs.Count; i++)
            if (string.IsNullOrEmpty(inputs[i])) throw new ArgumentException($"Input {i} is empty; expected non-empty strings.", nameof(values));
        var vectors = inputs.Count == 0 ? [] : await Task.Run(() => _model.Embed(inputs, isQuery), cancellationToken).ConfigureAwait(false);
        var result = new GeneratedEmbeddings<Embedding<float>>(inputs.Count);
        var now = DateTimeOffset.UtcNow;
        foreach (var vector in vectors) result.Add(new Embedding<float>(vector) { ModelId = ModelId, CreatedAt = now });
        return result;
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(EncoderEmbeddingModel)) return _model;
        return null;
    }

    /// <summary>Frees the model when this generator owns it.</summary>
    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
    }
}
