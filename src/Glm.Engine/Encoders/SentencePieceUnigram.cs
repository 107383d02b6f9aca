using Glm.Engine.Tokenization.SentencePiece;

namespace Glm.Engine.Encoders;

/// <summary>
/// SentencePiece Unigram segmentation (sentencepiece <c>unigram_model.cc</c>): after the model's normalizer, Viterbi over
/// all vocabulary pieces that match at each character; a path's score is the sum of its piece scores (user-defined pieces
/// score <c>length × max_score − 0.1</c> so they always win). A character no piece starts with becomes an unknown node
/// scoring <c>min_score − 10</c>; consecutive unknown characters are merged into one unknown piece, as
/// <c>SentencePieceProcessor</c> does. Returns SentencePiece ids.
/// </summary>
internal sealed class SentencePieceUnigram
{
    private const float UnkPenalty = 10f;
    private readonly Dictionary<string, int> _pieces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly SentencePieceModel _model;
    private readonly SentencePieceNormalizerRules _normalizer;
    private readonly int _maxPieceChars;
    private readonly float _maxScore, _unkScore;

    /// <summary>SentencePiece id of the unknown piece.</summary>
    public int UnkId { get; }
    /// <summary>Number of pieces in the model.</summary>
    public int Count => _model.Pieces.Count;

    public SentencePieceUnigram(SentencePieceModel model, string source)
    {
        if (model.ModelType != 1)
            throw new GlmException($"{source}: trainer_spec.model_type = {model.ModelType}; expected 1 (unigram) for an XLM-RoBERTa tokenizer.");
        _model = model;
        _normalizer = new SentencePieceNormalizerRules(model);
        float minScore = float.MaxValue, maxScore = float.MinValue;
        UnkId = -1;
        for (int i = 0; i < model.Pieces.Count; i++)
        {
            var p = model.Pieces[i];
            if (p.Type == PieceType.Unknown && UnkId < 0) UnkId = i;
            if (p.Type is PieceType.Normal or PieceType.UserDefined && p.Piece.Length > 0)
            {
                _pieces.TryAdd(p.Piece, i);
                _maxPieceChars = Math.Max(_maxPieceChars, p.Piece.Length);
            }
            if (p.Type == PieceType.Normal)
            {
                minScore = Math.Min(minScore, p.Score);
                maxScore = Math.Max(maxScore, p.Score);
            }
        }
        if (UnkId < 0) throw new GlmException($"{source}: the SentencePiece model has no piece of type UNKNOWN; expected one (usually id 0).");
        if (_pieces.Count == 0) throw new GlmException($"{source}: the SentencePiece model has no normal pieces.");
        _maxScore = maxScore;
        _unkScore = minScore - UnkPenalty;
        _lookup = _pieces.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The piece string of an id.</summary>
    public string Piece(int id) => _model.Pieces[id].Piece;

    /// <summary>Normalizes <paramref name="text"/> and returns the best segmentation as SentencePiece ids.</summary>
    public List<int> Encode(string text) => EncodeNormalized(_normalizer.Normalize(text));

    /// <summary>Viterbi over an already-normalized string (▁ for spaces, dummy prefix applied).</summary>
    internal List<int> EncodeNormalized(string s)
    {
        int n = s.Length;
        var result = new List<int>();
        if (n == 0) return result;
        var best = new float[n + 1];
        var from = new int[n + 1];
        var idAt = new int[n + 1];
        Array.Fill(best, float.NegativeInfinity);
        Array.Fill(from, -1);
        best[0] = 0;
        for (int start = 0; start < n; start++)
        {
            if (float.IsNegativeInfinity(best[start])) continue; // the middle of a surrogate pair
            int charLen = char.IsHighSurrogate(s[start]) && start + 1 < n && char.IsLowSurrogate(s[start + 1]) ? 2 : 1;
            bool single = false;
            for (int len = 1; len <= _maxPieceChars && start + len <= n; len++)
            {
                if (!_lookup.TryGetValue(s.AsSpan(start, len), out int id)) continue;
                var entry = _model.Pieces[id];
                float score = entry.Type == PieceType.UserDefined ? CodePoints(s.AsSpan(start, len)) * _maxScore - 0.1f : entry.Score;
                Relax(start, start + len, best[start] + score, id);
                if (len == charLen) single = true;
            }
            if (!single) Relax(start, start + charLen, best[start] + _unkScore, UnkId);
        }

        void Relax(int start, int end, float score, int id)
        {
            if (from[end] < 0 || score > best[end])
            {
                best[end] = score;
                from[end] = start;
                idAt[end] = id;
            }
        }

        for (int end = n; end > 0; end = from[end]) result.Add(idAt[end]);
        result.Reverse();
        // Merge runs of unknown pieces into one, as SentencePieceProcessor does.
        for (int i = result.Count - 1; i > 0; i--)
            if (result[i] == UnkId && result[i - 1] == UnkId) result.RemoveAt(i);
        return result;
    }

    private static int CodePoints(ReadOnlySpan<char> s)
    {
        int count = 0;
        foreach (var _ in s.EnumerateRunes()) count++;
        return count;
    }
}
