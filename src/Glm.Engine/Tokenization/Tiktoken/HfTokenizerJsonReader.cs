using System.Text;
using System.Text.Json;

namespace Glm.Engine.Tokenization.Tiktoken;

/// <summary>
/// Reads an HF <c>tokenizer.json</c> converted from GLM-4's tiktoken ranks (model BPE, ByteLevel alphabet,
/// Split(regex) pre-tokenizer). Vocabulary ids are the tiktoken ranks, so tiktoken's lowest-rank merging reproduces the
/// BPE merges; <c>added_tokens</c> give the special tokens.
/// </summary>
internal static class HfTokenizerJsonReader
{
    public static Glm4Tokenizer Load(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GlmException($"Cannot read '{path}': {e.Message}", e);
        }
        catch (JsonException e)
        {
            throw new GlmException($"'{path}' is not valid JSON (an HF tokenizer.json expected): {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new GlmException($"'{path}': field 'model' missing (an HF tokenizer.json with a BPE model expected).");
            string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
            if (type != "BPE")
                throw new GlmException($"'{path}': model.type is '{type}', expected 'BPE' (GLM-4 byte-level BPE).");
            if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
                throw new GlmException($"'{path}': field 'model.vocab' missing (token → id object expected).");

            var unicodeToByte = ByteLevelAlphabet();
            var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var entry in vocab.EnumerateObject())
            {
                var bytes = new StringBuilder(entry.Name.Length);
                foreach (char c in entry.Name)
                {
                    if (!unicodeToByte.TryGetValue(c, out byte b))
                        throw new GlmException($"'{path}': vocab token '{entry.Name}' has character U+{(int)c:X4} outside the ByteLevel alphabet (GLM-4 byte-level vocab expected).");
                    bytes.Append((char)b);
                }
                ranks[bytes.ToString()] = entry.Value.GetInt32();
            }

            var specials = new List<KeyValuePair<string, int>>();
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var token in added.EnumerateArray())
                    specials.Add(new(token.GetProperty("content").GetString()!, token.GetProperty("id").GetInt32()));

            string pattern = FindSplitPattern(root) ?? Glm4PreTokenizer.Glm4Pattern;
            return new Glm4Tokenizer(new TiktokenRanks(ranks), new SpecialTokenTable(specials), new Glm4PreTokenizer(pattern));
        }
    }

    /// <summary>The regex of a <c>Split</c> pre-tokenizer (possibly inside a <c>Sequence</c>), if any.</summary>
    private static string? FindSplitPattern(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return null;
        IEnumerable<JsonElement> steps = pre.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray()
            : [pre];
        foreach (var step in steps)
        {
            if (step.TryGetProperty("type", out var type) && type.GetString() == "Split"
                && step.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("Regex", out var regex))
                return regex.GetString();
        }
        return null;
    }

    /// <summary>GPT-2's <c>bytes_to_unicode</c> inverted: printable stand-in character → byte.</summary>
    private static Dictionary<char, byte> ByteLevelAlphabet()
    {
        var map = new Dictionary<char, byte>(256);
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[printable ? (char)b : (char)(256 + next++)] = (byte)b;
        }
        return map;
    }
}
