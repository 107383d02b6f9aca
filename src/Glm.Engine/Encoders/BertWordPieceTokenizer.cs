using System.Globalization;
using System.Text;

namespace Glm.Engine.Encoders;

/// <summary>
/// The BERT tokenizer of Hugging Face (<c>BertTokenizer</c>/<c>BertTokenizerFast</c>): clean text (drop NUL, U+FFFD and
/// control characters, map whitespace to spaces), surround every CJK ideograph with spaces, split on whitespace, lower-case
/// and strip accents (NFD, drop combining marks) as configured, split off punctuation, then greedy longest-match-first
/// WordPiece with <c>##</c> continuations; a word with no full match, or longer than 100 characters, becomes [UNK].
/// Special tokens written literally in the text ([CLS], [SEP], [PAD], [UNK], [MASK]) are kept as one token.
/// </summary>
public sealed class BertWordPieceTokenizer : EncoderTokenizer
{
    private const int MaxCharsPerWord = 100;
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _specials;

    /// <summary>Lower-cases text before WordPiece (tokenizer_config.json <c>do_lower_case</c>, default true).</summary>
    public bool LowerCase { get; }
    /// <summary>Strips accents (tokenizer_config.json <c>strip_accents</c>; null follows <see cref="LowerCase"/>).</summary>
    public bool StripAccents { get; }
    /// <summary>Puts spaces around CJK ideographs (<c>tokenize_chinese_chars</c>, default true).</summary>
    public bool SplitChinese { get; }

    /// <inheritdoc />
    public override int ClsId { get; }
    /// <inheritdoc />
    public override int SepId { get; }
    /// <inheritdoc />
    public override int PadId { get; }
    /// <inheritdoc />
    public override int UnkId { get; }
    /// <inheritdoc />
    public override int VocabSize { get; }
    /// <inheritdoc />
    protected override bool BertPairs => true;

    /// <summary>Builds the tokenizer from vocabulary lines (line i has id i) and the normalisation options.</summary>
    public BertWordPieceTokenizer(IReadOnlyList<string> vocabLines, bool lowerCase = true, bool? stripAccents = null,
        bool splitChinese = true, string source = "vocab.txt")
    {
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocabLines.Count; i++) _vocab[vocabLines[i]] = i;
        VocabSize = vocabLines.Count;
        LowerCase = lowerCase;
        StripAccents = stripAccents ?? lowerCase;
        SplitChinese = splitChinese;
        int Special(string token) => _vocab.TryGetValue(token, out int id) ? id
            : throw new GlmException($"{source}: special token '{token}' is not in the vocabulary; a BERT vocab.txt must contain it.");
        ClsId = Special("[CLS]");
        SepId = Special("[SEP]");
        PadId = Special("[PAD]");
        UnkId = Special("[UNK]");
        _specials = new[] { "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]" }.Where(_vocab.ContainsKey).ToArray();
    }

    /// <summary>Loads <c>vocab.txt</c> and the options of <c>tokenizer_config.json</c> (when present) from a folder.</summary>
    public static BertWordPieceTokenizer Load(string folder)
    {
        string path = Path.Combine(folder, "vocab.txt");
        string[] lines;
        try { lines = File.ReadAllText(path, Encoding.UTF8).Split('\n'); }
        catch (IOException e) { throw new GlmException($"{path}: cannot be read ({e.Message}).", e); }
        // HF load_vocab strips the trailing newline of each line; a final empty line is not a token.
        var tokens = lines.Select(l => l.TrimEnd('\r')).ToList();
        if (tokens.Count > 0 && tokens[^1].Length == 0) tokens.RemoveAt(tokens.Count - 1);
        var cfg = JsonFields.TryLoad(Path.Combine(folder, "tokenizer_config.json"));
        bool lower = cfg?.BoolOr("do_lower_case", true) ?? true;
        bool? strip = cfg?.NullableBool("strip_accents");
        bool chinese = cfg?.BoolOr("tokenize_chinese_chars", true) ?? true;
        return new BertWordPieceTokenizer(tokens, lower, strip, chinese, path);
    }

    /// <summary>The id of a vocabulary token, or null.</summary>
    public int? IdOf(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    /// <inheritdoc />
    public override IReadOnlyList<int> Tokenize(string text)
    {
        var ids = new List<int>();
        int start = 0;
        while (start <= text.Length)
        {
            var (at, special) = NextSpecial(text, start);
            TokenizePlain(text.AsSpan(start, at - start), ids);
            if (special is null) break;
            ids.Add(_vocab[special]);
            start = at + special.Length;
        }
        return ids;
    }

    private (int At, string? Special) NextSpecial(string text, int from)
    {
        int best = text.Length;
        string? found = null;
        foreach (var s in _specials)
        {
            int i = text.IndexOf(s, from, StringComparison.Ordinal);
            if (i >= 0 && i < best) (best, found) = (i, s);
        }
        return (best, found);
    }

    private void TokenizePlain(ReadOnlySpan<char> text, List<int> ids)
    {
        foreach (var word in BasicTokenize(text))
            WordPiece(word, ids);
    }

    /// <summary>HF BasicTokenizer: clean, space out CJK, split on whitespace, lower/strip accents, split punctuation.</summary>
    internal List<string> BasicTokenize(ReadOnlySpan<char> text)
    {
        var cleaned = new StringBuilder(text.Length + 16);
        foreach (var rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune)) cleaned.Append(' ');
            else if (SplitChinese && IsChineseChar(cp)) cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            else cleaned.Append(rune.ToString());
        }
        var words = new List<string>();
        // Python's str.split(): also splits on U+2028/U+2029, which the cleaning keeps (they are not "C*" characters).
        foreach (var raw in cleaned.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            string token = raw;
            if (LowerCase) token = token.ToLowerInvariant();
            if (StripAccents) token = RemoveAccents(token);
            SplitPunctuation(token, words);
        }
        return words;
    }

    private static string RemoveAccents(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s.Normalize(NormalizationForm.FormD))
            if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) sb.Append(c);
        return sb.ToString();
    }

    private static void SplitPunctuation(string token, List<string> words)
    {
        var current = new StringBuilder();
        foreach (var rune in token.EnumerateRunes())
        {
            if (IsPunctuation(rune))
            {
                if (current.Length > 0) words.Add(current.ToString());
                current.Clear();
                words.Add(rune.ToString());
            }
            else current.Append(rune.ToString());
        }
        if (current.Length > 0) words.Add(current.ToString());
    }

    private void WordPiece(string word, List<int> ids)
    {
        if (word.EnumerateRunes().Count() > MaxCharsPerWord)
        {
            ids.Add(UnkId);
            return;
        }
        int mark = ids.Count, start = 0;
        var lookup = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        while (start < word.Length)
        {
            int end = word.Length, found = -1;
            while (end > start)
            {
                var piece = start > 0 ? string.Concat("##", word.AsSpan(start, end - start)) : null;
                if (piece is not null ? _vocab.TryGetValue(piece, out found) : lookup.TryGetValue(word.AsSpan(start, end - start), out found))
                    break;
                found = -1;
                end--;
                if (end > start && char.IsLowSurrogate(word[end])) end--; // never split a surrogate pair
            }
            if (found < 0)
            {
                ids.RemoveRange(mark, ids.Count - mark);
                ids.Add(UnkId);
                return;
            }
            ids.Add(found);
            start = end;
        }
    }

    private static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>The CJK Unified Ideographs blocks BERT treats as single-character words (not kana or hangul).</summary>
    internal static bool IsChineseChar(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
