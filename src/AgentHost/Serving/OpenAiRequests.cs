using System.Text.Json;
using Microsoft.Extensions.AI;

namespace AgentHost.Serving;

/// <summary>A validated <c>/v1/chat/completions</c> request.</summary>
public sealed record ChatCompletionRequest(string Model, List<ChatMessage> Messages, ChatOptions Options, bool Stream, bool IncludeUsage);

/// <summary>A validated <c>/v1/completions</c> request.</summary>
public sealed record CompletionRequest(string Model, string Prompt, Glm.Connector.GlmPromptExecutionSettings Settings, bool Stream, bool IncludeUsage, bool Echo);

/// <summary>A validated <c>/v1/embeddings</c> request.</summary>
public sealed record EmbeddingRequest(string Model, List<string> Inputs, bool Base64);

/// <summary>Reads OpenAI request bodies into typed requests; every bad field is an <see cref="OpenAiError"/> naming it.</summary>
public static class OpenAiRequests
{
    /// <summary>Parses a JSON object body (400 <c>invalid_json</c> otherwise).</summary>
    public static JsonElement ParseBody(byte[] body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new OpenAiError(400, $"The request body must be a JSON object, not {doc.RootElement.ValueKind}.", code: "invalid_json");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new OpenAiError(400, $"The request body is not valid JSON: {e.Message}", code: "invalid_json");
        }
    }

    /// <summary>Reads a chat request, checking <c>model</c> against <paramref name="modelId"/> and limits from <paramref name="options"/>.</summary>
    public static ChatCompletionRequest ReadChat(JsonElement root, string modelId, GlmServerOptions options)
    {
        string model = RequireModel(root, modelId);
        if (!root.TryGetProperty("messages", out var messagesElement) || messagesElement.ValueKind != JsonValueKind.Array || messagesElement.GetArrayLength() == 0)
            throw OpenAiError.BadField("messages", "'messages' must be a non-empty array.", "missing_required_parameter");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var m in messagesElement.EnumerateArray()) messages.Add(ReadMessage(m, $"messages[{i++}]"));

        var chat = new ChatOptions
        {
            ModelId = model,
            MaxOutputTokens = MaxTokens(root, options),
            Temperature = OptionalFloat(root, "temperature", 0, 2),
            TopP = OptionalFloat(root, "top_p", float.Epsilon, 1),
            TopK = OptionalInt(root, "top_k", 0, int.MaxValue),
            Seed = root.TryGetProperty("seed", out var seed) && seed.ValueKind != JsonValueKind.Null
                ? (seed.TryGetInt64(out long s) ? s : throw OpenAiError.BadField("seed", "'seed' must be an integer.")) : null,
            StopSequences = Stops(root),
        };
        if (OptionalFloat(root, "repetition_penalty", float.Epsilon, 10) is float penalty)
            (chat.AdditionalProperties ??= new())["repetition_penalty"] = penalty;
        _ = OptionalInt(root, "n", 1, 1); // one choice per request
        ReadTools(root, chat);
        var (stream, includeUsage) = StreamFlags(root);
        return new ChatCompletionRequest(model, messages, chat, stream, includeUsage);
    }

    /// <summary>Reads a legacy completions request.</summary>
    public static CompletionRequest ReadCompletion(JsonElement root, string modelId, GlmServerOptions options)
    {
        string model = RequireModel(root, modelId);
        if (!root.TryGetProperty("prompt", out var promptElement))
            throw OpenAiError.BadField("prompt", "'prompt' is required.", "missing_required_parameter");
        string prompt = promptElement.ValueKind switch
        {
            JsonValueKind.String => promptElement.GetString()!,
            JsonValueKind.Array when promptElement.GetArrayLength() == 1 && promptElement[0].ValueKind == JsonValueKind.String => promptElement[0].GetString()!,
            _ => throw OpenAiError.BadField("prompt", "'prompt' must be a string (or an array of one string)."),
        };
        if (prompt.Length == 0) throw OpenAiError.BadField("prompt", "'prompt' is empty.");
        var settings = new Glm.Connector.GlmPromptExecutionSettings
        {
            MaxTokens = MaxTokens(root, options),
            Temperature = OptionalFloat(root, "temperature", 0, 2),
            TopP = OptionalFloat(root, "top_p", float.Epsilon, 1),
            TopK = OptionalInt(root, "top_k", 0, int.MaxValue),
            RepetitionPenalty = OptionalFloat(root, "repetition_penalty", float.Epsilon, 10),
            StopSequences = Stops(root),
        };
        var (stream, includeUsage) = StreamFlags(root);
        bool echo = root.TryGetProperty("echo", out var e) && e.ValueKind == JsonValueKind.True;
        return new CompletionRequest(model, prompt, settings, stream, includeUsage, echo);
    }

    /// <summary>Reads an embeddings request (<c>input</c>: a string or an array of strings).</summary>
    public static EmbeddingRequest ReadEmbedding(JsonElement root, string modelId, GlmServerOptions options)
    {
        string model = RequireModel(root, modelId);
        if (!root.TryGetProperty("input", out var input)) throw OpenAiError.BadField("input", "'input' is required.", "missing_required_parameter");
        var inputs = input.ValueKind switch
        {
            JsonValueKind.String => [input.GetString()!],
            JsonValueKind.Array => input.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()!
                : throw OpenAiError.BadField("input", "'input' must be a string or an array of strings (token arrays are not supported).")).ToList(),
            _ => throw OpenAiError.BadField("input", "'input' must be a string or an array of strings."),
        };
        if (inputs.Count == 0 || inputs.Any(string.IsNullOrEmpty)) throw OpenAiError.BadField("input", "'input' must not be empty or contain empty strings.");
        if (inputs.Count > options.MaxEmbeddingInputs)
            throw OpenAiError.BadField("input", $"'input' has {inputs.Count} items; at most {options.MaxEmbeddingInputs} are allowed.");
        string format = root.TryGetProperty("encoding_format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : "float";
        if (format is not ("float" or "base64")) throw OpenAiError.BadField("encoding_format", $"'encoding_format' '{format}' is not supported; expected float or base64.");
        if (root.TryGetProperty("dimensions", out var d) && d.ValueKind != JsonValueKind.Null)
            throw OpenAiError.BadField("dimensions", "'dimensions' is not supported: this model's embeddings have a fixed size.");
        return new EmbeddingRequest(model, inputs, format == "base64");
    }

    private static string RequireModel(JsonElement root, string modelId)
    {
        if (!root.TryGetProperty("model", out var m) || m.ValueKind != JsonValueKind.String || m.GetString()!.Length == 0)
            throw OpenAiError.BadField("model", "'model' is required (a string).", "missing_required_parameter");
        string model = m.GetString()!;
        if (model != modelId)
            throw new OpenAiError(404, $"The model '{model}' does not exist; this server serves '{modelId}'.", param: "model", code: "model_not_found");
        return model;
    }

    private static ChatMessage ReadMessage(JsonElement m, string path)
    {
        if (m.ValueKind != JsonValueKind.Object) throw OpenAiError.BadField(path, $"'{path}' must be an object.");
        string role = m.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
            : throw OpenAiError.BadField($"{path}.role", $"'{path}.role' is required.");
        string text = ContentText(m, path);
        switch (role)
        {
            case "system": return new ChatMessage(ChatRole.System, text);
            case "developer": return new ChatMessage(new ChatRole("developer"), text);
            case "user": return new ChatMessage(ChatRole.User, text);
            case "assistant":
                var contents = new List<AIContent>();
                if (text.Length > 0) contents.Add(new TextContent(text));
                if (m.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
                {
                    int i = 0;
                    foreach (var call in calls.EnumerateArray()) contents.Add(ReadToolCall(call, $"{path}.tool_calls[{i++}]"));
                }
                return new ChatMessage(ChatRole.Assistant, contents);
            case "tool":
                string callId = m.TryGetProperty("tool_call_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()!
                    : throw OpenAiError.BadField($"{path}.tool_call_id", $"'{path}.tool_call_id' is required for tool messages.");
                return new ChatMessage(ChatRole.Tool, [new FunctionResultContent(callId, text)]);
            default:
                throw OpenAiError.BadField($"{path}.role", $"'{path}.role' '{role}' is not supported; expected system, developer, user, assistant or tool.");
        }
    }

    private static string ContentText(JsonElement m, string path)
    {
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null) return "";
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw OpenAiError.BadField($"{path}.content", $"'{path}.content' must be a string or an array of text parts.");
        return string.Concat(c.EnumerateArray().Select(part =>
            part.TryGetProperty("type", out var t) && t.GetString() == "text" && part.TryGetProperty("text", out var x) && x.ValueKind == JsonValueKind.String
                ? x.GetString()
                : throw OpenAiError.BadField($"{path}.content", $"'{path}.content' parts must be text parts; this model reads text only.")));
    }

    private static FunctionCallContent ReadToolCall(JsonElement call, string path)
    {
        if (!call.TryGetProperty("function", out var f) || !f.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            throw OpenAiError.BadField($"{path}.function.name", $"'{path}.function.name' is required.");
        string id = call.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : Glm.Connector.GlmChatClient.NewCallId();
        string arguments = f.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : "{}";
        Dictionary<string, object?> args;
        try
        {
            using var doc = JsonDocument.Parse(arguments.Length == 0 ? "{}" : arguments);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
            args = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        }
        catch (JsonException e)
        {
            throw OpenAiError.BadField($"{path}.function.arguments", $"'{path}.function.arguments' must be a JSON object text: {e.Message}");
        }
        return new FunctionCallContent(id, name.GetString()!, args);
    }

    private static void ReadTools(JsonElement root, ChatOptions chat)
    {
        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            chat.Tools = new List<AITool>();
            int i = 0;
            foreach (var tool in tools.EnumerateArray())
            {
                string path = $"tools[{i++}]";
                if (!tool.TryGetProperty("function", out var f) || !f.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String || n.GetString()!.Length == 0)
                    throw OpenAiError.BadField($"{path}.function.name", $"'{path}.function.name' is required.");
                string? description = f.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                var schema = f.TryGetProperty("parameters", out var p) && p.ValueKind == JsonValueKind.Object
                    ? p.Clone() : JsonSerializer.SerializeToElement(new { type = "object", properties = new { } });
                chat.Tools.Add(AIFunctionFactory.CreateDeclaration(n.GetString()!, description!, schema));
            }
        }
        if (!root.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null) return;
        chat.ToolMode = choice.ValueKind switch
        {
            JsonValueKind.String => choice.GetString() switch
            {
                "none" => ChatToolMode.None,
                "auto" => ChatToolMode.Auto,
                "required" => ChatToolMode.RequireAny,
                var other => throw OpenAiError.BadField("tool_choice", $"'tool_choice' '{other}' is not supported; expected none, auto, required or a function."),
            },
            JsonValueKind.Object when choice.TryGetProperty("function", out var f) && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
                => ChatToolMode.RequireSpecific(n.GetString()!),
            _ => throw OpenAiError.BadField("tool_choice", "'tool_choice' must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}."),
        };
    }

    private static int MaxTokens(JsonElement root, GlmServerOptions options)
    {
        foreach (var name in new[] { "max_completion_tokens", "max_tokens" })
            if (root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
            {
                if (!v.TryGetInt32(out int n)) throw OpenAiError.BadField(name, $"'{name}' must be an integer.");
                if (n < 1) throw OpenAiError.BadField(name, $"'{name}' = {n}; expected at least 1.");
                if (n > options.MaxTokensLimit) throw OpenAiError.BadField(name, $"'{name}' = {n} exceeds this server's limit of {options.MaxTokensLimit}.");
                return n;
            }
        return options.DefaultMaxTokens;
    }

    private static float? OptionalFloat(JsonElement root, string name, float min, float max)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw OpenAiError.BadField(name, $"'{name}' must be a number.");
        double d = v.GetDouble();
        if (d < min || d > max) throw OpenAiError.BadField(name, $"'{name}' = {d}; expected a value in [{min}, {max}].");
        return (float)d;
    }

    private static int? OptionalInt(JsonElement root, string name, int min, int max)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (!v.TryGetInt32(out int n)) throw OpenAiError.BadField(name, $"'{name}' must be an integer.");
        if (n < min || n > max) throw OpenAiError.BadField(name, $"'{name}' = {n}; expected {min}..{max}.");
        return n;
    }

    private static List<string>? Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var s) || s.ValueKind == JsonValueKind.Null) return null;
        var list = s.ValueKind switch
        {
            JsonValueKind.String => [s.GetString()!],
            JsonValueKind.Array => s.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw OpenAiError.BadField("stop", "'stop' items must be strings.")).ToList(),
            _ => throw OpenAiError.BadField("stop", "'stop' must be a string or an array of strings."),
        };
        if (list.Count > 4 || list.Any(string.IsNullOrEmpty)) throw OpenAiError.BadField("stop", "'stop' takes up to 4 non-empty strings.");
        return list;
    }

    private static (bool Stream, bool IncludeUsage) StreamFlags(JsonElement root)
    {
        bool stream = root.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        bool usage = root.TryGetProperty("stream_options", out var o) && o.ValueKind == JsonValueKind.Object
            && o.TryGetProperty("include_usage", out var u) && u.ValueKind == JsonValueKind.True;
        return (stream, usage);
    }
}
