using System.Runtime.CompilerServices;
using Glm.Engine.Tokenization;

namespace Glm.Engine.Generation;

/// <summary>
/// A multi-turn conversation with a model in its own chat template: each user message is appended, the whole history is
/// rendered to prompt ids, the reply is streamed and kept as an assistant turn.
/// </summary>
public sealed class ChatSession
{
    private readonly GlmModel _model;
    private readonly IChatFormat _format;
    private readonly string? _system;
    private readonly List<ChatTurn> _turns = new();

    private ChatSession(GlmModel model, IChatFormat format, string? system)
    {
        _model = model;
        _format = format;
        _system = system;
        Reset();
    }

    /// <summary>
    /// Starts a conversation in the model's chat format (ChatGLM3, GLM-4, or the plain-text blank chat of base GLM models);
    /// throws when the model has none.
    /// </summary>
    public static ChatSession Create(GlmModel model, string? systemPrompt = null) =>
        new(model, model.ChatFormat ?? throw new GlmException($"{model.Source} has no chat format (it needs a tokenizer); use generate with --ids instead."), systemPrompt);

    /// <summary>Turns so far.</summary>
    public IReadOnlyList<ChatTurn> Turns => _turns;

    /// <summary>Clears the history (keeps the system prompt).</summary>
    public void Reset()
    {
        _turns.Clear();
        if (!string.IsNullOrEmpty(_system)) _turns.Add(new ChatTurn(ChatRole.System, _system));
    }

    /// <summary>Sends a user message and streams the reply text.</summary>
    public async IAsyncEnumerable<string> SendAsync(string userMessage, GenerationOptions options, [EnumeratorCancellation] CancellationToken ct = default)
    {
        _turns.Add(new ChatTurn(ChatRole.User, userMessage));
        var reply = new System.Text.StringBuilder();
        await foreach (var chunk in Generate(options, ct).ConfigureAwait(false))
        {
            // The reply starts with "\n" after <|assistant|>: don't show the template's line break.
            string delta = reply.Length == 0 ? chunk.TextDelta.TrimStart('\n') : chunk.TextDelta;
            if (delta.Length == 0 && reply.Length == 0) continue;
            reply.Append(delta);
            yield return delta;
        }
        _turns.Add(new ChatTurn(ChatRole.Assistant, _format.Parse(reply.ToString(), Array.Empty<string>()).Content));
    }

    private IAsyncEnumerable<GenerationChunk> Generate(GenerationOptions options, CancellationToken ct)
    {
        var stopIds = new HashSet<int>(_format.StopIds);
        foreach (var id in _model.DefaultStopIds) stopIds.Add(id);
        // A base GLM answers in one line and would otherwise run on into invented turns.
        var stops = _format is GlmBlankChatFormat ? options.StopStrings.Append("\n").ToArray() : options.StopStrings;
        return _model.GenerateAsync(_format.BuildPrompt(_turns, null, addGenerationPrompt: true), options with { StopTokenIds = stopIds, StopStrings = stops }, ct);
    }
}
