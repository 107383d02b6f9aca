using System.Text;
using System.Text.Json;

namespace Glm.Connector;

/// <summary>
/// JSON text as Python's <c>json.dumps(value, ensure_ascii=False)</c> writes it (<c>", "</c> and <c>": "</c> separators,
/// non-ASCII kept): the form GLM models saw for tool arguments and observations in training.
/// </summary>
internal static class PythonStyleJson
{
    public static string Dumps(JsonElement value)
    {
        var sb = new StringBuilder();
        Write(sb, value);
        return sb.ToString();
    }

    public static string Serialize(object? value) =>
        Dumps(JsonSerializer.SerializeToElement(value, Microsoft.Extensions.AI.AIJsonUtilities.DefaultOptions));

    private static void Write(StringBuilder sb, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                bool first = true;
                foreach (var p in value.EnumerateObject())
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    WriteString(sb, p.Name);
                    sb.Append(": ");
                    Write(sb, p.Value);
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                bool firstItem = true;
                foreach (var item in value.EnumerateArray())
                {
                    if (!firstItem) sb.Append(", ");
                    firstItem = false;
                    Write(sb, item);
                }
                sb.Append(']');
                break;
            case JsonValueKind.String: WriteString(sb, value.GetString()!); break;
            default: sb.Append(value.GetRawText()); break;
        }
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
