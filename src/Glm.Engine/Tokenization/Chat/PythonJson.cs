using System.Text;
using System.Text.Json;

namespace Glm.Engine.Tokenization;

/// <summary>
/// Writes JSON the way Python's <c>json.dumps(obj, ensure_ascii=False, indent=…)</c> does, because GLM prompts embed
/// that exact text: separators <c>", "</c>/<c>": "</c> (or newline + indent), non-ASCII kept, control characters escaped.
/// Numbers keep their source text (Python would print floats via <c>repr</c>, e.g. <c>1e5</c> as <c>100000.0</c>).
/// </summary>
public static class PythonJson
{
    /// <summary>Python's <c>json.dumps</c> text of <paramref name="value"/>; <paramref name="indent"/> null = one line.</summary>
    public static string Dumps(JsonElement value, int? indent = null)
    {
        var sb = new StringBuilder();
        Write(sb, value, indent, 0);
        return sb.ToString();
    }

    /// <summary>Parses JSON text and re-dumps it; throws <see cref="JsonException"/> when the text is not JSON.</summary>
    public static string Dumps(string json, int? indent = null)
    {
        using var doc = JsonDocument.Parse(json);
        return Dumps(doc.RootElement, indent);
    }

    /// <summary>Appends <paramref name="s"/> as a Python-style JSON string literal.</summary>
    public static void WriteString(StringBuilder sb, string s)
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

    private static void Write(StringBuilder sb, JsonElement value, int? indent, int level)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                WriteContainer(sb, '{', '}', value.EnumerateObject().Select(p => ((string?)p.Name, (JsonElement?)p.Value)).ToList(), indent, level);
                break;
            case JsonValueKind.Array:
                WriteContainer(sb, '[', ']', value.EnumerateArray().Select(v => ((string?)null, (JsonElement?)v)).ToList(), indent, level);
                break;
            case JsonValueKind.String: WriteString(sb, value.GetString()!); break;
            case JsonValueKind.True: sb.Append("true"); break;
            case JsonValueKind.False: sb.Append("false"); break;
            case JsonValueKind.Null: sb.Append("null"); break;
            default: sb.Append(value.GetRawText()); break;
        }
    }

    private static void WriteContainer(StringBuilder sb, char open, char close, List<(string? Key, JsonElement? Value)> items, int? indent, int level)
    {
        sb.Append(open);
        if (items.Count == 0)
        {
            sb.Append(close);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            if (indent is int n) sb.Append('\n').Append(' ', n * (level + 1));
            if (items[i].Key is string key)
            {
                WriteString(sb, key);
                sb.Append(": ");
            }
            Write(sb, items[i].Value!.Value, indent, level + 1);
            if (i + 1 < items.Count) sb.Append(indent is null ? ", " : ",");
        }
        if (indent is int m) sb.Append('\n').Append(' ', m * level);
        sb.Append(close);
    }
}
