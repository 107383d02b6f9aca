using System.Text;
using Glm.Engine.Tokenization.Tiktoken;

namespace Glm.Engine.Tokenization;

/// <summary>
/// The GLM-4 tokenizer: tiktoken byte-level BPE over a rank table (the tiktoken <c>tokenizer.model</c> of
/// glm-4-9b-chat, or the equivalent HF <c>tokenizer.json</c>), the cl100k-style pre-tokenizer regex, and 14 special
/// tokens (<c>&lt;|endoftext|&gt;</c> … <c>&lt;|end_of_video|&gt;</c>) that follow the ranks (151329.. for the real file).
/// </summary>
public sealed class Glm4Tokenizer : IGlmTokenizer
{
    /// <summary>Special tokens in id order; the first id is the number of ranks.</summary>
    public static readonly IReadOnlyList<string> SpecialTokens =
    [
        "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
        "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
    ];

    private readonly TiktokenRanks _ranks;
    private readonly SpecialTokenTable _specials;
    private readonly Glm4PreTokenizer _preTokenizer;

    internal Glm4Tokenizer(TiktokenRanks ranks, SpecialTokenTable specials, Glm4PreTokenizer preTokenizer)
    {
        _ranks = ranks;
        _specials = specials;
        _preTokenizer = preTokenizer;
    }

    /// <summary>Loads a tiktoken rank file (<c>&lt;base64&gt; &lt;rank&gt;</c> lines); specials get ids from the rank count on.</summary>
    public static Glm4Tokenizer LoadTiktoken(string rankFilePath)
    {
        var ranks = TiktokenRanks.Load(rankFilePath);
        return new Glm4Tokenizer(ranks, new SpecialTokenTable(ranks.MaxRank + 1, SpecialTokens), new Glm4PreTokenizer());
    }

    /// <summary>Loads an HF <c>tokenizer.json</c> (BPE + ByteLevel) of the -hf / 0414 repos; same ids as the tiktoken path.</summary>
    public static Glm4Tokenizer LoadHfTokenizerJson(string tokenizerJsonPath) => HfTokenizerJsonReader.Load(tokenizerJsonPath);

    /// <inheritdoc />
    public int VocabSize => Math.Max(_ranks.MaxRank + 1, _specials.IdsByToken.Values.DefaultIfEmpty(-1).Max() + 1);

    /// <inheritdoc />
    public int? EosId => _specials.IdOf("<|endoftext|>");

    /// <summary>Ids of the text; special-token strings in it are encoded as ordinary text.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>(text.Length / 2 + 1);
        foreach (string piece in _preTokenizer.Split(text)) TiktokenBpe.EncodePiece(_ranks, piece, ids);
        return ids;
    }

    /// <summary>
    /// Concatenates token bytes and decodes them as UTF-8 with U+FFFD for invalid sequences; specials become their
    /// strings (omitted when <paramref name="skipSpecialTokens"/>); unknown ids are ignored.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (_specials.TryGetToken(id, out string token))
            {
                Flush(text, bytes);
                if (!skipSpecialTokens) text.Append(token);
            }
            else if (_ranks.BytesOf(id) is { } tokenBytes)
            {
                bytes.AddRange(tokenBytes);
            }
        }
        Flush(text, bytes);
        return text.ToString();
    }

    /// <summary>Pieces the pre-tokenizer regex cuts <paramref name="text"/> into (for diagnostics and tests).</summary>
    public IReadOnlyList<string> PreTokenize(string text) => _preTokenizer.Split(text);

    /// <inheritdoc />
    public int? SpecialTokenId(string token) => _specials.IdOf(token switch
    {
        "sop" => "<sop>",
        "eop" => "<eop>",
        "<eos>" => "<|endoftext|>",
        _ => token,
    });

    /// <inheritdoc />
    public bool IsSpecial(int id) => _specials.TryGetToken(id, out _);

    private static void Flush(StringBuilder text, List<byte> bytes)
    {
        if (bytes.Count == 0) return;
        text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        bytes.Clear();
    }
}
