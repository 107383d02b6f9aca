namespace Glm.Engine.Tokenization;

/// <summary>Roles of GLM chat turns; each maps to a <c>&lt;|role|&gt;</c> special token.</summary>
public enum ChatRole
{
    /// <summary><c>&lt;|system|&gt;</c></summary>
    System,
    /// <summary><c>&lt;|user|&gt;</c></summary>
    User,
    /// <summary><c>&lt;|assistant|&gt;</c></summary>
    Assistant,
    /// <summary><c>&lt;|observation|&gt;</c>: a tool result fed back to the model.</summary>
    Observation,
}

/// <summary>One chat turn. <paramref name="Metadata"/> is the text after the role token (e.g. the called tool's name).</summary>
public sealed record ChatTurn(ChatRole Role, string Content, string? Metadata = null);

/// <summary>A function the model may call; <paramref name="ParametersSchema"/> is a JSON Schema object as JSON text.</summary>
public sealed record ToolDefinition(string Name, string? Description, string ParametersSchema);

/// <summary>A tool call parsed from model output; <paramref name="ArgumentsJson"/> is a JSON object as text.</summary>
public sealed record ToolCall(string Name, string ArgumentsJson);

/// <summary>
/// The interpretation of one assistant reply: plain <paramref name="Content"/> and/or <paramref name="ToolCalls"/>.
/// <paramref name="Metadata"/> is the role-line text (tool or interpreter name) if any; <paramref name="Error"/> explains
/// a tool call that could not be parsed (then <paramref name="Content"/> holds the raw text).
/// </summary>
public sealed record ParsedResponse(string Content, IReadOnlyList<ToolCall> ToolCalls, string? Metadata = null, string? Error = null)
{
    /// <summary>A plain-text reply.</summary>
    public static ParsedResponse Text(string content, string? metadata = null) => new(content, [], metadata);

    /// <summary>True when at least one tool call was recognised.</summary>
    public bool HasToolCalls => ToolCalls.Count > 0;
}

/// <summary>
/// A GLM chat prompt format: builds the exact prompt ids of the reference implementation, names the stop ids and
/// parses replies into text or tool calls.
/// </summary>
public interface IChatFormat
{
    /// <summary>
    /// Prompt ids, <c>[gMASK]</c> and <c>sop</c> included; with <paramref name="addGenerationPrompt"/> it ends with
    /// <c>&lt;|assistant|&gt;</c>. Turn contents are encoded as plain text (special-token strings are not honoured).
    /// </summary>
    IReadOnlyList<int> BuildPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt);

    /// <summary>Ids at which generation must stop (eos, <c>&lt;|user|&gt;</c>, <c>&lt;|observation|&gt;</c>).</summary>
    IReadOnlyList<int> StopIds { get; }

    /// <summary>
    /// Parses the decoded assistant output (special tokens kept, the final stop token excluded). Never throws for
    /// malformed tool calls: those come back with <see cref="ParsedResponse.Error"/> set.
    /// </summary>
    ParsedResponse Parse(string decodedAssistantOutput, IReadOnlyCollection<string> knownToolNames);
}
