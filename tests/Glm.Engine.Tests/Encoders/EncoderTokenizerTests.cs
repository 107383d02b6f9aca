using Glm.Engine.Encoders;
using Glm.Engine.Tests.Tokenization;
using Glm.Engine.Tokenization.SentencePiece;
using Microsoft.ML.Tokenizers;
using static Glm.Engine.Tests.Encoders.EncoderTestSupport;

namespace Glm.Engine.Tests.Encoders;

/// <summary>
/// Tokenizer ids derived by hand from the algorithms (HF BasicTokenizer + WordPiece; SentencePiece Unigram Viterbi with the
/// fairseq offset) over tiny vocabularies written by the tests.
/// </summary>
public class EncoderTokenizerTests
{
    private static BertWordPieceTokenizer Bert(bool lower = true, bool? strip = null) => new(BertVocab, lower, strip);

    public static TheoryData<string, int[]> BertCases => new()
    {
        { "北京大学", [5, 6, 7, 8] },                 // every CJK ideograph is its own word
        { "Hello北京World!", [11, 5, 6, 12, 24] },    // Latin words around Chinese, lower-cased, "!" split off
        { "unaffable", [13, 14, 15] },               // longest-match-first with ## continuations
        { "Café", [16] },                            // lower-case + accent stripping (strip_accents null follows lower)
        { "cafe\u0301", [16] },                      // combining accent removed after NFD
        { "2024年", [18, 1] },                       // digits, then an ideograph missing from the vocab → [UNK]
        { "1234", [1] },                             // "123" matches but "##4" does not → the whole word is [UNK]
        { "12", [20, 21] },
        { "中国，大学。", [9, 10, 23, 7, 8, 25] },     // full-width punctuation is split off
        { "北\u200b京", [5, 6] },                     // zero-width space (Cf) is removed
        { "a\u00a0b", [26, 1] },                     // NBSP is whitespace; "b" alone is not in the vocab (only "##b")
        { "ab", [26, 27] },
        { "a\u2028ab", [26, 26, 27] },                // line separator splits words like Python's str.split()
        { "[SEP]北京", [3, 5, 6] },                   // a special token written in the text stays one token
        { "龘😀", [1, 1] },                           // unknown ideograph, unknown symbol
        { "  \t\n ", [] },
    };

    [Theory]
    [MemberData(nameof(BertCases))]
    public void BertWordPieceGivesHandDerivedIds(string text, int[] expected) =>
        Assert.Equal(expected, Bert().Tokenize(text));

    [Fact]
    public void BertCaseAndAccentOptionsFollowTokenizerConfig()
    {
        Assert.Equal([17], Bert(lower: true, strip: false).Tokenize("Café"));   // lower-cased, accent kept
        Assert.Equal([17], Bert(lower: false).Tokenize("café"));                // no lower-case: strip_accents null → off
        Assert.Equal([28], Bert(lower: false).Tokenize("Hello"));               // case-sensitive vocab entry
        Assert.Equal([11], Bert(lower: true).Tokenize("Hello"));
        using var dir = new EncoderTempDir();
        WriteBertVocab(dir.Path, lowerCase: false, stripAccents: true);
        var loaded = BertWordPieceTokenizer.Load(dir.Path);
        Assert.False(loaded.LowerCase);
        Assert.True(loaded.StripAccents);
        Assert.Equal([1], loaded.Tokenize("Café")); // "Cafe" is not in the vocab
        Assert.Equal(BertVocab.Length, loaded.VocabSize);
    }

    [Fact]
    public void BertFramingAndTruncation()
    {
        var tok = Bert();
        Assert.Equal([2, 5, 6, 7, 8, 3], tok.Encode("北京大学", 16).Ids);
        Assert.Equal([2, 5, 6, 3], tok.Encode("北京大学", 4).Ids);
        // longest_first: trim the longer segment, the second on ties; token types 1 from the second segment on.
        var pair = tok.EncodePair("北京大学", "中国", 7);
        Assert.Equal([2, 5, 6, 3, 9, 10, 3], pair.Ids);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1], pair.TypeIds);
        Assert.Equal([2, 5, 6, 3, 9, 3], tok.EncodePair("北京", "中国", 6).Ids);
    }

    [Theory]
    [InlineData("Hello北京World! unaffable")]
    [InlineData("中国，大学。2024年 12 ab")]
    [InlineData("Café cafe\u0301 龘")]
    public void BertMatchesMicrosoftMlTokenizersOnPlainText(string text)
    {
        using var dir = new EncoderTempDir();
        WriteBertVocab(dir.Path);
        var reference = BertTokenizer.Create(dir.File("vocab.txt"), new BertOptions
        {
            LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true, IndividuallyTokenizeCjk = true, ApplyBasicTokenization = true,
        });
        Assert.Equal(reference.EncodeToIds(text, addSpecialTokens: false), Bert().Tokenize(text));
    }

    [Fact]
    public void BertVocabWithoutSpecialTokensIsRejected()
    {
        var ex = Assert.Throws<GlmException>(() => new BertWordPieceTokenizer(["a", "b", "[CLS]"], source: "x/vocab.txt"));
        Assert.Contains("x/vocab.txt", ex.Message);
        Assert.Contains("[SEP]", ex.Message);
    }

    private static XlmRobertaTokenizer Xlmr() => XlmRobertaTokenizer.FromBytes(UnigramModelProto(UnigramPieces));

    public static TheoryData<string, int[]> XlmrCases => new()
    {
        { "北京大学", [5, 8] },          // ▁北京 + 大学 (−6.5) beats ▁ 北 京 大学 (−13.5) and ▁北京 大 学 (−13)
        { "abcd", [12, 13] },            // Viterbi ▁a + bcd (−2), not greedy-longest ▁ab + cd (−6)
        { "北☃☃京", [4, 6, 3, 7] },      // ▁ 北 <unk> 京: two unknown chars merge into one <unk> (id 3)
        { "  北京   大学 ", [5, 4, 8] },  // extra whitespace removed: ▁北京 ▁ 大学
        { "2024", [15, 16, 17] },        // ▁2 0 24 (−9.5) beats ▁ 2 0 24 (−11.5) and ▁2 0 2 4 (−12)
        { "café", [20, 21] },            // ▁caf é
        { "北京，大学", [5, 22, 8] },     // identity normalizer keeps the full-width comma
        { "北京<sep>大学", [5, 24, 8] },  // user-defined piece kept whole (score 5·max − 0.1)
        { "😀😀", [4, 3] },              // astral unknown characters: one <unk> after ▁
        { "", [] },
    };

    [Theory]
    [MemberData(nameof(XlmrCases))]
    public void XlmRobertaUnigramGivesHandDerivedIds(string text, int[] expected) =>
        Assert.Equal(expected, Xlmr().Tokenize(text));

    [Fact]
    public void XlmRobertaFramingUsesFairseqSpecials()
    {
        var tok = Xlmr();
        Assert.Equal((0, 1, 2, 3), (tok.ClsId, tok.PadId, tok.SepId, tok.UnkId));
        Assert.Equal(UnigramPieces.Length + 1, tok.MaskId);
        Assert.Equal([0, 2], tok.Encode("", 8).Ids);
        Assert.Equal([0, 5, 8, 2], tok.Encode("北京大学", 8).Ids);
        Assert.Equal([0, 5, 2], tok.Encode("北京大学", 3).Ids);
        var pair = tok.EncodePair("北京", "大学", 16);
        Assert.Equal([0, 5, 2, 2, 4, 8, 2], pair.Ids);
        Assert.All(pair.TypeIds, t => Assert.Equal(0, t));
        Assert.Equal(["\u2581a", "bcd"], tok.Pieces("abcd"));
    }

    [Fact]
    public void TokenizerJsonOfTheSameModelGivesTheSameIds()
    {
        using var dir = new EncoderTempDir();
        File.WriteAllText(dir.File("tokenizer.json"), UnigramTokenizerJson(UnigramPieces));
        var fromJson = (XlmRobertaTokenizer)EncoderTokenizer.Load(dir.Path, EncoderFamily.XlmRoberta);
        var fromModel = Xlmr();
        foreach (var text in XlmrCases.Select(c => (string)c[0]))
            Assert.Equal(fromModel.Tokenize(text), fromJson.Tokenize(text));
        Assert.Equal((fromModel.ClsId, fromModel.PadId, fromModel.SepId, fromModel.UnkId, fromModel.MaskId, fromModel.VocabSize),
            (fromJson.ClsId, fromJson.PadId, fromJson.SepId, fromJson.UnkId, fromJson.MaskId, fromJson.VocabSize));
        File.WriteAllText(dir.File("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
        Assert.Contains("model.type = 'BPE'", Assert.Throws<GlmException>(() => EncoderTokenizer.Load(dir.Path, EncoderFamily.XlmRoberta)).Message);
    }

    [SharedDataFact("data/tokenizers/glm-chinese/cog-pretrain.model")]
    public void XlmRobertaAppliesTheModelsNfkcCharsMap()
    {
        // Borrow a real nmt_nfkc precompiled charsmap (XLM-R ships the same normalizer): full-width "，" becomes ",".
        var charsMap = SentencePieceModel.Load(SharedData.PathOf("data/tokenizers/glm-chinese/cog-pretrain.model")).PrecompiledCharsMap;
        Assert.NotEmpty(charsMap);
        var tok = XlmRobertaTokenizer.FromBytes(UnigramModelProto(UnigramPieces, charsMap));
        Assert.Equal([5, 23, 8], tok.Tokenize("北京，大学"));
        Assert.Equal([15, 16, 17], tok.Tokenize("２０２４")); // full-width digits
        using var dir = new EncoderTempDir();
        File.WriteAllText(dir.File("tokenizer.json"), UnigramTokenizerJson(UnigramPieces, charsMap));
        var fromJson = XlmRobertaTokenizer.LoadTokenizerJson(dir.File("tokenizer.json"));
        Assert.Equal([5, 23, 8], fromJson.Tokenize("北京，大学"));
    }

    [Fact]
    public void NonUnigramSentencePieceModelIsRejected()
    {
        var bytes = UnigramModelProto(UnigramPieces);
        var model = SentencePieceModel.Parse(bytes);
        var bpe = new SentencePieceModel { Pieces = model.Pieces, ModelType = 2 };
        var ex = Assert.Throws<GlmException>(() => new SentencePieceUnigram(bpe, "m/sentencepiece.bpe.model"));
        Assert.Contains("model_type = 2", ex.Message);
        Assert.Throws<GlmException>(() => XlmRobertaTokenizer.FromBytes([0x0A, 0xFF], "broken.model"));
    }
}
