using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

public sealed class Glm4TokenizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("glm4tok").FullName;
    private readonly Glm4Tokenizer _tok;

    public Glm4TokenizerTests() => _tok = Glm4Tokenizer.LoadTiktoken(Glm4TestRanks.WriteRankFile(_dir));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("ell", new[] { 101, 259 })]            // "ll" (259) merges before "el" (260)
    [InlineData("hello", new[] { 104, 101, 259, 111 })]
    [InlineData("abc", new[] { 97, 256 })]             // "bc" (256) beats "ab" (257)
    [InlineData("aaa", new[] { 258, 97 })]             // equal ranks: leftmost pair first
    [InlineData("aaaa", new[] { 258, 258 })]
    [InlineData("你好", new[] { 263 })]                 // whole piece is a rank key
    [InlineData("你们", new[] { 262, 0xE4, 0xBB, 0xAC })] // bytes E4 BD → 261, + A0 → 你 262; 们 stays bytes
    [InlineData("x\n\ny", new[] { 120, 264, 121 })]
    [InlineData("1234567", new[] { 265, 52, 53, 54, 55 })] // digits in groups of three
    [InlineData("hello world", new[] { 104, 101, 259, 111, 266 })]
    [InlineData("", new int[0])]
    public void EncodeMergesLowestRankFirst(string text, int[] expected)
    {
        Assert.Equal(expected, _tok.Encode(text));
        Assert.Equal(text, _tok.Decode(expected));
    }

    // Expected pieces from Python's `regex` module with the same pattern (tiktoken semantics, code points).
    [Theory]
    [InlineData("你好，世界！GLM-4 很强。", new[] { "你好", "，世界", "！GLM", "-", "4", " 很强", "。" })]
    [InlineData("1234567 and 89", new[] { "123", "456", "7", " and", " ", "89" })]
    [InlineData("I'm here, you'RE there, it'll do", new[] { "I", "'m", " here", ",", " you", "'RE", " there", ",", " it", "'ll", " do" })]
    [InlineData("a   b\t\tc  ", new[] { "a", "  ", " b", "\t", "\tc", "  " })]
    [InlineData("x\n\n\ny\r\n  z", new[] { "x", "\n\n\n", "y", "\r\n", " ", " z" })]
    [InlineData("<|user|>\nhello", new[] { "<|", "user", "|>\n", "hello" })]
    [InlineData("def f(x):\n    return x**2\n", new[] { "def", " f", "(x", "):\n", "   ", " return", " x", "**", "2", "\n" })]
    [InlineData("a\U00020000b \U0001F600\U0001F600!", new[] { "a\U00020000b", " \U0001F600\U0001F600!" })]
    [InlineData("٣٤٥٦ ½ Ⅻ", new[] { "٣٤٥", "٦", " ", "½", " ", "Ⅻ" })]
    [InlineData("end.\n\n", new[] { "end", ".\n\n" })]
    // \s must mean Unicode White_Space (pitfall 15): U+001C and U+180E are not spaces, U+0085/U+3000/U+2028 are.
    [InlineData("a\u001Cb", new[] { "a", "\u001Cb" })]
    [InlineData("a\u0085b", new[] { "a", "\u0085b" })]
    [InlineData("a\u180Eb", new[] { "a", "\u180Eb" })]
    [InlineData("a\u2028\u2028b", new[] { "a", "\u2028", "\u2028b" })]
    [InlineData("x \u00A0y", new[] { "x", " ", "\u00A0y" })]
    public void PreTokenizerMatchesPythonRegex(string text, string[] expected)
    {
        Assert.Equal(expected, _tok.PreTokenize(text));
    }

    [Fact]
    public void SpecialTokensFollowTheRanksAndAreNotParsedFromText()
    {
        int first = Glm4TestRanks.FirstSpecial;
        Assert.Equal(first, _tok.EosId);
        Assert.Equal(first + 2, _tok.SpecialTokenId("[gMASK]"));
        Assert.Equal(first + 4, _tok.SpecialTokenId("<sop>"));
        Assert.Equal(first + 7, _tok.SpecialTokenId("<|user|>"));
        Assert.Equal(first + 9, _tok.SpecialTokenId("<|observation|>"));
        Assert.Equal(first + 13, _tok.SpecialTokenId("<|end_of_video|>"));
        Assert.Equal(first + 14, _tok.VocabSize);
        Assert.True(_tok.IsSpecial(first + 7));
        Assert.False(_tok.IsSpecial(263));
        var ids = _tok.Encode("<|user|>");
        Assert.DoesNotContain(first + 7, ids);
        Assert.Equal("<|user|>", _tok.Decode(ids));
    }

    [Fact]
    public void DecodeWritesSpecialsAndReplacesInvalidUtf8()
    {
        int first = Glm4TestRanks.FirstSpecial;
        Assert.Equal("[gMASK]<sop><|user|>\n你好<|assistant|>", _tok.Decode([first + 2, first + 4, first + 7, 10, 263, first + 8]));
        Assert.Equal("\n你好", _tok.Decode([first + 2, first + 4, first + 7, 10, 263, first + 8], skipSpecialTokens: true));
        Assert.Equal("\uFFFD", _tok.Decode([0xE4, 0xBD]));          // truncated 3-byte sequence
        Assert.Equal("a\uFFFDb", _tok.Decode([97, 0xFF, 98]));
    }

    [Fact]
    public void HfTokenizerJsonGivesTheSameIds()
    {
        var hf = Glm4Tokenizer.LoadHfTokenizerJson(Glm4TestRanks.WriteTokenizerJson(_dir, Glm4Tokenizer.SpecialTokens));
        foreach (string text in new[] { "hello world", "你好你们", "1234567 aaa\n\nabc", "I'm ell" })
            Assert.Equal(_tok.Encode(text), hf.Encode(text));
        Assert.Equal(_tok.SpecialTokenId("<|assistant|>"), hf.SpecialTokenId("<|assistant|>"));
        Assert.Equal("你好<|user|>", hf.Decode([263, Glm4TestRanks.FirstSpecial + 7]));
    }

    [Theory]
    [InlineData("not-base64!! 5\n", "line")]
    [InlineData("YQ== x\n", "rank")]
    [InlineData("YQ== 1\nYQ== 2\n", "twice")]
    [InlineData("\n\n", "no entries")]
    public void CorruptRankFileRaisesGlmExceptionNamingTheFile(string content, string expectedWord)
    {
        string path = Path.Combine(_dir, "bad.model");
        File.WriteAllText(path, content);
        var e = Assert.Throws<Glm.Engine.GlmException>(() => Glm4Tokenizer.LoadTiktoken(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expectedWord, e.Message);
    }

    [Fact]
    public void MissingByteInRankTableIsAClearError()
    {
        string path = Path.Combine(_dir, "partial.model");
        File.WriteAllLines(path, ["YQ== 0"]); // only "a"
        var tok = Glm4Tokenizer.LoadTiktoken(path);
        var e = Assert.Throws<Glm.Engine.GlmException>(() => tok.Encode("ab"));
        Assert.Contains("0x62", e.Message);
    }

    [Fact]
    public void LongPieceMergesLikeTheQuadraticReference()
    {
        // One regex piece of 3000 letters; compare the heap-based merge with a direct transcription of tiktoken's scan.
        string text = string.Concat(Enumerable.Repeat("aabcell你好你们", 300));
        Assert.Single(_tok.PreTokenize(text));
        Assert.Equal(ReferenceMerge(text), _tok.Encode(text));
    }

    private static List<int> ReferenceMerge(string piece)
    {
        var rank = Glm4TestRanks.All().ToDictionary(e => Convert.ToHexString(e.Bytes), e => e.Rank);
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(piece);
        var parts = Enumerable.Range(0, bytes.Length + 1).ToList();
        int? RankOf(int a, int b) => rank.TryGetValue(Convert.ToHexString(bytes, a, b - a), out int r) ? r : null;
        while (true)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 2 < parts.Count; i++)
                if (RankOf(parts[i], parts[i + 2]) is int r && r < bestRank) { bestRank = r; best = i; }
            if (best < 0) break;
            parts.RemoveAt(best + 1);
        }
        return Enumerable.Range(0, parts.Count - 1).Select(i => RankOf(parts[i], parts[i + 1])!.Value).ToList();
    }
}
