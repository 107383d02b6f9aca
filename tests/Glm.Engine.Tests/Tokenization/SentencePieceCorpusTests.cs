using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

/// <summary>
/// Id-exactness at scale: the first 200,000 characters of two corpora, encoded line by line, must give the same
/// token count and FNV-1a hash of ids as python3-sentencepiece 0.1.97 on the same model (values computed once, offline).
/// </summary>
public class SentencePieceCorpusTests
{
    private const string Nahan = "data/corpus/luxun/nahan.txt";
    private const string Modern = "data/corpus/classical-modern/modern_target_subset.txt";

    [SharedDataTheory(ChatGlm3TokenizerTests.ModelPath)]
    [InlineData(Nahan, 3697, 57515, 1905374505u)]
    [InlineData(Modern, 5259, 154006, 1635316176u)]
    public void ChatGlm3MatchesReferenceOnCorpus(string corpus, int lines, int tokens, uint hash)
    {
        var tok = ChatGlm3Tokenizer.Load(SharedData.PathOf(ChatGlm3TokenizerTests.ModelPath));
        var (lineCount, tokenCount, idHash, roundTripFailures) = Measure(tok, corpus);
        Assert.Equal((lines, tokens, hash), (lineCount, tokenCount, idHash));
        Assert.Equal(0, roundTripFailures); // byte fallback + identity normalizer: decode(encode(x)) == x
    }

    [SharedDataTheory(GlmChineseTokenizerTests.ModelPath)]
    [InlineData(Nahan, 3697, 51006, 3481441009u)]
    [InlineData(Modern, 5259, 142762, 2712623384u)]
    public void GlmChineseMatchesReferenceOnCorpus(string corpus, int lines, int tokens, uint hash)
    {
        var tok = GlmChineseTokenizer.Load(SharedData.PathOf(GlmChineseTokenizerTests.ModelPath));
        var (lineCount, tokenCount, idHash, _) = Measure(tok, corpus);
        Assert.Equal((lines, tokens, hash), (lineCount, tokenCount, idHash));
    }

    private static (int Lines, int Tokens, uint Hash, int RoundTripFailures) Measure(IGlmTokenizer tok, string corpus)
    {
        string path = SharedData.PathOf(corpus);
        if (!File.Exists(path)) Assert.Fail($"corpus missing at {path}");
        string text = File.ReadAllText(path);
        text = text[..Math.Min(200_000, text.Length)];
        string[] lines = text.Split('\n');
        uint hash = 2166136261;
        int tokens = 0, failures = 0;
        foreach (string line in lines)
        {
            var ids = tok.Encode(line);
            foreach (int id in ids) hash = unchecked((hash ^ (uint)id) * 16777619);
            tokens += ids.Count;
            if (tok.Decode(ids) != line) failures++;
        }
        return (lines.Length, tokens, hash, failures);
    }
}
