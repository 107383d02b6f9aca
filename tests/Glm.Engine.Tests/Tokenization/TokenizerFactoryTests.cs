using Glm.Engine;
using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Tokenization;

public sealed class TokenizerFactoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tokfactory").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Folder(string name) => Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;

    [SharedDataFact(ChatGlm3TokenizerTests.ModelPath)]
    public void SentencePieceTokenizerModelIsChatGlm3()
    {
        string folder = Folder("chatglm3");
        File.Copy(SharedData.PathOf(ChatGlm3TokenizerTests.ModelPath), Path.Combine(folder, "tokenizer.model"));
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "chatglm"}""");
        var tok = TokenizerFactory.Load(folder);
        Assert.IsType<ChatGlm3Tokenizer>(tok);
        Assert.Equal(new[] { 36474, 54591 }, tok.Encode("你好"));
        Assert.IsType<ChatGlm3ChatFormat>(TokenizerFactory.CreateChatFormat(tok));
    }

    [SharedDataFact(GlmChineseTokenizerTests.ModelPath)]
    public void CogPretrainModelIsOriginalGlm()
    {
        string folder = Folder("glm");
        File.Copy(SharedData.PathOf(GlmChineseTokenizerTests.ModelPath), Path.Combine(folder, "cog-pretrain.model"));
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "glm", "architectures": ["GLMModel"]}""");
        var tok = TokenizerFactory.Load(folder);
        Assert.IsType<GlmChineseTokenizer>(tok);
        Assert.IsType<GlmBlankChatFormat>(TokenizerFactory.CreateChatFormat(tok)); // base GLM: plain-text dialogue through [gMASK]
    }

    [Fact]
    public void TiktokenTokenizerModelIsGlm4()
    {
        string folder = Folder("glm4");
        Glm4TestRanks.WriteRankFile(folder);
        var tok = TokenizerFactory.Load(folder, "chatglm");
        Assert.IsType<Glm4Tokenizer>(tok);
        Assert.Equal(new[] { 263 }, tok.Encode("你好"));
        Assert.IsType<Glm4ChatFormat>(TokenizerFactory.CreateChatFormat(tok));
    }

    [Fact]
    public void TokenizerJsonIsGlm4ForHfRepos()
    {
        string folder = Folder("glm4hf");
        Glm4TestRanks.WriteTokenizerJson(folder, Glm4Tokenizer.SpecialTokens);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "glm4"}""");
        var tok = TokenizerFactory.Load(folder);
        Assert.IsType<Glm4Tokenizer>(tok);
        Assert.Equal(new[] { 97, 256 }, tok.Encode("abc"));
    }

    [Fact]
    public void EmptyFolderNamesTheExpectedFiles()
    {
        string folder = Folder("empty");
        var e = Assert.Throws<GlmException>(() => TokenizerFactory.Load(folder));
        Assert.Contains(folder, e.Message);
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Fact]
    public void MissingFolderIsAGlmException()
    {
        string folder = Path.Combine(_dir, "nope");
        Assert.Contains(folder, Assert.Throws<GlmException>(() => TokenizerFactory.Load(folder)).Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x01, 0x02, 0xFF }, "neither")]
    [InlineData(new byte[] { 0x0A, 0x50, 0x01 }, "not a valid SentencePiece model")]
    public void CorruptTokenizerModelNamesTheFile(byte[] content, string expected)
    {
        string folder = Folder("corrupt" + content.Length);
        string path = Path.Combine(folder, "tokenizer.model");
        File.WriteAllBytes(path, content);
        var e = Assert.Throws<GlmException>(() => TokenizerFactory.Load(folder, "chatglm"));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ForeignModelTypeAndBadConfigAreGlmExceptions()
    {
        string folder = Folder("llama");
        Glm4TestRanks.WriteRankFile(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "llama"}""");
        Assert.Contains("'llama'", Assert.Throws<GlmException>(() => TokenizerFactory.Load(folder)).Message);
        File.WriteAllText(Path.Combine(folder, "config.json"), "{ broken");
        Assert.Contains("config.json", Assert.Throws<GlmException>(() => TokenizerFactory.Load(folder)).Message);
    }

    [Fact]
    public void CorruptTokenizerJsonNamesTheFile()
    {
        string folder = Folder("badjson");
        string path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, """{"model": {"type": "Unigram", "vocab": []}}""");
        var e = Assert.Throws<GlmException>(() => TokenizerFactory.Load(folder, "glm4"));
        Assert.Contains(path, e.Message);
        Assert.Contains("BPE", e.Message);
    }
}
