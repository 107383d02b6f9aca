namespace Glm.Engine.Tokenization.Training;

/// <summary>Settings of <see cref="BpeTokenizerTrainer"/>.</summary>
public sealed record BpeTrainingOptions
{
    /// <summary>GLM-4 / cl100k pre-tokenizer: runs of letters (a Chinese clause) form one word, so merges build
    /// characters first (3 UTF-8 bytes each) and then frequent multi-character words.</summary>
    public const string Glm4Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Total vocabulary size, special tokens included (ranks = VocabSize − special count).</summary>
    public int VocabSize { get; init; } = 16000;
    /// <summary>Merging stops early when the most frequent pair occurs fewer times than this.</summary>
    public int MinPairFrequency { get; init; } = 2;
    /// <summary>Pre-tokenizer regex, stored with the vocabulary.</summary>
    public string Pattern { get; init; } = Glm4Pattern;
    /// <summary>
    /// Share of each file held out by <see cref="Glm.Engine.Training.Data.CorpusSplit"/>'s rule before training
    /// (<see cref="BpeTokenizerTrainer.TrainFromFiles"/> only); 0 trains on everything.
    /// </summary>
    public double HoldOutFraction { get; init; } = 0.02;
    /// <summary>Parent folder names of hard-wrapped files whose paragraph lines are joined (as CorpusSplit does).</summary>
    public IReadOnlyCollection<string> HardWrappedFolders { get; init; } = ["luxun"];
    /// <summary>Upper bound on training characters (0 = no bound); larger inputs are thinned by whole lines, evenly.</summary>
    public long MaxTrainingChars { get; init; }

    internal void Validate(int specialCount)
    {
        if (VocabSize < 256 + specialCount)
            throw new GlmException($"BpeTrainingOptions.VocabSize = {VocabSize} is too small: expected at least {256 + specialCount} (256 byte tokens + {specialCount} special tokens).");
        if (MinPairFrequency < 1)
            throw new GlmException($"BpeTrainingOptions.MinPairFrequency = {MinPairFrequency} is invalid: expected ≥ 1.");
        if (HoldOutFraction is < 0 or > 0.5)
            throw new GlmException($"BpeTrainingOptions.HoldOutFraction = {HoldOutFraction} is invalid: expected a value in [0, 0.5].");
        if (MaxTrainingChars < 0)
            throw new GlmException($"BpeTrainingOptions.MaxTrainingChars = {MaxTrainingChars} is invalid: expected ≥ 0 (0 = no bound).");
        try { _ = new System.Text.RegularExpressions.Regex(Pattern); }
        catch (ArgumentException e) { throw new GlmException($"BpeTrainingOptions.Pattern is not a valid .NET regex: {e.Message}", e); }
    }
}

/// <summary>Progress of a training run.</summary>
/// <param name="Stage">"pre-tokenize", "merge" or "done".</param>
/// <param name="Merges">Merges done so far.</param>
/// <param name="TargetMerges">Merges wanted.</param>
/// <param name="LastPairCount">Frequency of the last merged pair.</param>
/// <param name="DistinctWords">Distinct pre-tokenized words (known from stage "merge" on).</param>
public sealed record BpeTrainingProgress(string Stage, int Merges, int TargetMerges, long LastPairCount, long DistinctWords = 0);
