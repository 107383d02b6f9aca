namespace Glm.Engine.Tokenization;

/// <summary>
/// A tokenizer of one GLM family member. Ids equal those of the reference (Python) tokenizer of that model.
/// </summary>
public interface IGlmTokenizer
{
    /// <summary>Number of ids the tokenizer can produce, special tokens included.</summary>
    int VocabSize { get; }

    /// <summary>The end-of-text id (<c>&lt;/s&gt;</c>, <c>&lt;|endoftext|&gt;</c>); null if the model has none.</summary>
    int? EosId { get; }

    /// <summary>Ids of <paramref name="text"/> alone: no prefix tokens; special-token strings are treated as plain text.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>Text of <paramref name="ids"/>; special tokens appear as their literal strings unless skipped.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The id of a special token such as <c>[gMASK]</c>, <c>sop</c>/<c>&lt;sop&gt;</c>, <c>&lt;|user|&gt;</c>; null if this tokenizer has none.</summary>
    int? SpecialTokenId(string token);

    /// <summary>True for ids of special (control) tokens.</summary>
    bool IsSpecial(int id);
}
