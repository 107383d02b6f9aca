using System.Runtime.CompilerServices;
using System.Text;
using Glm.Engine.Generation;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.Services;
using Microsoft.SemanticKernel.TextGeneration;
using SkTextContent = Microsoft.SemanticKernel.TextContent;

namespace Glm.Connector;

/// <summary>
/// SK text generation over a GLM model: the prompt is continued as plain text (<c>[gMASK] sop</c> + its tokens, no chat
/// template). Settings are read like chat settings (<see cref="GlmPromptExecutionSettings"/> or any SK settings).
/// Metadata: <c>Usage</c> (<see cref="UsageDetails"/>) and <c>FinishReason</c> ("stop" or "length").
/// </summary>
public sealed class GlmTextGenerationService : ITextGenerationService
{
    private readonly IGlmTokenSource _source;
    private readonly GlmChatClientOptions _options;
    private readonly Dictionary<string, object?> _attributes;

    /// <summary>Creates the service over <paramref name="source"/>.</summary>
    public GlmTextGenerationService(IGlmTokenSource source, GlmChatClientOptions? options = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        _options = options ?? new GlmChatClientOptions();
        ModelId = _options.ModelId ?? source.ModelId;
        _attributes = new() { [AIServiceExtensions.ModelIdKey] = ModelId };
    }

    /// <summary>The model id reported on results.</summary>
    public string ModelId { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, object?> Attributes => _attributes;

    /// <inheritdoc />
    public async Task<IReadOnlyList<SkTextContent>> GetTextContentsAsync(string prompt, PromptExecutionSettings? executionSettings = null,
        Kernel? kernel = null, CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        IReadOnlyDictionary<string, object?>? metadata = null;
        await foreach (var chunk in GetStreamingTextContentsAsync(prompt, executionSettings, kernel, cancellationToken).ConfigureAwait(false))
        {
            text.Append(chunk.Text);
            if (chunk.Metadata is { } m && m.ContainsKey("Usage")) metadata = m;
        }
        return [new SkTextContent(text.ToString(), ModelId, metadata: metadata)];
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StreamingTextContent> GetStreamingTextContentsAsync(string prompt, PromptExecutionSettings? executionSettings = null,
        Kernel? kernel = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Length == 0) throw new ArgumentException("The prompt is empty.", nameof(prompt));
        var ids = PromptIds(prompt);
        var chatOptions = GlmPromptExecutionSettings.FromExecutionSettings(executionSettings).ToChatOptions(kernel);
        var stopIds = new HashSet<int>(_source.ChatFormat.StopIds);
        if (_source.Tokenizer.EosId is int eos) stopIds.Add(eos);
        var generation = GlmGenerationOptionsMapper.Map(chatOptions, _options, stopIds, keepSpecialTokens: false);

        GenerationChunk? last = null;
        await foreach (var chunk in _source.GenerateAsync(ids, generation, cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            last = chunk;
            if (chunk.TextDelta.Length > 0) yield return new StreamingTextContent(chunk.TextDelta, 0, ModelId, chunk);
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (last is null) throw new InvalidOperationException("The model produced no output chunk.");
        var usage = new UsageDetails
        {
            InputTokenCount = last.PromptTokens,
            OutputTokenCount = last.GeneratedTokens,
            TotalTokenCount = last.PromptTokens + last.GeneratedTokens,
        };
        yield return new StreamingTextContent("", 0, ModelId, last, metadata: new Dictionary<string, object?>
        {
            ["Usage"] = usage,
            ["FinishReason"] = last.Finish == FinishReason.Length ? "length" : "stop",
        });
    }

    /// <summary>Prompt ids for plain continuation: <c>[gMASK] sop</c> (when the tokenizer has them) + the encoded text.</summary>
    public static List<int> PromptIds(Glm.Engine.Tokenization.IGlmTokenizer tokenizer, string prompt)
    {
        var ids = new List<int>();
        if (tokenizer.SpecialTokenId("[gMASK]") is int gmask && (tokenizer.SpecialTokenId("sop") ?? tokenizer.SpecialTokenId("<sop>")) is int sop)
        {
            ids.Add(gmask);
            ids.Add(sop);
        }
        ids.AddRange(tokenizer.Encode(prompt));
        return ids;
    }

    private List<int> PromptIds(string prompt) => PromptIds(_source.Tokenizer, prompt);
}
