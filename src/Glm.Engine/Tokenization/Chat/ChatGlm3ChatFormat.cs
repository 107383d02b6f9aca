namespace Glm.Engine.Tokenization;

/// <summary>
/// ChatGLM3's <c>build_chat_input</c>: <c>[gMASK] sop</c>, then per turn <c>&lt;|role|&gt;</c> +
/// <c>sp.encode(metadata + "\n")</c> + <c>sp.encode(content)</c> (each with its own dummy prefix), then
/// <c>&lt;|assistant|&gt;</c>. Tools are appended to the first system turn as <c>"\n" + json.dumps(tools, indent=4)</c>.
/// </summary>
public sealed class ChatGlm3ChatFormat : IChatFormat
{
    /// <summary>System prompt used when tools are given but no system turn is (ChatGLM3 tool demo).</summary>
    public const string DefaultToolSystemPrompt = "Answer the following questions as best as you can. You have access to the following tools:";

    private readonly IGlmTokenizer _tokenizer;
    private readonly int _gmask, _sop;

    /// <summary>Creates the format over a ChatGLM3 tokenizer (it must know <c>[gMASK]</c>, <c>sop</c> and role tokens).</summary>
    public ChatGlm3ChatFormat(IGlmTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        _gmask = Require("[gMASK]");
        _sop = Require("sop");
        StopIds = [tokenizer.EosId ?? 2, Require("<|user|>"), Require("<|observation|>")];
    }

    /// <inheritdoc />
    public IReadOnlyList<int> StopIds { get; }

    /// <inheritdoc />
    public IReadOnlyList<int> BuildPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        var ids = new List<int> { _gmask, _sop };
        var all = turns.ToList();
        if (tools is { Count: > 0 })
        {
            string toolJson = ToolJson.ToolList(tools, indent: 4);
            int system = all.FindIndex(t => t.Role == ChatRole.System);
            if (system < 0) all.Insert(0, new ChatTurn(ChatRole.System, DefaultToolSystemPrompt + "\n" + toolJson));
            else all[system] = all[system] with { Content = all[system].Content + "\n" + toolJson };
        }
        foreach (var turn in all)
        {
            ids.Add(RoleId(turn.Role));
            ids.AddRange(_tokenizer.Encode((turn.Metadata ?? "") + "\n"));
            ids.AddRange(_tokenizer.Encode(turn.Content));
        }
        if (addGenerationPrompt) ids.Add(RoleId(ChatRole.Assistant));
        return ids;
    }

    /// <summary>
    /// <c>process_response</c>: the output is split on <c>&lt;|assistant|&gt;</c> and the last segment counts; its
    /// first line is metadata. No metadata → stripped text. Metadata with tools known → the fenced
    /// <c>tool_call(k=v, …)</c> block becomes a tool call. Metadata without tools → text with that metadata.
    /// </summary>
    public ParsedResponse Parse(string decodedAssistantOutput, IReadOnlyCollection<string> knownToolNames)
    {
        string segment = decodedAssistantOutput.Split("<|assistant|>")[^1];
        int newline = segment.IndexOf('\n');
        string metadata = newline < 0 ? "" : segment[..newline];
        string content = newline < 0 ? segment : segment[(newline + 1)..];
        if (metadata.Trim().Length == 0) return ParsedResponse.Text(content.Trim());

        string name = metadata.Trim();
        if (knownToolNames.Count == 0) return ParsedResponse.Text(content, name);
        if (!knownToolNames.Contains(name))
            return new ParsedResponse(content, [], name, $"The model called unknown tool '{name}' (known: {string.Join(", ", knownToolNames)}).");
        try
        {
            string arguments = PythonCallParser.ParseKeywordArguments(StripCodeFence(content).Trim());
            return new ParsedResponse("", [new ToolCall(name, arguments)], name);
        }
        catch (FormatException e)
        {
            return new ParsedResponse(content, [], name, $"Malformed call to tool '{name}': {e.Message} (expected tool_call(name=value, ...)).");
        }
    }

    // The reference drops the first and last lines (the ```python fence); only drop lines that are fences.
    private static string StripCodeFence(string content)
    {
        var lines = content.Split('\n').ToList();
        if (lines.Count > 0 && lines[0].TrimStart().StartsWith("```", StringComparison.Ordinal)) lines.RemoveAt(0);
        while (lines.Count > 0 && lines[^1].Trim().Length == 0) lines.RemoveAt(lines.Count - 1);
        if (lines.Count > 0 && lines[^1].Trim().StartsWith("```", StringComparison.Ordinal)) lines.RemoveAt(lines.Count - 1);
        return string.Join('\n', lines);
    }

    private int RoleId(ChatRole role) => Require(RoleToken(role));

    internal static string RoleToken(ChatRole role) => role switch
    {
        ChatRole.System => "<|system|>",
        ChatRole.User => "<|user|>",
        ChatRole.Assistant => "<|assistant|>",
        ChatRole.Observation => "<|observation|>",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "unknown chat role"),
    };

    private int Require(string token) => _tokenizer.SpecialTokenId(token)
        ?? throw new GlmException($"The tokenizer has no special token '{token}' (a ChatGLM3 tokenizer is expected for the ChatGLM3 chat format).");
}
