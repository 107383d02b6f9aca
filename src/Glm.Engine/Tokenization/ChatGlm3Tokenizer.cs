using Glm.Engine.Tokenization.SentencePiece;

namespace Glm.Engine.Tokenization;

/// <summary>
/// The ChatGLM3-6B tokenizer: SentencePiece BPE <c>tokenizer.model</c> (byte fallback, identity normalizer, dummy
/// prefix per encode call) plus nine special tokens appended at id 64789 (<c>[MASK]</c> … <c>&lt;|observation|&gt;</c>).
/// </summary>
public sealed class ChatGlm3Tokenizer : IGlmTokenizer
{
    /// <summary>Special tokens in id order starting at <see cref="FirstSpecialId"/>.</summary>
    public static readonly IReadOnlyList<string> SpecialTokens =
        ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"];

    /// <summary>Id of the first special token (= number of SentencePiece pieces in the ChatGLM3 model).</summary>
    public const int FirstSpecialId = 64789;

    private readonly SentencePieceBpe _sp;
    private readonly SpecialTokenTable _specials;

    private ChatGlm3Tokenizer(SentencePieceBpe sp)
    {
        _sp = sp;
        _specials = new SpecialTokenTable(sp.PieceCount, SpecialTokens);
    }

    /// <summary>Loads <c>tokenizer.model</c>; a missing or invalid file raises <see cref="GlmException"/>.</summary>
    public static ChatGlm3Tokenizer Load(string tokenizerModelPath)
    {
        var model = SentencePieceModel.Load(tokenizerModelPath);
        try
        {
            return new ChatGlm3Tokenizer(new SentencePieceBpe(model));
        }
        catch (FormatException e)
        {
            throw new GlmException($"'{tokenizerModelPath}' cannot serve as the ChatGLM3 tokenizer: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public int VocabSize => _sp.PieceCount + _specials.Count;

    /// <inheritdoc />
    public int? EosId => 2;

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text) => _sp.Encode(text);

    /// <summary>
    /// Decodes like <c>tokenization_chatglm.py</c>: specials as literal strings (omitted when
    /// <paramref name="skipSpecialTokens"/>), ids 0/1/2 (unk/bos/eos) as empty, runs between specials decoded separately.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) =>
        SentencePieceRunDecoder.Decode(_sp, _specials, ids, skipSpecialTokens, id => id <= 2);

    /// <inheritdoc />
    public int? SpecialTokenId(string token) => token switch
    {
        "<unk>" or "<pad>" => 0,
        "<s>" or "<bos>" => 1,
        "</s>" or "<eos>" => 2,
        _ => _specials.IdOf(token),
    };

    /// <inheritdoc />
    public bool IsSpecial(int id) => id is >= 0 and <= 2 || _specials.TryGetToken(id, out _);
}
