using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

/// <summary>
/// Golden ids from the reference SentencePiece library (Debian python3-sentencepiece 0.1.97,
/// <c>sp.encode(text)</c> / <c>sp.decode(ids)</c>) on ../shared/data/tokenizers/chatglm3-6b/tokenizer.model.
/// </summary>
public class ChatGlm3TokenizerTests
{
    internal const string ModelPath = "data/tokenizers/chatglm3-6b/tokenizer.model";
    private static readonly Lazy<ChatGlm3Tokenizer> Tokenizer = new(() => ChatGlm3Tokenizer.Load(SharedData.PathOf(ModelPath)));

    public static TheoryData<string, int[], string> Golden => new()
    {
        { "你好", new int[] { 36474, 54591 }, "你好" },
        { "晚上睡不着应该怎么办", new int[] { 30910, 32820, 54266, 31876, 35153 }, "晚上睡不着应该怎么办" },
        { "Hello, world! This is a test.", new int[] { 13755, 30932, 993, 30992, 666, 323, 260, 1429, 30930 }, "Hello, world! This is a test." },
        { "GLM-4 和 ChatGLM3 都是大语言模型\u3002", new int[] { 12980, 30944, 30941, 30972, 34876, 22011, 10461, 30944, 30966, 30910, 31700, 54539, 32330, 34030, 31155 }, "GLM-4 和 ChatGLM3 都是大语言模型\u3002" },
        { "1234567890 and 3.14159", new int[] { 30910, 30939, 30943, 30966, 30972, 30970, 30978, 30981, 30973, 30969, 30940, 293, 30910, 30966, 30930, 30939, 30972, 30939, 30970, 30969 }, "1234567890 and 3.14159" },
        { "emoji \U0001f600\U0001f44d\U0001f3fd test", new int[] { 767, 30914, 6670, 30910, 31385, 64473, 243, 162, 146, 192, 1429 }, "emoji \U0001f600\U0001f44d\U0001f3fd test" },
        { "a  b   c    d", new int[] { 260, 265, 30931, 265, 273, 296, 30921 }, "a  b   c    d" },
        { "  leading and trailing  ", new int[] { 265, 3307, 293, 890, 4318, 265 }, "  leading and trailing  " },
        { "line1\nline2\n\n\nline3\r\n", new int[] { 1699, 30939, 13, 1131, 30943, 13, 13, 13, 1131, 30966, 31025, 13 }, "line1\nline2\n\n\nline3\r\n" },
        { "<|user|> [gMASK] sop <s></s>", new int[] { 906, 31007, 4865, 31007, 30994, 790, 30927, 30944, 2080, 30984, 30996, 268, 404, 906, 30917, 6029, 30917, 30994 }, "<|user|> [gMASK] sop <s></s>" },
        { "\t制表符\t", new int[] { 30910, 12, 54691, 54670, 55682, 12 }, "\t制表符\t" },
        { "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", new int[] { 30910, 64455, 64460, 61431, 61431, 64462, 60729, 64454, 61464, 61597, 30910, 59340, 60232, 59830, 30910, 31592, 31576, 57719 }, "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３" },
        { "日本語\u306e\u30c6\u30ad\u30b9\u30c8", new int[] { 42270, 56117, 31182, 31440, 31572, 31277, 31269 }, "日本語\u306e\u30c6\u30ad\u30b9\u30c8" },
        { "Ünïcödé café naïve", new int[] { 27186, 30916, 31147, 30922, 31043, 30921, 31008, 29530, 4692, 31147, 318 }, "Ünïcödé café naïve" },
        { "x\u00a0nbsp", new int[] { 1994, 31045, 11819 }, "x\u00a0nbsp" },
        { "", new int[] {  }, "" },
        { " ", new int[] { 265 }, " " },
        { "\n", new int[] { 30910, 13 }, "\n" },
        { "tool_call(location=\"beijing\", unit=\"celsius\")", new int[] { 2583, 30962, 10372, 30946, 15954, 1104, 1122, 13363, 1252, 4388, 1104, 30922, 1073, 3551, 2479 }, "tool_call(location=\"beijing\", unit=\"celsius\")" },
        { "def f(x):\n    return x ** 2\n", new int[] { 884, 279, 30946, 30948, 1528, 13, 296, 3793, 1994, 3418, 30910, 30943, 13 }, "def f(x):\n    return x ** 2\n" },
        { "<n>换行<n>", new int[] { 906, 30916, 30994, 55435, 54560, 31002, 30916, 30994 }, "<n>换行<n>" },
        { "中文标点：\u201c引号\u201d，（括号）！？", new int[] { 30910, 32977, 54851, 54668, 31682, 54976, 54943, 31644, 31301, 55297, 54943, 31300, 31404, 31514 }, "中文标点：\u201c引号\u201d，（括号）！？" },
        { "2024年1月18日", new int[] { 30910, 30943, 30940, 30943, 30972, 54540, 30939, 54595, 30939, 30973, 54576 }, "2024年1月18日" },
        { "\ufb01 ligature \u2460 \u3231 \u337b", new int[] { 30910, 31238, 15975, 1197, 30910, 57070, 30910, 230, 139, 180, 30910, 230, 144, 190 }, "\ufb01 ligature \u2460 \u3231 \u337b" },
    };

    [SharedDataTheory(ModelPath)]
    [MemberData(nameof(Golden))]
    public void EncodeMatchesReferenceIds(string text, int[] expectedIds, string expectedDecoded)
    {
        Assert.Equal(expectedIds, Tokenizer.Value.Encode(text));
        Assert.Equal(expectedDecoded, Tokenizer.Value.Decode(expectedIds));
    }

    [SharedDataFact(ModelPath)]
    public void ChatGlmCppReferenceVectors()
    {
        var tok = Tokenizer.Value;
        int gmask = tok.SpecialTokenId("[gMASK]")!.Value, sop = tok.SpecialTokenId("sop")!.Value;
        Assert.Equal(new[] { 64790, 64792, 36474, 54591 }, new[] { gmask, sop }.Concat(tok.Encode("你好")));
        Assert.Equal(new[] { 30910, 13 }, tok.Encode("\n"));
        Assert.Equal(30910, tok.Encode("晚上睡不着应该怎么办")[0]);
    }

    [SharedDataFact(ModelPath)]
    public void SpecialTokensFollowTheSentencePieceVocabulary()
    {
        var tok = Tokenizer.Value;
        Assert.Equal(64798, tok.VocabSize);
        string[] expected = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(64789 + i, tok.SpecialTokenId(expected[i]));
            Assert.True(tok.IsSpecial(64789 + i));
        }
        Assert.Equal(2, tok.EosId);
        Assert.False(tok.IsSpecial(36474));
        Assert.Null(tok.SpecialTokenId("<|endoftext|>"));
    }

    [SharedDataFact(ModelPath)]
    public void DecodeEmitsSpecialsAndDecodesRunsSeparately()
    {
        var tok = Tokenizer.Value;
        // Each run between specials loses only its own leading "▁"; the "▁你" after the newline keeps its space
        // (python: sp.decode([30910, 13, 36474, 54591]) == "\n 你好").
        int[] ids = [64790, 64792, 64795, 30910, 13, 36474, 54591, 64796, 30910, 13, 36474, 2];
        Assert.Equal("[gMASK]sop<|user|>\n 你好<|assistant|>\n 你", tok.Decode(ids));
        Assert.Equal("\n 你好\n 你", tok.Decode(ids, skipSpecialTokens: true));
        Assert.Equal("你 \n", tok.Decode([36474, 30910, 13]));
        Assert.Equal("  你", tok.Decode([30910, 30910, 36474]));
        Assert.Equal("你", tok.Decode([1, 36474]));
        Assert.Equal("", tok.Decode([0, 1, 2]));
    }
}
