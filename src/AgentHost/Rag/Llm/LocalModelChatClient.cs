using System.Runtime.CompilerServices;
using Glm.Engine;
using Glm.Engine.Generation;
using Glm.Engine.Tokenization;
using Microsoft.Extensions.AI;
using MeaiRole = Microsoft.Extensions.AI.ChatRole;

namespace AgentHost.Rag.Llm;

/// <summary>
/// The host's local adapter: an <see cref="IChatClient"/> over an in-process <see cref="GlmModel"/> and its own chat
/// template (<see cref="GlmModel.ChatFormat"/>), streaming one update per decoded text piece. Text only (no tools).
/// <para>This is a stop-gap inside AgentHost until the Glm.Connector project's <c>GlmChatClient</c> lands; the lead will
/// swap that in (see <c>RagHost.CreateChatClient</c>). Nothing else in the RAG code depends on this type.</para>
/// </summary>
public sealed class LocalModelChatClient : IChatClient
{
    private readonly GlmModel _model;
    private readonly IChatFormat _format;
    private readonly bool _ownsModel;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Wraps <paramref name="model"/>; throws when it has no chat template.</summary>
    /// <param name="model">A loaded GLM model with a ChatGLM3 or GLM-4 tokenizer.</param>
    /// <param name="ownsModel">Dispose the model with this client.</param>
    public LocalModelChatClient(GlmModel model, bool ownsModel = false)
    {
        _model = model;
        _format = model.ChatFormat ?? throw new GlmException($"{model.Source} has no chat template (it needs a ChatGLM3 or GLM-4 tokenizer), so it cannot answer questions; pass a chat model with --model DIR");
        _ownsModel = ownsModel;
    }

    /// <summary>Largest prompt plus answer the model supports, in tokens.</summary>
    public int MaxContext => _model.MaxContext;

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
            updates.Add(update);
        return updates.ToChatResponse();
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var turns = new List<ChatTurn>();
        if (!string.IsNullOrEmpty(options?.Instructions)) turns.Add(new ChatTurn(Glm.Engine.Tokenization.ChatRole.System, options.Instructions));
        foreach (var m in messages) turns.Add(new ChatTurn(MapRole(m.Role), m.Text));
        var prompt = _format.BuildPrompt(turns, null, addGenerationPrompt: true);
        var stopIds = new HashSet<int>(_format.StopIds);
        foreach (var stop in _model.DefaultStopIds) stopIds.Add(stop);
        int maxNew = Math.Min(options?.MaxOutputTokens ?? 512, Math.Max(1, _model.MaxContext - prompt.Count));
        if (prompt.Count >= _model.MaxContext)
            throw new GlmException($"the prompt has {prompt.Count} tokens but {_model.Source} supports {_model.MaxContext}; lower Rag:ContextTokens / Summarize:ContextTokens or --top-k");
        var generation = new GenerationOptions
        {
            MaxNewTokens = maxNew,
            Temperature = options?.Temperature ?? 0f,
            TopP = options?.TopP ?? 1f,
            TopK = options?.TopK ?? 0,
            Seed = options?.Seed is long seed ? (ulong)seed : null,
            StopStrings = options?.StopSequences?.ToArray() ?? [],
            StopTokenIds = stopIds,
        };
        string id = Guid.NewGuid().ToString("N");
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            bool started = false;
            await foreach (var chunk in _model.GenerateAsync(prompt, generation, cancellationToken).ConfigureAwait(false))
            {
                // The reply starts with "\n" after <|assistant|>: drop the template's line break (as ChatSession does).
                string delta = started ? chunk.TextDelta : chunk.TextDelta.TrimStart('\n');
                started |= delta.Length > 0;
                var update = new ChatResponseUpdate(MeaiRole.Assistant, delta) { ResponseId = id, ModelId = _model.Source };
                if (chunk.Finish != FinishReason.None)
                {
                    update.FinishReason = chunk.Finish == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;
                    update.Contents.Add(new UsageContent(new UsageDetails
                    {
                        InputTokenCount = chunk.PromptTokens, OutputTokenCount = chunk.GeneratedTokens,
                        TotalTokenCount = chunk.PromptTokens + chunk.GeneratedTokens,
                    }));
                }
                if (delta.Length > 0 || update.FinishReason is not null) yield return update;
            }
        }
        finally { _gate.Release(); }
    }

    private static Glm.Engine.Tokenization.ChatRole MapRole(MeaiRole role) =>
        role == MeaiRole.System ? Glm.Engine.Tokenization.ChatRole.System
        : role == MeaiRole.Assistant ? Glm.Engine.Tokenization.ChatRole.Assistant
        : role == MeaiRole.Tool ? Glm.Engine.Tokenization.ChatRole.Observation
        : Glm.Engine.Tokenization.ChatRole.User;

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("glmsk-local", null, _model.Source)
        : serviceType == typeof(GlmModel) ? _model
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
        _gate.Dispose();
    }
}
