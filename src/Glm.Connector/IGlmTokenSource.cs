using Glm.Engine;
using Glm.Engine.Generation;
using Glm.Engine.Tokenization;

namespace Glm.Connector;

/// <summary>
/// What the connector needs from a GLM model: its tokenizer and chat format, and a token stream for prompt ids.
/// <see cref="GlmModelTokenSource"/> adapts a loaded <see cref="GlmModel"/>; tests can script the output instead.
/// </summary>
public interface IGlmTokenSource
{
    /// <summary>The model id reported in responses (e.g. the model folder's name).</summary>
    string ModelId { get; }

    /// <summary>The model's tokenizer.</summary>
    IGlmTokenizer Tokenizer { get; }

    /// <summary>The model's chat format (ChatGLM3 or GLM-4 style).</summary>
    IChatFormat ChatFormat { get; }

    /// <summary>Longest prompt + completion the model can process, in tokens.</summary>
    int MaxContext { get; }

    /// <summary>Streams the continuation of <paramref name="promptIds"/>; the last chunk carries the finish reason.</summary>
    IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options, CancellationToken cancellationToken);
}

/// <summary>
/// The <see cref="IGlmTokenSource"/> of a loaded <see cref="GlmModel"/> (which stays owned by the caller). With a
/// <see cref="BatchScheduler"/>, concurrent requests are decoded together (continuous batching) instead of one after another.
/// </summary>
public sealed class GlmModelTokenSource : IGlmTokenSource
{
    /// <summary>
    /// Wraps <paramref name="model"/>; it must have a tokenizer and a chat format (ChatGLM3 or GLM-4). When
    /// <paramref name="scheduler"/> is given (a scheduler on the same model, owned by the caller), generation goes through it.
    /// </summary>
    public GlmModelTokenSource(GlmModel model, string? modelId = null, BatchScheduler? scheduler = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Scheduler = scheduler;
        Tokenizer = model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer; the connector needs a model folder with tokenizer files.");
        ChatFormat = model.ChatFormat ?? throw new GlmException($"{model.Source} has no chat format; the connector needs a ChatGLM3 or GLM-4 model.");
        ModelId = modelId ?? DefaultModelId(model.Source);
    }

    /// <summary>The wrapped model.</summary>
    public GlmModel Model { get; }

    /// <summary>The continuous-batching scheduler requests go through, or null to generate on the model directly.</summary>
    public BatchScheduler? Scheduler { get; }

    /// <inheritdoc />
    public string ModelId { get; }

    /// <inheritdoc />
    public IGlmTokenizer Tokenizer { get; }

    /// <inheritdoc />
    public IChatFormat ChatFormat { get; }

    /// <inheritdoc />
    public int MaxContext => Scheduler?.MaxContext ?? Model.MaxContext;

    /// <inheritdoc />
    public IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options, CancellationToken cancellationToken) =>
        Scheduler is { } scheduler ? scheduler.GenerateAsync(promptIds, options, cancellationToken) : Model.GenerateAsync(promptIds, options, cancellationToken);

    /// <summary>The last folder name of a model source ("/models/chatglm3-6b/" → "chatglm3-6b").</summary>
    public static string DefaultModelId(string source)
    {
        string trimmed = source.TrimEnd('/', '\\');
        string name = Path.GetFileName(trimmed);
        return name.Length > 0 ? name : source;
    }
}
