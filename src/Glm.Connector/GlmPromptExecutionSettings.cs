using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.SemanticKernel;

namespace Glm.Connector;

/// <summary>
/// GLM prompt execution settings. The snake_case names are those SK maps onto <c>ChatOptions</c> (temperature, top_p, top_k,
/// max_tokens, stop_sequences, seed); <c>repetition_penalty</c> travels in <c>ChatOptions.AdditionalProperties</c>.
/// </summary>
public sealed class GlmPromptExecutionSettings : PromptExecutionSettings
{
    private double? _temperature, _topP, _repetitionPenalty;
    private int? _topK, _maxTokens;
    private long? _seed;
    private IList<string>? _stopSequences;

    /// <summary>Sampling temperature; 0 = greedy.</summary>
    [JsonPropertyName("temperature")]
    public double? Temperature { get => _temperature; set { ThrowIfFrozen(); _temperature = value; } }

    /// <summary>Nucleus sampling mass in (0, 1].</summary>
    [JsonPropertyName("top_p")]
    public double? TopP { get => _topP; set { ThrowIfFrozen(); _topP = value; } }

    /// <summary>Keep only the K most likely tokens; 0 = off.</summary>
    [JsonPropertyName("top_k")]
    public int? TopK { get => _topK; set { ThrowIfFrozen(); _topK = value; } }

    /// <summary>Maximum tokens to generate.</summary>
    [JsonPropertyName("max_tokens")]
    public int? MaxTokens { get => _maxTokens; set { ThrowIfFrozen(); _maxTokens = value; } }

    /// <summary>Strings that end generation (cut before the first one found).</summary>
    [JsonPropertyName("stop_sequences")]
    public IList<string>? StopSequences { get => _stopSequences; set { ThrowIfFrozen(); _stopSequences = value; } }

    /// <summary>Seed of the sampler.</summary>
    [JsonPropertyName("seed")]
    public long? Seed { get => _seed; set { ThrowIfFrozen(); _seed = value; } }

    /// <summary>HF-style repetition penalty (&gt; 1 discourages repeats; 1 = off).</summary>
    [JsonPropertyName("repetition_penalty")]
    public double? RepetitionPenalty { get => _repetitionPenalty; set { ThrowIfFrozen(); _repetitionPenalty = value; } }

    /// <summary>Converts any settings object (null → defaults) by its JSON form, as SK's connectors do.</summary>
    public static GlmPromptExecutionSettings FromExecutionSettings(PromptExecutionSettings? settings)
    {
        switch (settings)
        {
            case null: return new GlmPromptExecutionSettings();
            case GlmPromptExecutionSettings glm: return glm;
        }
        var json = JsonSerializer.Serialize(settings);
        var result = JsonSerializer.Deserialize<GlmPromptExecutionSettings>(json)
            ?? throw new ArgumentException("The execution settings could not be read as GLM settings.", nameof(settings));
        result.FunctionChoiceBehavior = settings.FunctionChoiceBehavior;
        return result;
    }

    /// <inheritdoc />
    public override PromptExecutionSettings Clone() => new GlmPromptExecutionSettings
    {
        ServiceId = ServiceId,
        ModelId = ModelId,
        FunctionChoiceBehavior = FunctionChoiceBehavior,
        ExtensionData = ExtensionData is null ? null : new Dictionary<string, object>(ExtensionData),
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        MaxTokens = MaxTokens,
        StopSequences = StopSequences is null ? null : new List<string>(StopSequences),
        Seed = Seed,
        RepetitionPenalty = RepetitionPenalty,
    };

    /// <inheritdoc />
    public override void Freeze()
    {
        if (IsFrozen) return;
        if (_stopSequences is not null) _stopSequences = _stopSequences.ToList().AsReadOnly();
        base.Freeze();
    }
}
