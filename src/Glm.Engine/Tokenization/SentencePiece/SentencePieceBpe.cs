using System.Text;

namespace Glm.Engine.Tokenization.SentencePiece;

/// <summary>
/// Encoder/decoder equal to the C++ SentencePiece library for BPE models (<c>bpe_model.cc</c>,
/// <c>SentencePieceProcessor::Encode/Decode</c>): normalize, split into characters (user-defined symbols whole),
/// merge the adjacent pair whose merged piece has the highest score (leftmost on ties), then map pieces to ids with
/// byte fallback or a single <c>&lt;unk&gt;</c> per run of unknown pieces.
/// </summary>
internal sealed class SentencePieceBpe
{
    private const string SpaceSymbol = "\u2581";
    private readonly SentencePieceModel _model;
    private readonly SentencePieceNormalizerRules _normalizer;
    private readonly Dictionary<string, int> _mergeable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _userDefined = new(StringComparer.Ordinal);
    private readonly int[] _byteIds = new int[256];
    private readonly int _unkId;

    public SentencePieceBpe(SentencePieceModel model)
    {
        if (model.ModelType != 2)
            throw new FormatException($"model_type {model.ModelType} is not supported (BPE = 2 expected)");
        _model = model;
        _normalizer = new SentencePieceNormalizerRules(model);
        Array.Fill(_byteIds, -1);
        _unkId = -1;
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var p = model.Pieces[id];
            switch (p.Type)
            {
                // Unused pieces would need sentencepiece's re-segmentation; neither GLM model has any.
                case PieceType.Normal:
                    _mergeable.TryAdd(p.Piece, id);
                    break;
                case PieceType.UserDefined:
                    _mergeable.TryAdd(p.Piece, id);
                    _userDefined.TryAdd(p.Piece, id);
                    break;
                case PieceType.Unknown:
                    if (_unkId < 0) _unkId = id;
                    break;
                case PieceType.Byte when p.Piece.Length == 6 && p.Piece.StartsWith("<0x", StringComparison.Ordinal):
                    _byteIds[Convert.ToInt32(p.Piece.Substring(3, 2), 16)] = id;
                    break;
            }
        }
        if (_unkId < 0) throw new FormatException("the model has no <unk> piece (type UNKNOWN)");
        if (model.ByteFallback && Array.IndexOf(_byteIds, -1) >= 0)
            throw new FormatException("byte_fallback is set but not all 256 <0xXX> byte pieces exist");
    }

    /// <summary>Number of pieces in the model.</summary>
    public int PieceCount => _model.Pieces.Count;

    /// <summary>The piece text of <paramref name="id"/>.</summary>
    public SentencePieceEntry Piece(int id) => _model.Pieces[id];

    /// <summary>Id of a normal or user-defined piece, or null.</summary>
    public int? PieceId(string piece) => _mergeable.TryGetValue(piece, out int id) ? id : null;

    /// <summary>Ids of <paramref name="text"/> as <c>sp.encode(text)</c> returns them (dummy prefix included).</summary>
    public List<int> Encode(string text)
    {
        string normalized = _normalizer.Normalize(text);
        var ids = new List<int>(normalized.Length);
        if (normalized.Length == 0) return ids;
        bool previousWasUnknown = false;
        foreach (string piece in Segment(normalized))
        {
            if (_mergeable.TryGetValue(piece, out int id))
            {
                ids.Add(id);
                previousWasUnknown = false;
            }
            else if (_model.ByteFallback)
            {
                foreach (byte b in Encoding.UTF8.GetBytes(piece)) ids.Add(_byteIds[b]);
                previousWasUnknown = false;
            }
            else
            {
                // sentencepiece merges a run of unknown pieces into one <unk>.
                if (!previousWasUnknown) ids.Add(_unkId);
                previousWasUnknown = true;
            }
        }
        return ids;
    }

    /// <summary>BPE segmentation of normalized text into piece strings.</summary>
    private List<string> Segment(string normalized)
    {
        var symbols = new List<Symbol>();
        int pos = 0;
        while (pos < normalized.Length)
        {
            int length = UserDefinedPrefixLength(normalized, pos, out bool freeze);
            symbols.Add(new Symbol(normalized.Substring(pos, length), symbols.Count - 1, symbols.Count + 1, freeze));
            pos += length;
        }
        symbols[^1] = symbols[^1] with { Next = -1 };

        var agenda = new PriorityQueue<Candidate, (float Score, int Left)>(
            Comparer<(float Score, int Left)>.Create((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left)));
        for (int i = 1; i < symbols.Count; i++) TryAddPair(symbols, agenda, i - 1, i);

        while (agenda.TryDequeue(out var top, out _))
        {
            var left = symbols[top.Left];
            var right = symbols[top.Right];
            // Skip stale candidates whose symbols were merged away since they were queued.
            if (left.Piece.Length == 0 || right.Piece.Length == 0 || left.Piece.Length + right.Piece.Length != top.Length)
                continue;
            symbols[top.Left] = left with { Piece = left.Piece + right.Piece, Next = right.Next };
            if (right.Next >= 0) symbols[right.Next] = symbols[right.Next] with { Prev = top.Left };
            symbols[top.Right] = right with { Piece = "" };
            TryAddPair(symbols, agenda, symbols[top.Left].Prev, top.Left);
            TryAddPair(symbols, agenda, top.Left, symbols[top.Left].Next);
        }

        var pieces = new List<string>();
        for (int i = 0; i >= 0; i = symbols[i].Next) pieces.Add(symbols[i].Piece);
        return pieces;
    }

    private void TryAddPair(List<Symbol> symbols, PriorityQueue<Candidate, (float, int)> agenda, int left, int right)
    {
        if (left < 0 || right < 0 || symbols[left].Freeze || symbols[right].Freeze) return;
        string merged = symbols[left].Piece + symbols[right].Piece;
        if (!_mergeable.TryGetValue(merged, out int id)) return;
        agenda.Enqueue(new Candidate(left, right, merged.Length), (_model.Pieces[id].Score, left));
    }

    private int UserDefinedPrefixLength(string text, int pos, out bool freeze)
    {
        freeze = false;
        int best = 0;
        if (_userDefined.Count > 0)
        {
            foreach (string symbol in _userDefined.Keys)
            {
                if (symbol.Length > best && string.CompareOrdinal(text, pos, symbol, 0, symbol.Length) == 0)
                    best = symbol.Length;
            }
        }
        if (best > 0)
        {
            freeze = true;
            return best;
        }
        return char.IsHighSurrogate(text[pos]) && pos + 1 < text.Length && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
    }

    /// <summary>
    /// <c>sp.decode(ids)</c>: pieces joined with <c>▁</c> as space, the leading <c>▁</c> of the first piece removed,
    /// byte pieces gathered and UTF-8 decoded (invalid bytes → U+FFFD), control pieces empty, unknown → unk surface.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool atStart = true;
        foreach (int id in ids)
        {
            if (id < 0 || id >= _model.Pieces.Count) continue;
            var entry = _model.Pieces[id];
            if (entry.Type == PieceType.Byte)
            {
                bytes.Add(Convert.ToByte(entry.Piece.Substring(3, 2), 16));
                continue;
            }
            FlushBytes(text, bytes, ref atStart);
            string surface = entry.Type switch
            {
                PieceType.Control => "",
                PieceType.Unknown => _model.UnknownSurface,
                _ => entry.Piece,
            };
            if (atStart && _model.AddDummyPrefix && !_model.TreatWhitespaceAsSuffix && surface.StartsWith(SpaceSymbol, StringComparison.Ordinal))
                surface = surface[SpaceSymbol.Length..];
            // Only control pieces (<s>, </s>) leave the start position; any other piece ends it, even "▁" alone.
            if (entry.Type != PieceType.Control) atStart = false;
            text.Append(surface.Replace(SpaceSymbol, " ", StringComparison.Ordinal));
        }
        FlushBytes(text, bytes, ref atStart);
        return text.ToString();
    }

    private static void FlushBytes(StringBuilder text, List<byte> bytes, ref bool atStart)
    {
        if (bytes.Count == 0) return;
        text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        bytes.Clear();
        atStart = false;
    }

    private readonly record struct Symbol(string Piece, int Prev, int Next, bool Freeze);

    private readonly record struct Candidate(int Left, int Right, int Length);
}
