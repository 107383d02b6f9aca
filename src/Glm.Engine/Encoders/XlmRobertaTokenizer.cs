using System.Text.Json;
using System.Text.Json.Nodes;
using Glm.Engine.Tokenization.SentencePiece;

namespace Glm.Engine.Encoders;

/// <summary>
/// The XLM-RoBERTa tokenizer (transformers <c>XLMRobertaTokenizer</c>/<c>Fast</c>): SentencePiece Unigram pieces in the
/// fairseq dictionary — &lt;s&gt;=0, &lt;pad&gt;=1, &lt;/s&gt;=2, &lt;unk&gt;=3, every other SentencePiece id + 1, and
/// &lt;mask&gt; = piece count + 1 (from <c>sentencepiece.bpe.model</c>; a <c>tokenizer.json</c> already lists the pieces in
/// that order). Single texts are <c>&lt;s&gt; … &lt;/s&gt;</c>, pairs <c>&lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;</c>.
/// </summary>
public sealed class XlmRobertaTokenizer : EncoderTokenizer
{
    private readonly SentencePieceUnigram _unigram;
    private readonly int _offset;

    private XlmRobertaTokenizer(SentencePieceUnigram unigram, int offset, int cls, int pad, int sep, int unk, int mask, int vocabSize)
    {
        _unigram = unigram;
        _offset = offset;
        (ClsId, PadId, SepId, UnkId, MaskId, VocabSize) = (cls, pad, sep, unk, mask, vocabSize);
    }

    private static XlmRobertaTokenizer FromSentencePiece(SentencePieceModel model, string source)
    {
        var unigram = new SentencePieceUnigram(model, source);
        return new XlmRobertaTokenizer(unigram, 1, 0, 1, 2, 3, unigram.Count + 1, unigram.Count + 2);
    }

    /// <summary>Loads <c>sentencepiece.bpe.model</c> (a Unigram model despite its name).</summary>
    public static XlmRobertaTokenizer Load(string path) => FromSentencePiece(SentencePieceModel.Load(path), path);

    /// <summary>Parses SentencePiece model bytes (tests build tiny models in memory).</summary>
    public static XlmRobertaTokenizer FromBytes(byte[] modelProto, string source = "sentencepiece model")
    {
        try
        {
            return FromSentencePiece(SentencePieceModel.Parse(modelProto), source);
        }
        catch (FormatException e)
        {
            throw new GlmException($"{source}: not a valid SentencePiece model ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Loads a Hugging Face <c>tokenizer.json</c> with a <c>Unigram</c> model (ids as listed in <c>model.vocab</c>), its
    /// <c>Precompiled</c> normalizer charsmap and <c>added_tokens</c> (special → never matched; others kept whole).
    /// </summary>
    public static XlmRobertaTokenizer LoadTokenizerJson(string path)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new GlmException($"{path}: expected a JSON object.");
        }
        catch (JsonException e)
        {
            throw new GlmException($"{path}: malformed JSON ({e.Message}).", e);
        }
        var model = root["model"] as JsonObject ?? throw new GlmException($"{path}: no \"model\" object.");
        string type = (model["type"] as JsonValue)?.ToString() ?? "";
        if (type != "Unigram")
            throw new GlmException($"{path}: model.type = '{type}'; expected Unigram (an XLM-RoBERTa tokenizer).");
        if (model["vocab"] is not JsonArray vocab || vocab.Count == 0)
            throw new GlmException($"{path}: model.vocab is missing or empty; expected [[piece, score], ...].");
        int unk = model["unk_id"] is JsonValue u && u.TryGetValue<int>(out int ui) ? ui
            : throw new GlmException($"{path}: model.unk_id is missing; expected the id of <unk>.");
        var added = new Dictionary<string, bool>(StringComparer.Ordinal);
        if (root["added_tokens"] is JsonArray addedTokens)
            foreach (var t in addedTokens.OfType<JsonObject>())
                if (t["content"] is JsonValue c && c.TryGetValue<string>(out var content))
                    added[content] = t["special"] is JsonValue sp && sp.TryGetValue<bool>(out bool special) && special;
        var pieces = new List<SentencePieceEntry>(vocab.Count);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocab.Count; i++)
        {
            if (vocab[i] is not JsonArray { Count: 2 } entry || entry[0] is not JsonValue pv || !pv.TryGetValue<string>(out var piece)
                || entry[1] is not JsonValue sv || !sv.TryGetValue<double>(out double score))
                throw new GlmException($"{path}: model.vocab[{i}] is not [string, number].");
            var kind = i == unk ? PieceType.Unknown
                : added.TryGetValue(piece, out bool isSpecial) ? (isSpecial ? PieceType.Control : PieceType.UserDefined)
                : PieceType.Normal;
            pieces.Add(new SentencePieceEntry(piece, (float)score, kind));
            ids.TryAdd(piece, i);
        }
        var spModel = new SentencePieceModel { Pieces = pieces, ModelType = 1, PrecompiledCharsMap = FindCharsMap(root["normalizer"], path) };
        int Id(string token) => ids.TryGetValue(token, out int id) ? id
            : throw new GlmException($"{path}: special token '{token}' is not in model.vocab; an XLM-RoBERTa tokenizer needs it.");
        int mask = ids.TryGetValue("<mask>", out int m) ? m : -1;
        return new XlmRobertaTokenizer(new SentencePieceUnigram(spModel, path), 0, Id("<s>"), Id("<pad>"), Id("</s>"), unk, mask, vocab.Count);
    }

    private static byte[] FindCharsMap(JsonNode? normalizer, string path)
    {
        if (normalizer is not JsonObject n) return [];
        if ((n["type"] as JsonValue)?.ToString() == "Precompiled" && n["precompiled_charsmap"] is JsonValue v && v.TryGetValue<string>(out var b64))
        {
            try { return Convert.FromBase64String(b64); }
            catch (FormatException e) { throw new GlmException($"{path}: normalizer precompiled_charsmap is not base64 ({e.Message}).", e); }
        }
        if (n["normalizers"] is JsonArray list)
            foreach (var child in list)
            {
                var found = FindCharsMap(child, path);
                if (found.Length > 0) return found;
            }
        return [];
    }

    /// <inheritdoc />
    public override int ClsId { get; }
    /// <inheritdoc />
    public override int PadId { get; }
    /// <inheritdoc />
    public override int SepId { get; }
    /// <inheritdoc />
    public override int UnkId { get; }
    /// <summary>Id of &lt;mask&gt; (−1 when a tokenizer.json has none).</summary>
    public int MaskId { get; }
    /// <inheritdoc />
    public override int VocabSize { get; }
    /// <inheritdoc />
    protected override bool BertPairs => false;

    /// <inheritdoc />
    public override IReadOnlyList<int> Tokenize(string text)
    {
        var pieces = _unigram.Encode(text);
        var ids = new int[pieces.Count];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = pieces[i] == _unigram.UnkId ? UnkId : pieces[i] + _offset;
        return ids;
    }

    /// <summary>The SentencePiece pieces of <paramref name="text"/> (for inspection and tests).</summary>
    public IReadOnlyList<string> Pieces(string text) => _unigram.Encode(text).Select(_unigram.Piece).ToList();
}
