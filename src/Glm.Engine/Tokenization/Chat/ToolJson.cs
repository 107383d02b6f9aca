using System.Text;
using System.Text.Json;

namespace Glm.Engine.Tokenization;

/// <summary>Renders tool definitions as the Python-style JSON that GLM prompts embed.</summary>
internal static class ToolJson
{
    /// <summary>The function object <c>{"name", "description", "parameters"}</c> (description omitted when null).</summary>
    public static string Function(ToolDefinition tool, int? indent)
    {
        using var doc = JsonDocument.Parse(FunctionJson(tool));
        return PythonJson.Dumps(doc.RootElement, indent);
    }

    /// <summary>A JSON list of function objects.</summary>
    public static string ToolList(IReadOnlyList<ToolDefinition> tools, int? indent)
    {
        string list = "[" + string.Join(",", tools.Select(FunctionJson)) + "]";
        using var doc = JsonDocument.Parse(list);
        return PythonJson.Dumps(doc.RootElement, indent);
    }

    private static string FunctionJson(ToolDefinition tool)
    {
        try
        {
            using var schema = JsonDocument.Parse(tool.ParametersSchema);
            if (schema.RootElement.ValueKind != JsonValueKind.Object)
                throw new GlmException($"Tool '{tool.Name}': parameters schema is a JSON {schema.RootElement.ValueKind}, expected a JSON object.");
        }
        catch (JsonException e)
        {
            throw new GlmException($"Tool '{tool.Name}': parameters schema is not valid JSON ({e.Message}); expected a JSON Schema object.", e);
        }
        var sb = new StringBuilder("{\"name\":");
        sb.Append(JsonSerializer.Serialize(tool.Name));
        if (tool.Description is not null) sb.Append(",\"description\":").Append(JsonSerializer.Serialize(tool.Description));
        sb.Append(",\"parameters\":").Append(tool.ParametersSchema).Append('}');
        return sb.ToString();
    }
}
