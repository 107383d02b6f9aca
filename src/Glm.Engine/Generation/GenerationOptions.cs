namespace Glm.Engine.Generation;

/// <summary>How to continue a prompt. Defaults are greedy decoding of up to 256 tokens.</summary>
public sealed record GenerationOptions
{
    /// <summary>Maximum tokens to generate.</summary>
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Sampling temperature; 0 (or <see cref="Greedy"/>) means greedy decoding.</summary>
    public float Temperature { get; init; }
    /// <summary>Nucleus sampling mass in (0, 1]; 1 disables it.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Keep only the K most likely tokens; 0 disables it.</summary>
    public int TopK { get; init; }
    /// <summary>HF-style repetition penalty (&gt; 1 discourages tokens already present); 1 disables it.</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>Seed of the sampler, for reproducible sampling.</summary>
    public ulong? Seed { get; init; }
    /// <summary>Ids that end generation (not emitted). Null = the model's defaults (eos and chat stop tokens).</summary>
    public IReadOnlyCollection<int>? StopTokenIds { get; init; }
    /// <summary>Strings that end generation; the text is cut before the first one found.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Skip special tokens when turning ids into text.</summary>
    public bool SkipSpecialTokensInText { get; init; } = true;

    /// <summary>True when decoding is greedy.</summary>
    public bool Greedy => Temperature <= 0f;

    /// <summary>Throws <see cref="GlmException"/> naming the first out-of-range option.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new GlmException($"max new tokens = {MaxNewTokens}; expected 0 or more.");
        if (float.IsNaN(Temperature) || Temperature < 0) throw new GlmException($"temperature = {Temperature}; expected 0 or more.");
        if (float.IsNaN(TopP) || TopP <= 0 || TopP > 1) throw new GlmException($"top-p = {TopP}; expected a value in (0, 1].");
        if (TopK < 0) throw new GlmException($"top-k = {TopK}; expected 0 (off) or more.");
        if (float.IsNaN(RepetitionPenalty) || RepetitionPenalty <= 0) throw new GlmException($"repetition penalty = {RepetitionPenalty}; expected a positive number.");
        foreach (var s in StopStrings)
            if (string.IsNullOrEmpty(s)) throw new GlmException("a stop string is empty; expected non-empty strings.");
    }
}

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>Still running.</summary>
    None,
    /// <summary>A stop token or stop string was produced.</summary>
    Stop,
    /// <summary>The token limit (or the context size) was reached.</summary>
    Length,
    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>One streamed step: the new token, the text it completes (may be empty while a character is incomplete), and the end reason on the last step.</summary>
public sealed record GenerationChunk(int TokenId, string TextDelta, FinishReason Finish, int PromptTokens, int GeneratedTokens);
