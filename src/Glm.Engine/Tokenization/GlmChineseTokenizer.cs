using Glm.Engine.Tokenization.SentencePiece;

namespace Glm.Engine.Tokenization;

/// <summary>
/// The original GLM Chinese tokenizer (glm-large-chinese / glm-10b-chinese): SentencePiece BPE
/// <c>cog-pretrain.model</c> with the <c>nmt_nfkc</c> precompiled normalizer and no byte fallback, plus the command
/// tokens at ids 50000–50009.
/// </summary>
public sealed class GlmChineseTokenizer : IGlmTokenizer
{
    /// <summary>Command tokens in id order starting at 50000 (THUDM/GLM with <c>--fix-command-token</c>).</summary>
    public static readonly IReadOnlyList<string> CommandTokens =
    [
        "<|endoftext|>", "[SEP]", "[CLS]", "[MASK]", "[UNUSED1]", "[UNUSED2]",
        "<|startofpiece|>", "<|endofpiece|>", "[sMASK]", "[gMASK]",
    ];

    private readonly SentencePieceBpe _sp;
    private readonly SpecialTokenTable _specials;

    private GlmChineseTokenizer(SentencePieceBpe sp)
    {
        _sp = sp;
        _specials = new SpecialTokenTable(sp.PieceCount, CommandTokens);
    }

    /// <summary>Loads <c>cog-pretrain.model</c>; a missing or invalid file raises <see cref="GlmException"/>.</summary>
    public static GlmChineseTokenizer Load(string modelPath)
    {
        var model = SentencePieceModel.Load(modelPath);
        try
        {
            return new GlmChineseTokenizer(new SentencePieceBpe(model));
        }
        catch (FormatException e)
        {
            throw new GlmException($"'{modelPath}' cannot serve as the GLM Chinese tokenizer: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public int VocabSize => _sp.PieceCount + _specials.Count;

    /// <inheritdoc />
    public int? EosId => _specials.IdOf("<|endoftext|>");

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text) => _sp.Encode(text);

    /// <summary>
    /// Command tokens as literal strings (omitted when <paramref name="skipSpecialTokens"/>), other runs decoded by
    /// SentencePiece (unknown pieces as " ⁇ "). Unlike HF's slow decode, no spaces are inserted around command tokens.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) =>
        SentencePieceRunDecoder.Decode(_sp, _specials, ids, skipSpecialTokens, id => skipSpecialTokens && id <= 2);

    /// <inheritdoc />
    public int? SpecialTokenId(string token) => token switch
    {
        "sop" or "<sop>" => _specials.IdOf("<|startofpiece|>"),
        "eop" or "<eop>" => _specials.IdOf("<|endofpiece|>"),
        "<unk>" => 0,
        _ => _specials.IdOf(token),
    };

    /// <inheritdoc />
    public bool IsSpecial(int id) => id is >= 0 and <= 2 || _specials.TryGetToken(id, out _);
}
