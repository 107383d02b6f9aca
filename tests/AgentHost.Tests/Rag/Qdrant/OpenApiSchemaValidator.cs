using System.Text.Json;
using System.Text.RegularExpressions;

namespace AgentHost.Tests.Rag.Qdrant;

/// <summary>
/// Validates JSON against OpenAPI 3.0 schemas — the subset Qdrant's spec uses: $ref, type, properties, required, items,
/// anyOf/oneOf/allOf, enum, nullable, format, minimum, additionalProperties. With <c>closedObjects</c>, an object schema that lists
/// properties rejects unknown ones (catches misspelt field names, which plain JSON Schema would let through).
/// A schema whose only constraint is <c>nullable: true</c> (the spec's encoding of Option&lt;T&gt;) matches only null.
/// </summary>
internal sealed class OpenApiSchemaValidator(JsonElement document, bool closedObjects = true)
{
    private static readonly string[] Constraints =
        ["$ref", "type", "properties", "required", "items", "anyOf", "oneOf", "allOf", "enum", "format", "additionalProperties", "minimum"];

    public static OpenApiSchemaValidator Load(string path) => new(JsonDocument.Parse(File.ReadAllBytes(path)).RootElement);

    /// <summary>Schema of the JSON request body of an operation, found by concrete URL path (templates are matched).</summary>
    public JsonElement RequestBodySchema(string method, string urlPath)
    {
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            var pattern = "^" + Regex.Replace(Regex.Escape(path.Name), @"\\\{[^}]+}", "[^/]+") + "$";
            if (!Regex.IsMatch(urlPath, pattern)) continue;
            if (path.Value.TryGetProperty(method.ToLowerInvariant(), out var op))
                return op.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema");
        }
        throw new InvalidOperationException($"no {method} operation with a JSON body for {urlPath} in the OpenAPI document");
    }

    public List<string> ValidateRequestBody(string method, string urlPath, string json)
    {
        using var body = JsonDocument.Parse(json);
        return Validate(body.RootElement, RequestBodySchema(method, urlPath));
    }

    public List<string> Validate(JsonElement instance, JsonElement schema, string at = "$")
    {
        var errors = new List<string>();
        Check(instance, schema, at, errors, closedObjects);
        return errors;
    }

    private JsonElement Resolve(string reference)
    {
        if (!reference.StartsWith("#/")) throw new NotSupportedException($"external $ref {reference}");
        var node = document;
        foreach (var part in reference[2..].Split('/')) node = node.GetProperty(part.Replace("~1", "/").Replace("~0", "~"));
        return node;
    }

    private void Check(JsonElement value, JsonElement schema, string at, List<string> errors, bool closed)
    {
        if (schema.ValueKind == JsonValueKind.True) return;
        if (schema.ValueKind == JsonValueKind.False) { errors.Add($"{at}: no value allowed here"); return; }
        if (schema.TryGetProperty("$ref", out var r)) { Check(value, Resolve(r.GetString()!), at, errors, closed); return; }

        bool nullable = schema.TryGetProperty("nullable", out var n) && n.GetBoolean();
        if (value.ValueKind == JsonValueKind.Null)
        {
            if (nullable) return;
            if (schema.TryGetProperty("type", out _)) { errors.Add($"{at}: null is not allowed"); return; }
        }
        if (value.ValueKind != JsonValueKind.Null && nullable && !Constraints.Any(c => schema.TryGetProperty(c, out _))) { errors.Add($"{at}: expected null, got {value.ValueKind}"); return; }

        if (schema.TryGetProperty("type", out var type) && !HasType(value, type.GetString()!))
        {
            errors.Add($"{at}: expected {type.GetString()}, got {value.ValueKind} {Short(value)}");
            return;
        }
        if (schema.TryGetProperty("enum", out var e) && !e.EnumerateArray().Any(x => x.GetRawText() == value.GetRawText()))
            errors.Add($"{at}: {Short(value)} is not one of {e.GetRawText()}");
        if (schema.TryGetProperty("format", out var f)) CheckFormat(value, f.GetString()!, at, errors);
        if (schema.TryGetProperty("minimum", out var min) && value.ValueKind == JsonValueKind.Number && value.GetDouble() < min.GetDouble())
            errors.Add($"{at}: {value.GetDouble()} is below the minimum {min.GetDouble()}");

        bool hasAllOf = schema.TryGetProperty("allOf", out var allOf);
        if (value.ValueKind == JsonValueKind.Object) CheckObject(value, schema, at, errors, closed && !hasAllOf);
        if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items))
        {
            int i = 0;
            foreach (var item in value.EnumerateArray()) Check(item, items, $"{at}[{i++}]", errors, closedObjects);
        }
        if (hasAllOf)
            foreach (var sub in allOf.EnumerateArray()) Check(value, sub, at, errors, false);
        if (schema.TryGetProperty("anyOf", out var anyOf)) CheckAlternatives(value, anyOf, at, errors, exactlyOne: false);
        if (schema.TryGetProperty("oneOf", out var oneOf)) CheckAlternatives(value, oneOf, at, errors, exactlyOne: true);
    }

    private void CheckObject(JsonElement value, JsonElement schema, string at, List<string> errors, bool closed)
    {
        bool hasProperties = schema.TryGetProperty("properties", out var props);
        if (schema.TryGetProperty("required", out var required))
            foreach (var name in required.EnumerateArray())
                if (!value.TryGetProperty(name.GetString()!, out _)) errors.Add($"{at}: required property '{name.GetString()}' is missing");
        bool hasAdditional = schema.TryGetProperty("additionalProperties", out var additional);
        foreach (var property in value.EnumerateObject())
        {
            string path = $"{at}.{property.Name}";
            if (hasProperties && props.TryGetProperty(property.Name, out var propSchema)) Check(property.Value, propSchema, path, errors, closedObjects);
            else if (hasAdditional) Check(property.Value, additional, path, errors, closedObjects);
            else if (closed && hasProperties) errors.Add($"{path}: unknown property (schema allows {string.Join(", ", props.EnumerateObject().Select(p => p.Name))})");
        }
    }

    private void CheckAlternatives(JsonElement value, JsonElement alternatives, string at, List<string> errors, bool exactlyOne)
    {
        var failures = new List<string>();
        int matches = 0;
        foreach (var alternative in alternatives.EnumerateArray())
        {
            var branchErrors = new List<string>();
            Check(value, alternative, at, branchErrors, closedObjects);
            if (branchErrors.Count == 0) matches++;
            else failures.Add(string.Join("; ", branchErrors.Take(2)));
        }
        if (matches == 0) errors.Add($"{at}: matches no alternative of {(exactlyOne ? "oneOf" : "anyOf")} [{string.Join(" | ", failures)}]");
        else if (exactlyOne && matches > 1) errors.Add($"{at}: matches {matches} alternatives of oneOf, expected exactly one");
    }

    private static bool HasType(JsonElement v, string type) => type switch
    {
        "object" => v.ValueKind == JsonValueKind.Object,
        "array" => v.ValueKind == JsonValueKind.Array,
        "string" => v.ValueKind == JsonValueKind.String,
        "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "number" => v.ValueKind == JsonValueKind.Number,
        "integer" => v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var d) && decimal.Truncate(d) == d,
        _ => throw new NotSupportedException($"type {type}"),
    };

    private static void CheckFormat(JsonElement v, string format, string at, List<string> errors)
    {
        bool ok = format switch
        {
            "uint" or "uint8" or "uint16" or "uint32" or "uint64" => v.ValueKind != JsonValueKind.Number || (v.TryGetDecimal(out var d) && d >= 0 && d <= MaxOf(format)),
            "int32" => v.ValueKind != JsonValueKind.Number || v.TryGetInt32(out _),
            "int64" => v.ValueKind != JsonValueKind.Number || v.TryGetInt64(out _),
            "uuid" => v.ValueKind != JsonValueKind.String || Guid.TryParse(v.GetString(), out _),
            _ => true, // float, double, date-time and others: no extra constraint checked
        };
        if (!ok) errors.Add($"{at}: {Short(v)} does not match format {format}");
    }

    private static decimal MaxOf(string format) => format switch
    {
        "uint8" => byte.MaxValue, "uint16" => ushort.MaxValue, "uint32" => uint.MaxValue, _ => ulong.MaxValue,
    };

    private static string Short(JsonElement v) { var t = v.GetRawText(); return t.Length > 60 ? t[..60] + "…" : t; }
}
