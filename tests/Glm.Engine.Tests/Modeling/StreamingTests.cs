using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Tokenization;
using Glm.Engine.Tokenization;

namespace Glm.Engine.Tests.Modeling;

public class StreamingTests : IDisposable
{
    private const string ChatGlm3Tokenizer = "data/tokenizers/chatglm3-6b/tokenizer.model";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glmsk-stream-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    private GlmModel RandomChatGlm3()
    {
        var cfg = ModelPresets.Get("chatglm3-tiny") with { VocabSize = 65024, EosTokenIds = new[] { 2 } };
        using (var m = GlmModel.CreateRandom(cfg, new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 11 }))
            m.Save(_dir);
        File.Copy(SharedData.PathOf(ChatGlm3Tokenizer), Path.Combine(_dir, "tokenizer.model"));
        return GlmModel.Load(_dir, new GlmLoadOptions { DType = "fp32", Device = "cpu" });
    }

    [SharedDataFact(ChatGlm3Tokenizer)]
    public async Task StopStringSplitAcrossTokensStopsGenerationAndIsNotEmitted()
    {
        using var model = RandomChatGlm3();
        Assert.IsType<ChatGlm3Tokenizer>(model.Tokenizer);
        var prompt = model.Tokenizer!.Encode("今天天气很好");
        var free = new GenerationOptions { MaxNewTokens = 24, StopTokenIds = Array.Empty<int>() };
        var ids = await model.GenerateIdsAsync(prompt, free);
        // Find a boundary between two generated tokens that both decode to visible text, and straddle it with a stop string.
        string text = model.Tokenizer.Decode(ids, skipSpecialTokens: true);
        int boundary = -1;
        for (int i = 3; i < ids.Count - 2 && boundary < 0; i++)
        {
            string left = model.Tokenizer.Decode(ids.Take(i).ToList(), true);
            string right = model.Tokenizer.Decode(ids.Take(i + 1).ToList(), true);
            if (left.Length > 0 && right.Length > left.Length && !left.Contains('\uFFFD') && !right.Contains('\uFFFD') && text.StartsWith(right))
                boundary = left.Length;
        }
        Assert.True(boundary > 0, "no clean token boundary in the generated text: " + text);
        string stop = text.Substring(boundary - 1, 2); // last char of one token + first char of the next
        int expectedCut = text.IndexOf(stop, StringComparison.Ordinal);

        var streamed = new System.Text.StringBuilder();
        var last = FinishReason.None;
        await foreach (var chunk in model.GenerateAsync(prompt, free with { StopStrings = new[] { stop } }))
        {
            streamed.Append(chunk.TextDelta);
            last = chunk.Finish;
        }
        Assert.Equal(FinishReason.Stop, last);
        Assert.Equal(text[..expectedCut], streamed.ToString());
    }

    [Fact]
    public void DecoderHoldsBackIncompleteCharacters()
    {
        var tok = new ByteTokenizer();
        var decoder = new StreamingTextDecoder(tok, Array.Empty<string>(), skipSpecial: true);
        var bytes = System.Text.Encoding.UTF8.GetBytes("好a");
        Assert.Equal("", decoder.Push(bytes[0]));
        Assert.Equal("", decoder.Push(bytes[1]));
        Assert.Equal("好", decoder.Push(bytes[2]));
        Assert.Equal("a", decoder.Push(bytes[3]));
    }

    [Fact]
    public void DecoderHoldsBackAPossibleStopStringPrefixAndReleasesItWhenItIsNot()
    {
        var tok = new ByteTokenizer();
        var decoder = new StreamingTextDecoder(tok, new[] { "END" }, skipSpecial: true);
        Assert.Equal("x", decoder.Push('x'));
        Assert.Equal("", decoder.Push('E'));
        Assert.Equal("", decoder.Push('N'));
        Assert.Equal("ENy", decoder.Push('y'));
        Assert.Equal("", decoder.Push('E'));
        Assert.Equal("", decoder.Push('N'));
        Assert.Equal("", decoder.Push('D'));
        Assert.True(decoder.StopStringHit);
        Assert.Equal("xENy", decoder.Text);
    }

    /// <summary>One token per byte, decoded as UTF-8 with replacement — enough to exercise the streaming decoder.</summary>
    private sealed class ByteTokenizer : IGlmTokenizer
    {
        public int VocabSize => 256;
        public int? EosId => null;
        public IReadOnlyList<int> Encode(string text) => System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();
        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => System.Text.Encoding.UTF8.GetString(ids.Select(i => (byte)i).ToArray());
        public int? SpecialTokenId(string token) => null;
        public bool IsSpecial(int id) => false;
    }
}
