using Glm.Engine.Tokenization;

namespace Glm.Engine.Training.Data;

/// <summary>
/// Ids of the control tokens the GLM pretraining pipeline needs, so the collator works with the original GLM
/// Chinese vocabulary (<see cref="GlmChinese"/>) as well as with our own BPE tokenizer.
/// </summary>
/// <param name="Cls">[CLS], prepended to every sample.</param>
/// <param name="Mask">[MASK], short-span blank.</param>
/// <param name="SentenceMask">[sMASK], sentence-level blank.</param>
/// <param name="GenerationMask">[gMASK], document-level (suffix) blank.</param>
/// <param name="Sop">Start of a Part-B span.</param>
/// <param name="Eop">End of a Part-B span.</param>
/// <param name="Eos">&lt;|endoftext|&gt;, document separator.</param>
/// <param name="Pad">Padding token (may equal <paramref name="Eos"/>).</param>
public sealed record GlmSpecialTokens(int Cls, int Mask, int SentenceMask, int GenerationMask, int Sop, int Eop, int Eos, int Pad)
{
    /// <summary>Ids of glm-large-chinese / glm-10b-chinese (HF ids, glm-formats §1.3).</summary>
    public static GlmSpecialTokens GlmChinese { get; } = new(50002, 50003, 50008, 50009, 50006, 50007, 50000, 50000);

    /// <summary>Looks the tokens up by name in <paramref name="tokenizer"/> (several spellings of sop/eop/pad accepted).</summary>
    /// <exception cref="GlmException">A required token is missing from the tokenizer.</exception>
    public static GlmSpecialTokens FromTokenizer(IGlmTokenizer tokenizer)
    {
        int Find(params string[] names)
        {
            foreach (var name in names)
                if (tokenizer.SpecialTokenId(name) is int id) return id;
            throw new GlmException($"Tokenizer has no special token {string.Join(" / ", names)}; GLM blank infilling needs it.");
        }
        int eos = Find("<|endoftext|>");
        int pad = tokenizer.SpecialTokenId("<pad>") ?? eos;
        return new GlmSpecialTokens(Find("[CLS]"), Find("[MASK]"), Find("[sMASK]"), Find("[gMASK]"),
            Find("sop", "<sop>", "<|startofpiece|>"), Find("eop", "<eop>", "<|endofpiece|>"), eos, pad);
    }
}
