using System.Text;
using Glm.Engine.Tokenization;

namespace Glm.Connector.Tests.Support;

/// <summary>Real tokenizers for tests: ChatGLM3's from ../shared, and a byte-level GLM-4 tiktoken table written to a temp file.</summary>
internal static class TestTokenizers
{
    private static readonly Lazy<IGlmTokenizer> ChatGlm3Lazy = new(() => ChatGlm3Tokenizer.Load(SharedData.PathOf(SharedData.ChatGlm3Tokenizer)));
    private static readonly Lazy<IGlmTokenizer> Glm4Lazy = new(CreateGlm4);

    /// <summary>The real chatglm3-6b tokenizer (needs ../shared; use with [SharedDataFact]).</summary>
    public static IGlmTokenizer ChatGlm3 => ChatGlm3Lazy.Value;

    /// <summary>A GLM-4 tokenizer over 256 byte ranks plus a few merges (specials follow: 267..).</summary>
    public static IGlmTokenizer Glm4 => Glm4Lazy.Value;

    private static IGlmTokenizer CreateGlm4()
    {
        string dir = Directory.CreateTempSubdirectory("glm4tok").FullName;
        string path = Path.Combine(dir, "tokenizer.model");
        var lines = new List<string>();
        for (int b = 0; b < 256; b++) lines.Add($"{Convert.ToBase64String([(byte)b])} {b}");
        string[] merges = ["\n\n", "ab", "bc", "aa", "ll", "el", "er", "ea", "th", "he", "in", "on", "an", "re", "at", "en", "ti", "{\"", "\"}"];
        for (int i = 0; i < merges.Length; i++) lines.Add($"{Convert.ToBase64String(Encoding.UTF8.GetBytes(merges[i]))} {256 + i}");
        File.WriteAllLines(path, lines);
        return Glm4Tokenizer.LoadTiktoken(path);
    }
}
