using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Glm.Engine.Training.Data;
using Microsoft.ML.Tokenizers;

namespace Glm.Engine.Tokenization.Training;

/// <summary>
/// Our own byte-level BPE tokenizer, trained by <see cref="BpeTokenizerTrainer"/>. A model folder holds
/// <c>tokenizer.tiktoken</c> (one <c>&lt;base64 token bytes&gt; &lt;rank&gt;</c> line per rank, ranks 0..N−1, the same
/// format as GLM-4's tokenizer.model) and <c>tokenizer_config.json</c> (<c>pattern</c>: pre-tokenizer regex;
/// <c>rank_count</c>: N; <c>special_tokens</c>: name → id, ids ≥ N). Encoding runs through Microsoft.ML.Tokenizers'
/// <see cref="TiktokenTokenizer"/>; special-token text in the input is encoded as plain text.
/// </summary>
public sealed class OwnBpeTokenizer : IGlmTokenizer
{
    private static readonly Dictionary<string, string[]> Aliases = new()
    {
        ["sop"] = ["<sop>", "sop", "<|startofpiece|>"], ["<sop>"] = ["<sop>", "sop", "<|startofpiece|>"], ["<|startofpiece|>"] = ["<sop>"],
        ["eop"] = ["<eop>", "eop", "<|endofpiece|>"], ["<eop>"] = ["<eop>", "eop", "<|endofpiece|>"], ["<|endofpiece|>"] = ["<eop>"],
    };

    private readonly TiktokenTokenizer _tiktoken;
    private readonly byte[][] _rankBytes;
    private readonly Dictionary<string, int> _specialIds;
    private readonly Dictionary<int, string> _specialNames;

    private OwnBpeTokenizer(TiktokenTokenizer tiktoken, byte[][] rankBytes, Dictionary<string, int> specials, string pattern)
    {
        _tiktoken = tiktoken;
        _rankBytes = rankBytes;
        _specialIds = specials;
        _specialNames = specials.ToDictionary(kv => kv.Value, kv => kv.Key);
        Pattern = pattern;
        VocabSize = Math.Max(rankBytes.Length, specials.Count == 0 ? 0 : specials.Values.Max() + 1);
        SpecialTokens = GlmSpecialTokens.FromTokenizer(this);
    }

    /// <inheritdoc />
    public int VocabSize { get; }

    /// <inheritdoc />
    public int? EosId => SpecialTokenId("<|endoftext|>");

    /// <summary>Number of BPE ranks (ids below it are byte-string tokens).</summary>
    public int RankCount => _rankBytes.Length;

    /// <summary>Pre-tokenizer regex.</summary>
    public string Pattern { get; }

    /// <summary>GLM control-token ids for <see cref="BlankInfillingCollator"/> and <see cref="PackedSampleStream"/>.</summary>
    public GlmSpecialTokens SpecialTokens { get; }

    /// <summary>Byte string of rank <paramref name="id"/>.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => _rankBytes[id];

    /// <summary>Loads <c>tokenizer.tiktoken</c> and <c>tokenizer_config.json</c> from <paramref name="modelDir"/>.</summary>
    /// <exception cref="GlmException">A file is missing or malformed (message names file, line/field and value).</exception>
    public static OwnBpeTokenizer Load(string modelDir)
    {
        string rankPath = Path.Combine(modelDir, BpeTokenizerTrainer.RankFileName);
        string configPath = Path.Combine(modelDir, BpeTokenizerTrainer.ConfigFileName);
        foreach (var p in new[] { rankPath, configPath })
            if (!File.Exists(p)) throw new GlmException($"Tokenizer file '{p}' does not exist; expected {BpeTokenizerTrainer.RankFileName} and {BpeTokenizerTrainer.ConfigFileName} written by BpeTokenizerTrainer.");

        string pattern;
        int rankCount;
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
            var root = doc.RootElement;
            pattern = Field(root, "pattern", configPath).GetString() ?? "";
            rankCount = Field(root, "rank_count", configPath).GetInt32();
            foreach (var p in Field(root, "special_tokens", configPath).EnumerateObject()) specials[p.Name] = p.Value.GetInt32();
            _ = new Regex(pattern);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new GlmException($"Tokenizer config '{configPath}' is malformed: {e.Message}. Expected JSON with string 'pattern', integer 'rank_count' and object 'special_tokens' (name → id).", e);
        }

        var lines = File.ReadAllLines(rankPath, Encoding.UTF8).Where(l => l.Length > 0).ToArray();
        if (lines.Length != rankCount)
            throw new GlmException($"Tokenizer file '{rankPath}' has {lines.Length} ranks but '{configPath}' field rank_count = {rankCount}.");
        var rankBytes = new byte[rankCount][];
        for (int i = 0; i < lines.Length; i++)
        {
            var parts = lines[i].Split(' ');
            if (parts.Length != 2 || !int.TryParse(parts[1], out int rank) || rank != i)
                throw new GlmException($"Tokenizer file '{rankPath}' line {i + 1} = '{lines[i]}': expected '<base64> {i}' (ranks 0..N-1 in order).");
            try { rankBytes[i] = Convert.FromBase64String(parts[0]); }
            catch (FormatException) { throw new GlmException($"Tokenizer file '{rankPath}' line {i + 1}: '{parts[0]}' is not base64."); }
        }
        foreach (var (name, id) in specials)
            if (id < rankCount) throw new GlmException($"Tokenizer config '{configPath}': special token {name} has id {id}; expected an id ≥ rank_count ({rankCount}).");

        TiktokenTokenizer tiktoken;
        using (var stream = File.OpenRead(rankPath))
            tiktoken = TiktokenTokenizer.Create(stream, new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), null), normalizer: null,
                specialTokens: new Dictionary<string, int>());
        return new OwnBpeTokenizer(tiktoken, rankBytes, specials, pattern);
    }

    /// <summary>Texts longer than this are encoded in chunks (keeps long novels fast and memory flat).</summary>
    private const int ChunkChars = 8192;

    /// <inheritdoc />
    /// <remarks>Long texts are cut just after a line break that is followed by a non-space character: no
    /// pre-tokenizer piece of the GLM-4 pattern can span such a point, so the ids equal those of one whole-text call.</remarks>
    public IReadOnlyList<int> Encode(string text)
    {
        if (text.Length <= 2 * ChunkChars) return _tiktoken.EncodeToIds(text);
        var ids = new List<int>(text.Length);
        int start = 0;
        while (start < text.Length)
        {
            int end = start + ChunkChars;
            while (end < text.Length && !(text[end - 1] == '\n' && !char.IsWhiteSpace(text[end]))) end++;
            if (text.Length - end < ChunkChars / 4) end = text.Length; // no tiny tail chunk
            ids.AddRange(_tiktoken.EncodeToIds(text.AsSpan(start, end - start)));
            start = end;
        }
        return ids;
    }

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        var pending = new List<byte>();
        void Flush() { if (pending.Count > 0) { sb.Append(Encoding.UTF8.GetString(pending.ToArray())); pending.Clear(); } }
        foreach (int id in ids)
        {
            if (id >= 0 && id < _rankBytes.Length) { pending.AddRange(_rankBytes[id]); continue; }
            Flush(); // token bytes may split a UTF-8 character, so bytes are joined before decoding
            if (_specialNames.TryGetValue(id, out var name)) { if (!skipSpecialTokens) sb.Append(name); }
            else throw new GlmException($"Token id {id} is outside the vocabulary (0..{VocabSize - 1}).");
        }
        Flush();
        return sb.ToString();
    }

    /// <inheritdoc />
    public int? SpecialTokenId(string token)
    {
        if (_specialIds.TryGetValue(token, out int id)) return id;
        if (Aliases.TryGetValue(token, out var names))
            foreach (var n in names) if (_specialIds.TryGetValue(n, out id)) return id;
        return null;
    }

    /// <inheritdoc />
    public bool IsSpecial(int id) => _specialNames.ContainsKey(id);

    private static JsonElement Field(JsonElement root, string name, string path) =>
        root.TryGetProperty(name, out var v) ? v : throw new GlmException($"Tokenizer config '{path}' has no field '{name}'.");
}
