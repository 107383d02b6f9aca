namespace Glm.Connector;

/// <summary>Defaults applied by <see cref="GlmChatClient"/> and <see cref="GlmTextGenerationService"/> when a request leaves a setting unset.</summary>
public sealed record GlmChatClientOptions
{
    /// <summary>Tokens to generate when the request sets no maximum (default 512).</summary>
    public int DefaultMaxOutputTokens { get; init; } = 512;

    /// <summary>Largest maximum a request may ask for; larger requests are rejected (default 8192).</summary>
    public int MaxOutputTokensLimit { get; init; } = 8192;

    /// <summary>Temperature when unset (default 0.8, ChatGLM's <c>chat()</c> default; 0 = greedy).</summary>
    public float DefaultTemperature { get; init; } = 0.8f;

    /// <summary>Nucleus mass when unset (default 0.8, ChatGLM's <c>chat()</c> default).</summary>
    public float DefaultTopP { get; init; } = 0.8f;

    /// <summary>The model id reported when the token source's should be overridden.</summary>
    public string? ModelId { get; init; }
}
