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
    private readonly IChatFormat? _format;
    private readonly string? _system;
    private readonly List<ChatTurn> _turns = new();

    private ChatSession(GlmModel model, IChatFormat? format, string? system)
    {
        _model = model;
        _format = format;
        _system = system;
        Reset();
    }

    /// <summary>
    /// Starts a conversation. Models with a ChatGLM3/GLM-4 template use it; a base original-GLM model (no template) gets a
    /// plain-text dialogue ("问：…\n答：") continued through its [gMASK] blank. Other models without a template are refused.
    /// </summary>
    public static ChatSession Create(GlmModel model, string? systemPrompt = null)
    {
        if (model.ChatFormat is null && (model.Config.Layout != Modeling.GlmLayout.OriginalGlm || model.Tokenizer is null))
            throw new GlmException($"{model.Source} has no chat template (it needs a ChatGLM3 or GLM-4 tokenizer); use generate instead.");
        return new ChatSession(model, model.ChatFormat, systemPrompt);
    }

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
        string content = _format is null ? reply.ToString().Trim() : _format.Parse(reply.ToString(), Array.Empty<string>()).Content;
        _turns.Add(new ChatTurn(ChatRole.Assistant, content));
    }

    private IAsyncEnumerable<GenerationChunk> Generate(GenerationOptions options, CancellationToken ct)
    {
        if (_format is not null)
        {
            var stopIds = new HashSet<int>(_format.StopIds);
            foreach (var id in _model.DefaultStopIds) stopIds.Add(id);
            return _model.GenerateAsync(_format.BuildPrompt(_turns, null, addGenerationPrompt: true), options with { StopTokenIds = stopIds }, ct);
        }
        // Base GLM: the dialogue as plain text, the answer generated in the document-level blank, one line per answer.
        var tok = _model.Tokenizer!;
        var text = new System.Text.StringBuilder();
        foreach (var turn in _turns)
            text.Append(turn.Role switch
            {
                ChatRole.System => turn.Content + "\n",
                ChatRole.User => "问：" + turn.Content + "\n",
                ChatRole.Assistant => "答：" + turn.Content + "\n",
                _ => turn.Content + "\n",
            });
        text.Append("答：");
        var partA = new List<int>();
        if (tok.SpecialTokenId("[CLS]") is int cls) partA.Add(cls);
        partA.AddRange(tok.Encode(text.ToString()));
        partA.Add(tok.SpecialTokenId("[gMASK]") ?? throw new GlmException($"{_model.Source}: the tokenizer has no [gMASK]."));
        return _model.GenerateBlankAsync(partA, options with { StopStrings = options.StopStrings.Concat(new[] { "\n问：", "\n" }).ToArray() }, ct);
    }
}
