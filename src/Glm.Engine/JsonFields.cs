using System.Text.Json;
using System.Text.Json.Nodes;

namespace Glm.Engine;

/// <summary>Typed access to JSON fields with errors that name the file, the field and the value.</summary>
internal sealed class JsonFields(JsonObject json, string source)
{
    public string Source => source;
    public JsonObject Json => json;
    public bool Has(string f) => json[f] is not null;

    private JsonValue Value(string f) => json[f] as JsonValue
        ?? throw new GlmException($"{source}: field '{f}' is missing or not a scalar; it is required here.");

    public int Int(string f)
    {
        var v = Value(f);
        if (v.TryGetValue<int>(out int i)) return i;
        if (v.TryGetValue<double>(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw new GlmException($"{source}: field '{f}' = {v.ToJsonString()}; expected an integer.");
    }

    public int IntOr(string f, int fallback) => Has(f) ? Int(f) : fallback;

    public double DoubleOr(string f, double fallback)
    {
        if (!Has(f)) return fallback;
        var v = Value(f);
        return v.TryGetValue<double>(out double d) ? d
            : throw new GlmException($"{source}: field '{f}' = {v.ToJsonString()}; expected a number.");
    }

    public bool BoolOr(string f, bool fallback)
    {
        if (!Has(f)) return fallback;
        var v = Value(f);
        return v.TryGetValue<bool>(out bool b) ? b
            : throw new GlmException($"{source}: field '{f}' = {v.ToJsonString()}; expected true or false.");
    }

    /// <summary>A boolean that may also be JSON null (returned as null), e.g. tokenizer_config's strip_accents.</summary>
    public bool? NullableBool(string f)
    {
        if (!json.ContainsKey(f) || json[f] is null) return null;
        return BoolOr(f, false);
    }

    public string Str(string f)
    {
        var v = Value(f);
        return v.TryGetValue<string>(out var s) ? s
            : throw new GlmException($"{source}: field '{f}' = {v.ToJsonString()}; expected a string.");
    }

    public string StrOr(string f, string fallback) => Has(f) ? Str(f) : fallback;

    public int? IntOrNull(string f) => Has(f) ? Int(f) : null;

    /// <summary>An integer or a list of integers (e.g. eos_token_id); empty when absent.</summary>
    public IReadOnlyList<int> IntList(string f)
    {
        var node = json[f];
        if (node is null) return Array.Empty<int>();
        if (node is JsonArray arr)
            return arr.Select((n, i) => n is JsonValue v && v.TryGetValue<int>(out int x)
                ? x : throw new GlmException($"{source}: field '{f}'[{i}] is not an integer.")).ToArray();
        return new[] { Int(f) };
    }

    /// <summary>Reads a required JSON object file; a missing file is an error that ends with <paramref name="whenMissing"/>.</summary>
    public static JsonFields Load(string path, string whenMissing) =>
        TryLoad(path) ?? throw new GlmException($"{path}: not found. {whenMissing}");

    /// <summary>Reads a JSON object file, or returns null when it does not exist.</summary>
    public static JsonFields? TryLoad(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                       ?? throw new GlmException($"{path}: expected a JSON object at the top level.");
            return new JsonFields(node, path);
        }
        catch (JsonException ex)
        {
            throw new GlmException($"{path}: malformed JSON ({ex.Message}).", ex);
        }
    }
}
