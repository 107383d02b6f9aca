using System.Text;
using System.Text.Json;

namespace Glm.Engine.Tests.Tokenization;

/// <summary>
/// A small GLM-4-style rank table written by the tests (the real glm-4-9b-chat tokenizer.model is not available):
/// all 256 single bytes at rank = byte value, then a few merges whose ranks pin down the merge order.
/// </summary>
internal static class Glm4TestRanks
{
    public static readonly (string Token, int Rank)[] Merges =
    [
        ("bc", 256), ("ab", 257), ("aa", 258), ("ll", 259), ("el", 260), ("\u00E4\u00BD", 261),
        ("你", 262), ("你好", 263), ("\n\n", 264), ("123", 265), (" world", 266),
    ];

    /// <summary>Rank of the first special token (= number of ranks).</summary>
    public const int FirstSpecial = 267;

    /// <summary>Token bytes of a merge entry; entries given as Latin-1 escapes stand for raw bytes.</summary>
    public static byte[] BytesOf(string token) =>
        token.All(c => c < 256) && token.Any(c => c >= 128) ? Encoding.Latin1.GetBytes(token) : Encoding.UTF8.GetBytes(token);

    public static IEnumerable<(byte[] Bytes, int Rank)> All()
    {
        for (int b = 0; b < 256; b++) yield return ([(byte)b], b);
        foreach (var (token, rank) in Merges) yield return (BytesOf(token), rank);
    }

    public static string WriteRankFile(string dir)
    {
        string path = Path.Combine(dir, "tokenizer.model");
        File.WriteAllLines(path, All().Select(e => $"{Convert.ToBase64String(e.Bytes)} {e.Rank}"));
        return path;
    }

    /// <summary>Writes the same table as an HF tokenizer.json (ByteLevel alphabet, GLM-4 Split regex, added tokens).</summary>
    public static string WriteTokenizerJson(string dir, IReadOnlyList<string> specials)
    {
        var alphabet = ByteToUnicode();
        var vocab = All().ToDictionary(e => string.Concat(e.Bytes.Select(b => alphabet[b])), e => e.Rank);
        var doc = new
        {
            version = "1.0",
            added_tokens = specials.Select((s, i) => new { id = FirstSpecial + i, content = s, special = true }),
            pre_tokenizer = new
            {
                type = "Sequence",
                pretokenizers = new object[]
                {
                    new { type = "Split", pattern = new { Regex = Glm.Engine.Tokenization.Tiktoken.Glm4PreTokenizer.Glm4Pattern }, behavior = "Isolated", invert = false },
                    new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = false },
                },
            },
            model = new { type = "BPE", vocab, merges = Array.Empty<string>() },
        };
        string path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, JsonSerializer.Serialize(doc));
        return path;
    }

    private static char[] ByteToUnicode()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }
}
