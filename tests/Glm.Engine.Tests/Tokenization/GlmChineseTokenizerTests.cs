using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

/// <summary>
/// Golden ids from python3-sentencepiece 0.1.97 (<c>sp.encode</c>/<c>sp.decode</c>) on
/// ../shared/data/tokenizers/glm-chinese/cog-pretrain.model: nmt_nfkc folding (full-width, ligatures, ①, ㍻),
/// extra-whitespace removal, no byte fallback (a run of unknown characters is one &lt;unk&gt; = 0).
/// </summary>
public class GlmChineseTokenizerTests
{
    internal const string ModelPath = "data/tokenizers/glm-chinese/cog-pretrain.model";
    private static readonly Lazy<GlmChineseTokenizer> Tokenizer = new(() => GlmChineseTokenizer.Load(SharedData.PathOf(ModelPath)));

    public static TheoryData<string, int[], string> Golden => new()
    {
        { "你好", new int[] { 2416 }, "你好" },
        { "晚上睡不着应该怎么办", new int[] { 8683, 11305, 27303 }, "晚上睡不着应该怎么办" },
        { "Hello, world! This is a test.", new int[] { 712, 25708, 43359, 17487, 43460, 28718, 2476, 778, 134, 2041, 43369 }, "Hello, world! This is a test." },
        { "GLM-4 和 ChatGLM3 都是大语言模型\u3002", new int[] { 602, 43233, 6835, 1323, 2619, 147, 20640, 43638, 43393, 7049, 43376, 613, 2421, 43361 }, "GLM-4 和 ChatGLM3 都是大语言模型\u3002" },
        { "1234567890 and 3.14159", new int[] { 30733, 25197, 1108, 489, 1301, 618, 242, 26538 }, "1234567890 and 3.14159" },
        { "emoji \U0001f600\U0001f44d\U0001f3fd test", new int[] { 26566, 43406, 12495, 43358, 0, 134, 2041 }, "emoji  \u2047  test" },
        { "a  b   c    d", new int[] { 778, 533, 366, 580 }, "a b c d" },
        { "  leading and trailing  ", new int[] { 6109, 498, 315, 1301, 134, 2386, 549, 315 }, "leading and trailing" },
        { "line1\nline2\n\n\nline3\r\n", new int[] { 849, 2306, 43366, 849, 2306, 43372, 849, 2306, 43393 }, "line1 line2 line3" },
        { "<|user|> [gMASK] sop <s></s>", new int[] { 10194, 44876, 30772, 44876, 44923, 40, 43578, 43638, 2898, 44051, 43644, 359, 1012, 10194, 43446, 44923, 45542, 43549, 43446, 44923 }, "<|user|> [gMASK] sop <s></s>" },
        { "\t制表符\t", new int[] { 19554, 43612, 44529 }, "制表符" },
        { "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", new int[] { 605, 12515, 43748, 34158, 196, 5842, 30733 }, "fullwidth ABC 123" },
        { "日本語\u306e\u30c6\u30ad\u30b9\u30c8", new int[] { 4525, 47739, 45052, 46697, 46674, 28404 }, "日本語\u306e\u30c6\u30ad\u30b9\u30c8" },
        { "Ünïcödé café naïve", new int[] { 43358, 0, 43419, 0, 43510, 48484, 43513, 46266, 366, 5465, 46266, 24206, 0, 834 }, " \u2047 n \u2047 cödé café na \u2047 ve" },
        { "x\u00a0nbsp", new int[] { 1898, 860, 43658, 2698 }, "x nbsp" },
        { "", new int[] {  }, "" },
        { " ", new int[] {  }, "" },
        { "\n", new int[] {  }, "" },
        { "tool_call(location=\"beijing\", unit=\"celsius\")", new int[] { 1293, 519, 44057, 38128, 43397, 43468, 43013, 1780, 8603, 43407, 31238, 4141, 11057, 202, 1780, 11155, 43446, 27321, 23447 }, "tool_call(location=\"beijing\", unit=\"celsius\")" },
        { "def f(x):\n    return x ** 2\n", new int[] { 36153, 605, 43397, 43937, 1123, 20914, 1898, 43358, 1336, 50 }, "def f(x): return x ** 2" },
        { "<n>换行<n>", new int[] { 43358, 3, 44019, 43443, 3 }, "<n>换行<n>" },
        { "中文标点：\u201c引号\u201d，（括号）！？", new int[] { 5858, 35271, 194, 43856, 43729, 137, 43397, 25490, 43396, 6356 }, "中文标点:\u201c引号\u201d,(括号)!?" },
        { "2024年1月18日", new int[] { 1356, 369, 43388, 43366, 43491, 180, 43498 }, "2024年1月18日" },
        { "\ufb01 ligature \u2460 \u3231 \u337b", new int[] { 605, 43407, 849, 720, 24873, 11, 35, 45535, 43396, 3518, 43429 }, "fi ligature 1 (株) 平成" },
    };

    [SharedDataTheory(ModelPath)]
    [MemberData(nameof(Golden))]
    public void EncodeMatchesReferenceIds(string text, int[] expectedIds, string expectedDecoded)
    {
        Assert.Equal(expectedIds, Tokenizer.Value.Encode(text));
        Assert.Equal(expectedDecoded, Tokenizer.Value.Decode(expectedIds));
    }

    [SharedDataFact(ModelPath)]
    public void CommandTokensStartAt50000()
    {
        var tok = Tokenizer.Value;
        Assert.Equal(50010, tok.VocabSize);
        Assert.Equal(50000, tok.EosId);
        Assert.Equal(50002, tok.SpecialTokenId("[CLS]"));
        Assert.Equal(50003, tok.SpecialTokenId("[MASK]"));
        Assert.Equal(50006, tok.SpecialTokenId("<|startofpiece|>"));
        Assert.Equal(50006, tok.SpecialTokenId("sop"));
        Assert.Equal(50007, tok.SpecialTokenId("<|endofpiece|>"));
        Assert.Equal(50008, tok.SpecialTokenId("[sMASK]"));
        Assert.Equal(50009, tok.SpecialTokenId("[gMASK]"));
        Assert.True(tok.IsSpecial(50009));
        Assert.False(tok.IsSpecial(2416));
        // nmt_nfkc folds a literal "▁" (U+2581) to a space, which whitespace removal then drops (python: []).
        Assert.Empty(tok.Encode("\u2581"));
        Assert.Equal(new[] { 778, 533 }, tok.Encode("a\u2581b"));
    }

    [SharedDataFact(ModelPath)]
    public void DecodeWritesCommandTokensLiterally()
    {
        var tok = Tokenizer.Value;
        Assert.Equal("[CLS]你好[gMASK]<|startofpiece|>晚上", tok.Decode([50002, 2416, 50009, 50006, 8683]));
        Assert.Equal("你好晚上", tok.Decode([50002, 2416, 50009, 50006, 8683], skipSpecialTokens: true));
    }
}
