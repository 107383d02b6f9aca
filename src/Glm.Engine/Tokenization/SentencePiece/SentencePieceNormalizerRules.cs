using System.Text;

namespace Glm.Engine.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's <c>Normalizer::Normalize</c>: precompiled-charsmap rewriting, user-defined symbols kept verbatim,
/// extra-whitespace removal, the dummy <c>▁</c> prefix and whitespace escaping. Works on UTF-8 bytes like the original
/// so that multi-character rules and invalid sequences behave the same.
/// </summary>
internal sealed class SentencePieceNormalizerRules
{
    private static readonly byte[] SpaceSymbol = Encoding.UTF8.GetBytes("\u2581");
    private static readonly byte[] ReplacementChar = Encoding.UTF8.GetBytes("\uFFFD");
    private readonly PrecompiledCharsMap? _charsMap;
    private readonly bool _addDummyPrefix;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _escapeWhitespaces;
    private readonly bool _treatWhitespaceAsSuffix;
    private readonly byte[][] _userDefined;

    public SentencePieceNormalizerRules(SentencePieceModel model)
    {
        _charsMap = model.PrecompiledCharsMap.Length > 0 ? PrecompiledCharsMap.Parse(model.PrecompiledCharsMap) : null;
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        _treatWhitespaceAsSuffix = model.TreatWhitespaceAsSuffix;
        _userDefined = model.Pieces.Where(p => p.Type == PieceType.UserDefined)
            .Select(p => Encoding.UTF8.GetBytes(p.Piece)).OrderByDescending(b => b.Length).ToArray();
    }

    /// <summary>Normalizes <paramref name="text"/> into the UTF-8 string the BPE model segments.</summary>
    public string Normalize(string text)
    {
        ReadOnlySpan<byte> input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length + 8);
        if (_removeExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                int consumed = NormalizePrefix(input, out var piece);
                if (!(piece.Length == 1 && piece[0] == (byte)' ')) break;
                input = input[consumed..];
            }
        }
        if (input.IsEmpty) return "";
        if (_addDummyPrefix && !_treatWhitespaceAsSuffix) AppendSpace(output);

        bool isPrevSpace = _removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            int consumed = NormalizePrefix(input, out var piece);
            if (isPrevSpace)
                while (!piece.IsEmpty && piece[0] == (byte)' ') piece = piece[1..];
            if (!piece.IsEmpty)
            {
                foreach (byte b in piece)
                {
                    if (_escapeWhitespaces && b == (byte)' ') output.AddRange(SpaceSymbol);
                    else output.Add(b);
                }
                isPrevSpace = piece[^1] == (byte)' ';
            }
            input = input[consumed..];
            if (!_removeExtraWhitespaces) isPrevSpace = false;
        }

        if (_removeExtraWhitespaces)
        {
            byte[] space = _escapeWhitespaces ? SpaceSymbol : [(byte)' '];
            while (output.Count >= space.Length && EndsWith(output, space)) output.RemoveRange(output.Count - space.Length, space.Length);
        }
        if (_addDummyPrefix && _treatWhitespaceAsSuffix) AppendSpace(output);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    private void AppendSpace(List<byte> output)
    {
        if (_escapeWhitespaces) output.AddRange(SpaceSymbol);
        else output.Add((byte)' ');
    }

    private static bool EndsWith(List<byte> output, byte[] suffix)
    {
        for (int i = 0; i < suffix.Length; i++)
            if (output[output.Count - suffix.Length + i] != suffix[i]) return false;
        return true;
    }

    /// <summary>Normalizes the longest rule at the start of <paramref name="input"/>; returns bytes consumed.</summary>
    private int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> normalized)
    {
        foreach (var symbol in _userDefined)
        {
            if (input.StartsWith(symbol))
            {
                normalized = input[..symbol.Length];
                return symbol.Length;
            }
        }
        if (_charsMap is not null)
        {
            int matched = _charsMap.LongestMatch(input, out normalized);
            if (matched > 0) return matched;
        }
        int length = Utf8CharLength(input);
        if (length == 0)
        {
            normalized = ReplacementChar;
            return 1;
        }
        normalized = input[..length];
        return length;
    }

    /// <summary>Length of the valid UTF-8 character at the start of <paramref name="s"/>, or 0 if it is malformed.</summary>
    internal static int Utf8CharLength(ReadOnlySpan<byte> s)
    {
        var status = System.Text.Rune.DecodeFromUtf8(s, out _, out int consumed);
        return status == System.Buffers.OperationStatus.Done ? consumed : 0;
    }
}
