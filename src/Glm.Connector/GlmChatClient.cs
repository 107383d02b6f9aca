using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Glm.Engine.Generation;
using Glm.Engine.Tokenization;
using Microsoft.Extensions.AI;
using ChatRole = Microsoft.Extensions.AI.ChatRole;

namespace Glm.Connector;

/// <summary>
/// An M.E.AI <see cref="IChatClient"/> over a GLM model (ChatGLM3 or GLM-4), streaming first. Messages are rendered in the
/// model's own chat template; tools in <see cref="ChatOptions.Tools"/> in its own tool format, and replies that call a tool
/// come back as <see cref="FunctionCallContent"/> with the advertised name and a fresh call id. Wrap it with
/// <c>UseKernelFunctionInvocation()</c> (Semantic Kernel) or <c>UseFunctionInvocation()</c> to run the calls.
/// </summary>
public sealed class GlmChatClient : IChatClient
{
    /// <summary>Provider name reported in <see cref="ChatClientMetadata"/>.</summary>
    public const string ProviderName = "glm";

    /// <summary><see cref="ErrorContent.ErrorCode"/> of a reply whose tool call could not be parsed.</summary>
    public const string ToolCallParseErrorCode = "glm_tool_call_parse_error";

    private readonly IGlmTokenSource _source;
    private readonly GlmChatClientOptions _options;
    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates a client over <paramref name="source"/> with optional request defaults.</summary>
    public GlmChatClient(IGlmTokenSource source, GlmChatClientOptions? options = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        _options = options ?? new GlmChatClientOptions();
        ModelId = _options.ModelId ?? source.ModelId;
        _metadata = new ChatClientMetadata(ProviderName, null, ModelId);
    }

    /// <summary>The model id reported on responses.</summary>
    public string ModelId { get; }

    /// <summary>The token source (model) behind this client.</summary>
    public IGlmTokenSource Source => _source;

    /// <inheritdoc />
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var format = _source.ChatFormat;
        var tools = GlmPromptMapper.ToTools(options);
        var turns = GlmPromptMapper.ToTurns(messages, format, options?.Instructions);
        if (turns.Count == 0) throw new ArgumentException("No messages to answer; expected at least one message.", nameof(messages));
        var prompt = format.BuildPrompt(turns, tools, addGenerationPrompt: true);
        var stopIds = new HashSet<int>(format.StopIds);
        if (_source.Tokenizer.EosId is int eos) stopIds.Add(eos);
        // With tools the raw text (special tokens kept) is buffered: a tool call is only recognisable once complete.
        bool toolMode = tools.Count > 0;
        var generation = GlmGenerationOptionsMapper.Map(options, _options, stopIds, keepSpecialTokens: toolMode);

        string responseId = "chatcmpl-" + Guid.NewGuid().ToString("N");
        string messageId = "msg-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        ChatResponseUpdate Update(IList<AIContent> contents) => new(ChatRole.Assistant, contents)
        {
            ResponseId = responseId, MessageId = messageId, ModelId = ModelId, CreatedAt = created,
            ConversationId = options?.ConversationId,
        };

        var raw = new StringBuilder();
        var trimmer = new WhitespaceTrimmer();
        GenerationChunk? last = null;
        await foreach (var chunk in _source.GenerateAsync(prompt, generation, cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            last = chunk;
            if (toolMode) { raw.Append(chunk.TextDelta); continue; }
            string visible = trimmer.Push(chunk.TextDelta);
            if (visible.Length > 0) yield return Update([new TextContent(visible)]);
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (last is null) throw new InvalidOperationException("The model produced no output chunk.");

        var finish = last.Finish switch
        {
            FinishReason.Length => ChatFinishReason.Length,
            _ => ChatFinishReason.Stop,
        };
        if (toolMode)
        {
            var contents = ParseReply(raw.ToString(), tools);
            if (contents.Any(c => c is FunctionCallContent)) finish = ChatFinishReason.ToolCalls;
            if (contents.Count > 0) yield return Update(contents);
        }

        var usage = new UsageDetails
        {
            InputTokenCount = last.PromptTokens,
            OutputTokenCount = last.GeneratedTokens,
            TotalTokenCount = last.PromptTokens + last.GeneratedTokens,
        };
        var final = Update([new UsageContent(usage)]);
        final.FinishReason = finish;
        yield return final;
    }

    /// <summary>
    /// Interprets a complete raw reply with the model's parser: text, tool calls (names as advertised, fresh call ids,
    /// <c>RawRepresentation</c> = the parsed <see cref="ToolCall"/>), or text plus an
    /// <see cref="ErrorContent"/> when a tool call was malformed.
    /// </summary>
    internal List<AIContent> ParseReply(string rawOutput, IReadOnlyList<ToolDefinition> tools)
    {
        var names = tools.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var parsed = _source.ChatFormat.Parse(rawOutput, names);
        var contents = new List<AIContent>();
        string text = StripSpecialTokens(parsed.Content).Trim();
        if (text.Length > 0) contents.Add(new TextContent(text));
        if (parsed.Error is not null)
        {
            contents.Add(new ErrorContent(parsed.Error) { ErrorCode = ToolCallParseErrorCode, Details = rawOutput });
            return contents;
        }
        foreach (var call in parsed.ToolCalls)
        {
            if (!names.Contains(call.Name))
            {
                // Built-in GLM-4 tools (cogview, simple_browser) that were not advertised: report, don't invent a function.
                contents.Add(new ErrorContent($"The model called tool '{call.Name}', which was not offered (offered: {string.Join(", ", names)}).")
                    { ErrorCode = ToolCallParseErrorCode, Details = rawOutput });
                continue;
            }
            Dictionary<string, object?> arguments;
            using (var doc = JsonDocument.Parse(call.ArgumentsJson))
                arguments = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
            contents.Add(new FunctionCallContent(NewCallId(), call.Name, arguments) { RawRepresentation = call });
        }
        return contents;
    }

    private string StripSpecialTokens(string text)
    {
        foreach (var token in new[] { "<|assistant|>", "<|user|>", "<|observation|>", "<|system|>", "<|endoftext|>" })
            if (_source.Tokenizer.SpecialTokenId(token) is not null) text = text.Replace(token, "", StringComparison.Ordinal);
        return text;
    }

    /// <summary>A fresh OpenAI-style tool call id.</summary>
    public static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_source)) return _source;
        return null;
    }

    /// <summary>Nothing to free: the model is owned by whoever created the token source.</summary>
    public void Dispose() { }

    /// <summary>Drops leading whitespace (the template's "\n" after <c>&lt;|assistant|&gt;</c>) and holds trailing whitespace until more text follows.</summary>
    private sealed class WhitespaceTrimmer
    {
        private bool _started;
        private string _pending = "";

        public string Push(string delta)
        {
            if (!_started)
            {
                delta = delta.TrimStart();
                if (delta.Length == 0) return "";
                _started = true;
            }
            string body = delta.TrimEnd();
            if (body.Length == 0) { _pending += delta; return ""; }
            string result = _pending + body;
            _pending = delta[body.Length..];
            return result;
        }
    }
}
