using System.Text;
using System.Text.Json;
using Glm.Engine.Tokenization;
using Microsoft.Extensions.AI;
using GlmChatRole = Glm.Engine.Tokenization.ChatRole;
using MeaiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace Glm.Connector;

/// <summary>
/// Maps M.E.AI messages and tools onto GLM chat turns and tool definitions: system/developer → system turns, user → user,
/// assistant text → assistant, assistant <see cref="FunctionCallContent"/> → the model's own tool-call turn
/// (GLM-4: <c>&lt;|assistant|&gt;name\n{json}</c>; ChatGLM3: metadata <c>name</c> + a fenced <c>tool_call(k=v)</c> block),
/// <see cref="FunctionResultContent"/> → <c>&lt;|observation|&gt;</c> turns.
/// </summary>
public static class GlmPromptMapper
{
    /// <summary>The chat turns for <paramref name="messages"/>, with <paramref name="instructions"/> as a leading system turn.</summary>
    public static List<ChatTurn> ToTurns(IEnumerable<ChatMessage> messages, IChatFormat format, string? instructions = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = new List<ChatTurn>();
        if (!string.IsNullOrWhiteSpace(instructions)) turns.Add(new ChatTurn(GlmChatRole.System, instructions));
        foreach (var message in messages)
        {
            if (message is null) throw new ArgumentException("A chat message is null.", nameof(messages));
            var role = message.Role;
            if (role == MeaiChatRole.System || role.Value == "developer") turns.Add(new ChatTurn(GlmChatRole.System, message.Text));
            else if (role == MeaiChatRole.User) turns.Add(new ChatTurn(GlmChatRole.User, message.Text));
            else if (role == MeaiChatRole.Assistant) AddAssistant(turns, message, format);
            else if (role == MeaiChatRole.Tool) AddToolResults(turns, message);
            else throw new ArgumentException($"Chat role '{role.Value}' is not supported; expected system, developer, user, assistant or tool.", nameof(messages));
        }
        return turns;
    }

    /// <summary>
    /// The tools to render for <paramref name="options"/>: none when <see cref="ChatToolMode.None"/> or no tools; only the named
    /// function for <see cref="RequiredChatToolMode.RequiredFunctionName"/>; otherwise every function declaration, names unchanged.
    /// </summary>
    public static List<ToolDefinition> ToTools(ChatOptions? options)
    {
        var result = new List<ToolDefinition>();
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode) return result;
        string? only = (options.ToolMode as RequiredChatToolMode)?.RequiredFunctionName;
        foreach (var tool in tools)
        {
            if (tool is not AIFunctionDeclaration function) continue;
            if (only is not null && function.Name != only) continue;
            string schema = function.JsonSchema.ValueKind == JsonValueKind.Object
                ? function.JsonSchema.GetRawText()
                : """{"type": "object", "properties": {}}""";
            result.Add(new ToolDefinition(function.Name, string.IsNullOrEmpty(function.Description) ? null : function.Description, schema));
        }
        if (only is not null && result.Count == 0)
            throw new ArgumentException($"The required function '{only}' is not among the tools.", nameof(options));
        return result;
    }

    private static void AddAssistant(List<ChatTurn> turns, ChatMessage message, IChatFormat format)
    {
        var text = new StringBuilder();
        foreach (var content in message.Contents)
        {
            if (content is TextContent t) text.Append(t.Text);
            else if (content is FunctionCallContent call)
            {
                if (text.Length > 0) { turns.Add(new ChatTurn(GlmChatRole.Assistant, text.ToString())); text.Clear(); }
                turns.Add(ToolCallTurn(call, format));
            }
        }
        if (text.Length > 0) turns.Add(new ChatTurn(GlmChatRole.Assistant, text.ToString()));
    }

    private static void AddToolResults(List<ChatTurn> turns, ChatMessage message)
    {
        bool any = false;
        foreach (var content in message.Contents)
            if (content is FunctionResultContent result)
            {
                turns.Add(new ChatTurn(GlmChatRole.Observation, ResultText(result)));
                any = true;
            }
        if (!any && message.Text.Length > 0) turns.Add(new ChatTurn(GlmChatRole.Observation, message.Text));
    }

    /// <summary>The assistant turn a model of <paramref name="format"/> writes to make <paramref name="call"/>.</summary>
    public static ChatTurn ToolCallTurn(FunctionCallContent call, IChatFormat format)
    {
        string json = ArgumentsJson(call);
        if (format is ChatGlm3ChatFormat)
            return new ChatTurn(GlmChatRole.Assistant, "```python\ntool_call(" + PythonKeywordArguments(json) + ")\n```", call.Name);
        return new ChatTurn(GlmChatRole.Assistant, json, call.Name);
    }

    /// <summary>The call's arguments as a JSON object text (the raw text when the call was parsed from GLM output).</summary>
    public static string ArgumentsJson(FunctionCallContent call)
    {
        if (call.RawRepresentation is ToolCall raw) return raw.ArgumentsJson;
        return PythonJson.Dumps(JsonSerializer.SerializeToElement(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions));
    }

    /// <summary>A function result as observation text: strings as they are, anything else as JSON.</summary>
    public static string ResultText(FunctionResultContent result) => result.Result switch
    {
        null when result.Exception is not null => $"Error: {result.Exception.Message}",
        null => "null",
        string s => s,
        JsonElement e => e.ValueKind == JsonValueKind.String ? e.GetString()! : PythonJson.Dumps(e),
        var other => PythonJson.Dumps(JsonSerializer.SerializeToElement(other, AIJsonUtilities.DefaultOptions)),
    };

    /// <summary><c>{"city": "北京", "n": 2}</c> → <c>city="北京", n=2</c> (Python literals: True/False/None).</summary>
    internal static string PythonKeywordArguments(string argumentsJson)
    {
        using var doc = JsonDocument.Parse(argumentsJson);
        return string.Join(", ", doc.RootElement.EnumerateObject().Select(p => p.Name + "=" + PythonLiteral(p.Value)));
    }

    private static string PythonLiteral(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => "True",
        JsonValueKind.False => "False",
        JsonValueKind.Null => "None",
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.String => JsonSerializer.Serialize(value.GetString(), UnescapedJson),
        JsonValueKind.Array => "[" + string.Join(", ", value.EnumerateArray().Select(PythonLiteral)) + "]",
        JsonValueKind.Object => "{" + string.Join(", ", value.EnumerateObject().Select(p =>
            JsonSerializer.Serialize(p.Name, UnescapedJson) + ": " + PythonLiteral(p.Value))) + "}",
        _ => throw new FormatException($"unexpected JSON value kind {value.ValueKind}"),
    };

    private static readonly JsonSerializerOptions UnescapedJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

}
