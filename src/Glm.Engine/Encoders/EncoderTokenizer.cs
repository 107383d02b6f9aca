namespace Glm.Engine.Encoders;

/// <summary>Token ids ready for the encoder: input ids and token types (0 for the first segment, 1 for the second in BERT).</summary>
/// <param name="Ids">Input ids including the special tokens.</param>
/// <param name="TypeIds">Token type per id (same length).</param>
public sealed record EncodedText(int[] Ids, int[] TypeIds);

/// <summary>
/// Tokenizer of an encoder model: text → ids without special tokens (<see cref="Tokenize"/>), plus the model's framing of
/// one text (<c>[CLS] a [SEP]</c> / <c>&lt;s&gt; a &lt;/s&gt;</c>) or a pair (<c>[CLS] a [SEP] b [SEP]</c> /
/// <c>&lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;</c>) with Hugging Face's truncation rules.
/// </summary>
public abstract class EncoderTokenizer
{
    /// <summary>Id of the sequence-start token ([CLS] or &lt;s&gt;).</summary>
    public abstract int ClsId { get; }
    /// <summary>Id of the separator / end token ([SEP] or &lt;/s&gt;).</summary>
    public abstract int SepId { get; }
    /// <summary>Id of the padding token.</summary>
    public abstract int PadId { get; }
    /// <summary>Id of the unknown token.</summary>
    public abstract int UnkId { get; }
    /// <summary>Number of ids the tokenizer can produce (the model's vocab_size must be at least this).</summary>
    public abstract int VocabSize { get; }

    /// <summary>True for BERT-style pairs (a single [SEP] between segments, token type 1 for the second segment).</summary>
    protected abstract bool BertPairs { get; }

    /// <summary>Ids of <paramref name="text"/> without special tokens.</summary>
    public abstract IReadOnlyList<int> Tokenize(string text);

    /// <summary>
    /// <c>CLS + ids + SEP</c>, the text truncated from the end so the whole fits <paramref name="maxLength"/> (≥ 2).
    /// </summary>
    public EncodedText Encode(string text, int maxLength)
    {
        if (maxLength < 2) throw new GlmException($"max length {maxLength}: expected at least 2 (room for the special tokens).");
        var ids = Tokenize(text);
        int keep = Math.Min(ids.Count, maxLength - 2);
        var result = new int[keep + 2];
        result[0] = ClsId;
        for (int i = 0; i < keep; i++) result[i + 1] = ids[i];
        result[^1] = SepId;
        return new EncodedText(result, new int[result.Length]);
    }

    /// <summary>
    /// A query–passage pair framed for a cross-encoder. When too long, tokens are removed one at a time from the end of the
    /// longer segment (the second when equal) — transformers' <c>longest_first</c> truncation.
    /// </summary>
    public EncodedText EncodePair(string first, string second, int maxLength)
    {
        int specials = BertPairs ? 3 : 4;
        if (maxLength < specials + 2)
            throw new GlmException($"max length {maxLength}: expected at least {specials + 2} for a text pair.");
        var a = Tokenize(first).ToList();
        var b = Tokenize(second).ToList();
        while (a.Count + b.Count > maxLength - specials)
        {
            if (a.Count > b.Count) a.RemoveAt(a.Count - 1);
            else b.RemoveAt(b.Count - 1);
        }
        var ids = new List<int>(a.Count + b.Count + specials) { ClsId };
        ids.AddRange(a);
        ids.Add(SepId);
        if (!BertPairs) ids.Add(SepId);
        int secondStart = ids.Count;
        ids.AddRange(b);
        ids.Add(SepId);
        var types = new int[ids.Count];
        if (BertPairs)
            for (int i = secondStart; i < types.Length; i++) types[i] = 1;
        return new EncodedText(ids.ToArray(), types);
    }

    /// <summary>
    /// Loads the tokenizer of an encoder folder: <c>vocab.txt</c> (+ <c>tokenizer_config.json</c>) for BERT,
    /// <c>sentencepiece.bpe.model</c> (else a Unigram <c>tokenizer.json</c>) for XLM-RoBERTa.
    /// </summary>
    public static EncoderTokenizer Load(string folder, EncoderFamily family)
    {
        if (family == EncoderFamily.Bert)
        {
            string vocab = Path.Combine(folder, "vocab.txt");
            if (!File.Exists(vocab))
                throw new GlmException($"{folder}: no vocab.txt; a BERT encoder folder needs its WordPiece vocabulary (vocab.txt).");
            return BertWordPieceTokenizer.Load(folder);
        }
        foreach (var name in new[] { "sentencepiece.bpe.model", "spiece.model", "tokenizer.model" })
        {
            string path = Path.Combine(folder, name);
            if (File.Exists(path)) return XlmRobertaTokenizer.Load(path);
        }
        string json = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(json)) return XlmRobertaTokenizer.LoadTokenizerJson(json);
        throw new GlmException($"{folder}: no sentencepiece.bpe.model or tokenizer.json; an XLM-RoBERTa encoder folder needs its " +
                               "SentencePiece Unigram tokenizer.");
    }
}
