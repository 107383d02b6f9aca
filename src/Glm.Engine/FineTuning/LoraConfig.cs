using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Glm.Engine.FineTuning;

/// <summary>
/// LoRA hyper-parameters, PEFT-compatible. <see cref="TargetModules"/> is either a list of module names separated by
/// <c>|</c> or <c>,</c> (plain identifiers such as <c>query_key_value|dense</c>: a module matches when its path equals a
/// name or ends with <c>.name</c>, PEFT's list rule) or a regular expression that must match the whole module path (PEFT's
/// string rule), e.g. <c>.*layers\.[01]\..*query_key_value</c>. Module paths are the checkpoint's own names: THUDM names
/// for THUDM/original-GLM layouts, transformers names for HF layouts.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>Rank r of the update B·A.</summary>
    public int Rank { get; init; } = 8;
    /// <summary>Scaling numerator: the update is multiplied by Alpha / Rank.</summary>
    public double Alpha { get; init; } = 16;
    /// <summary>Dropout probability applied to the adapter's input while training.</summary>
    public double Dropout { get; init; }
    /// <summary>Which linear modules get adapters (name list or full-match regex, see the type remarks).</summary>
    public string TargetModules { get; init; } = "query_key_value";
    /// <summary>Recorded as <c>base_model_name_or_path</c> in adapter_config.json.</summary>
    public string? BaseModel { get; init; }

    /// <summary>Alpha / Rank.</summary>
    public double Scaling => Alpha / Rank;

    private static readonly Regex NameList = new(@"^[A-Za-z0-9_.]+([|,][A-Za-z0-9_.]+)*$", RegexOptions.CultureInvariant);

    /// <summary>True when <see cref="TargetModules"/> is a list of names rather than a regular expression.</summary>
    public bool IsNameList => NameList.IsMatch(TargetModules);

    /// <summary>The listed names (only meaningful when <see cref="IsNameList"/>).</summary>
    public IReadOnlyList<string> TargetNames => TargetModules.Split('|', ',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Checks ranges; throws <see cref="GlmException"/> naming the field and value.</summary>
    public void Validate(string where = "LoRA config")
    {
        if (Rank < 1) throw new GlmException($"{where}: r = {Rank}; expected a rank ≥ 1.");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new GlmException($"{where}: lora_alpha = {Alpha}; expected a positive number.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new GlmException($"{where}: lora_dropout = {Dropout}; expected 0 ≤ p < 1.");
        if (string.IsNullOrWhiteSpace(TargetModules)) throw new GlmException($"{where}: target_modules is empty; expected module names such as query_key_value.");
        if (!IsNameList)
        {
            try { _ = new Regex(TargetModules); }
            catch (ArgumentException ex) { throw new GlmException($"{where}: target_modules '{TargetModules}' is not a valid regular expression ({ex.Message}).", ex); }
        }
    }

    /// <summary>Whether the module at <paramref name="path"/> is targeted.</summary>
    public bool Matches(string path)
    {
        if (IsNameList) return TargetNames.Any(n => path == n || path.EndsWith("." + n, StringComparison.Ordinal));
        return Regex.IsMatch(path, "^(?:" + TargetModules + ")$", RegexOptions.CultureInvariant);
    }

    /// <summary>The PEFT <c>adapter_config.json</c> text.</summary>
    public string ToPeftJson()
    {
        var o = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = BaseModel,
            ["r"] = Rank,
            ["lora_alpha"] = Alpha,
            ["lora_dropout"] = Dropout,
            ["target_modules"] = IsNameList ? new JsonArray(TargetNames.Select(n => (JsonNode)n!).ToArray()) : TargetModules,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads a PEFT <c>adapter_config.json</c>; errors name the file and field.</summary>
    public static LoraConfig LoadPeft(string path)
    {
        if (!File.Exists(path)) throw new GlmException($"{path}: adapter config not found; expected a PEFT adapter folder with adapter_config.json.");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new GlmException($"{path}: expected a JSON object."); }
        catch (JsonException ex) { throw new GlmException($"{path}: malformed JSON ({ex.Message}).", ex); }
        string peftType = Str(o, "peft_type", path) ?? "";
        if (!peftType.Equals("LORA", StringComparison.OrdinalIgnoreCase))
            throw new GlmException($"{path}: peft_type '{peftType}'; expected LORA.");
        if (o["fan_in_fan_out"]?.GetValue<bool>() == true)
            throw new GlmException($"{path}: fan_in_fan_out = true; expected false (GLM linear layers store weights [out, in]).");
        string bias = Str(o, "bias", path) ?? "none";
        if (bias != "none") throw new GlmException($"{path}: bias '{bias}'; only \"none\" is supported.");
        string targets = o["target_modules"] switch
        {
            JsonArray a => string.Join("|", a.Select(n => n?.GetValue<string>() ?? "")),
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => throw new GlmException($"{path}: target_modules missing or not a list/string."),
        };
        var cfg = new LoraConfig
        {
            Rank = Num(o, "r", path) is double r && r == Math.Floor(r) ? (int)r : throw new GlmException($"{path}: r = {o["r"]}; expected an integer."),
            Alpha = Num(o, "lora_alpha", path) ?? throw new GlmException($"{path}: lora_alpha missing; expected a number."),
            Dropout = Num(o, "lora_dropout", path) ?? 0,
            TargetModules = targets,
            BaseModel = Str(o, "base_model_name_or_path", path),
        };
        cfg.Validate(path);
        return cfg;
    }

    private static string? Str(JsonObject o, string field, string path) => o[field] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var other => throw new GlmException($"{path}: {field} = {other.ToJsonString()}; expected a string."),
    };

    private static double? Num(JsonObject o, string field, string path) => o[field] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        var other => throw new GlmException($"{path}: {field} = {other.ToJsonString()}; expected a number."),
    };
}
