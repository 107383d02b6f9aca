using System.Globalization;
using System.Text.Json;
using Glm.Engine.Generation;
using Microsoft.Extensions.AI;

namespace Glm.Connector;

/// <summary>Turns M.E.AI <see cref="ChatOptions"/> into engine <see cref="GenerationOptions"/>, validating every value.</summary>
internal static class GlmGenerationOptionsMapper
{
    /// <summary>Keys of <see cref="ChatOptions.AdditionalProperties"/> read as the repetition penalty (SK passes snake_case, camelCase without attribute).</summary>
    public static readonly string[] RepetitionPenaltyKeys = ["repetition_penalty", "repetitionPenalty"];

    public static GenerationOptions Map(ChatOptions? options, GlmChatClientOptions defaults, IEnumerable<int> stopIds, bool keepSpecialTokens)
    {
        int maxTokens = options?.MaxOutputTokens ?? defaults.DefaultMaxOutputTokens;
        if (maxTokens < 1)
            throw new ArgumentException($"MaxOutputTokens = {maxTokens}; expected 1 or more.", nameof(options));
        if (maxTokens > defaults.MaxOutputTokensLimit)
            throw new ArgumentException($"MaxOutputTokens = {maxTokens} exceeds the limit of {defaults.MaxOutputTokensLimit}.", nameof(options));

        float temperature = options?.Temperature ?? defaults.DefaultTemperature;
        if (float.IsNaN(temperature) || temperature < 0 || temperature > 100)
            throw new ArgumentException($"Temperature = {temperature}; expected a value in [0, 100].", nameof(options));
        float topP = options?.TopP ?? defaults.DefaultTopP;
        if (float.IsNaN(topP) || topP <= 0 || topP > 1)
            throw new ArgumentException($"TopP = {topP}; expected a value in (0, 1].", nameof(options));
        int topK = options?.TopK ?? 0;
        if (topK < 0) throw new ArgumentException($"TopK = {topK}; expected 0 (off) or more.", nameof(options));
        ulong? seed = options?.Seed is long s ? unchecked((ulong)s) : null;

        float repetition = 1f;
        if (options?.AdditionalProperties is { } extra)
            foreach (var key in RepetitionPenaltyKeys)
                if (extra.TryGetValue(key, out var value) && value is not null)
                {
                    repetition = ToFloat(value, key);
                    if (float.IsNaN(repetition) || repetition <= 0)
                        throw new ArgumentException($"{key} = {repetition}; expected a positive number (1 = off).", nameof(options));
                }

        var stops = options?.StopSequences?.ToArray() ?? [];
        foreach (var stop in stops)
            if (string.IsNullOrEmpty(stop)) throw new ArgumentException("A stop sequence is empty; expected non-empty strings.", nameof(options));

        return new GenerationOptions
        {
            MaxNewTokens = maxTokens,
            Temperature = temperature,
            TopP = topP,
            TopK = topK,
            RepetitionPenalty = repetition,
            Seed = seed,
            StopTokenIds = new HashSet<int>(stopIds),
            StopStrings = stops,
            SkipSpecialTokensInText = !keepSpecialTokens,
        };
    }

    private static float ToFloat(object value, string key) => value switch
    {
        float f => f,
        double d => (float)d,
        decimal m => (float)m,
        int i => i,
        long l => l,
        JsonElement { ValueKind: JsonValueKind.Number } e => (float)e.GetDouble(),
        string text when float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
        JsonElement { ValueKind: JsonValueKind.String } e when float.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
        _ => throw new ArgumentException($"{key} = '{value}' is not a number."),
    };
}
