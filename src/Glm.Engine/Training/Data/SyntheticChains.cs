namespace Glm.Engine.Training.Data;

/// <summary>
/// Synthetic text on which reading a blank's left neighbour is all it takes: over an alphabet of <see cref="AlphabetSize"/>
/// tokens, each token fixes the next through a fixed random permutation, except every <see cref="Period"/>-th token, which
/// is drawn at random. So the first token of a blank is known from the token before it (optimum ≈ ln(alphabet) / period
/// nats per first token averaged over random restarts, chance ln(alphabet)), which makes the training setup's ability to
/// read Part A measurable in a few hundred steps (<c>glm probe-blanks</c>). Special tokens follow the alphabet.
/// </summary>
public sealed class SyntheticChains
{
    private readonly int[] _next;

    /// <summary>Creates the chain rule (the permutation depends only on <paramref name="seed"/>).</summary>
    public SyntheticChains(int alphabetSize = 1000, int period = 16, int seed = 7)
    {
        if (alphabetSize < 2) throw new GlmException($"synthetic chains: alphabet size {alphabetSize}; expected at least 2.");
        if (period < 2) throw new GlmException($"synthetic chains: period {period}; expected at least 2 (every period-th token is random).");
        AlphabetSize = alphabetSize;
        Period = period;
        _next = Enumerable.Range(0, alphabetSize).ToArray();
        new Random(seed).Shuffle(_next);
    }

    /// <summary>Text tokens are 0 … AlphabetSize-1.</summary>
    public int AlphabetSize { get; }
    /// <summary>Every Period-th text token is random; the others follow the chain rule.</summary>
    public int Period { get; }
    /// <summary>The control tokens, numbered after the alphabet.</summary>
    public GlmSpecialTokens Tokens => new(Cls: AlphabetSize, Mask: AlphabetSize + 1, SentenceMask: AlphabetSize + 2,
        GenerationMask: AlphabetSize + 3, Sop: AlphabetSize + 4, Eop: AlphabetSize + 5, Eos: AlphabetSize + 6, Pad: AlphabetSize + 7);
    /// <summary>Vocabulary size: the alphabet and eight control tokens.</summary>
    public int VocabSize => AlphabetSize + 8;

    /// <summary>The token that follows <paramref name="token"/> except at a random restart.</summary>
    public int Next(int token) => _next[token];

    /// <summary><paramref name="count"/> samples of <paramref name="length"/> tokens, each [CLS] then chain text; deterministic per seed.</summary>
    public List<int[]> Samples(int count, int length, int seed)
    {
        if (length < 3) throw new GlmException($"synthetic chains: sample length {length}; expected at least 3 ([CLS] and two tokens).");
        var rng = new Random(seed);
        var samples = new List<int[]>(count);
        for (int n = 0; n < count; n++)
        {
            var sample = new int[length];
            sample[0] = Tokens.Cls;
            int token = rng.Next(AlphabetSize);
            for (int i = 1; i < length; i++)
            {
                sample[i] = token;
                token = i % Period == 0 ? rng.Next(AlphabetSize) : _next[token];
            }
            samples.Add(sample);
        }
        return samples;
    }
}
