using System.Buffers.Binary;

namespace Glm.Engine.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's precompiled normalization map (e.g. <c>nmt_nfkc</c>): a little-endian uint32 trie size, a
/// darts-clone double-array trie over UTF-8 byte strings, then a blob of NUL-terminated replacement strings that
/// the trie values index into.
/// </summary>
internal sealed class PrecompiledCharsMap
{
    private readonly uint[] _units;
    private readonly byte[] _normalized;

    private PrecompiledCharsMap(uint[] units, byte[] normalized)
    {
        _units = units;
        _normalized = normalized;
    }

    /// <summary>Parses the blob; throws <see cref="FormatException"/> when it is malformed.</summary>
    public static PrecompiledCharsMap Parse(byte[] blob)
    {
        if (blob.Length < 4) throw new FormatException("precompiled charsmap shorter than its 4-byte header");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || trieSize > blob.Length - 4)
            throw new FormatException($"precompiled charsmap trie size {trieSize} does not fit the {blob.Length}-byte blob");
        var units = new uint[trieSize / 4];
        for (int i = 0; i < units.Length; i++)
            units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + i * 4, 4));
        return new PrecompiledCharsMap(units, blob.AsSpan(4 + (int)trieSize).ToArray());
    }

    /// <summary>
    /// Longest rule matching a prefix of <paramref name="input"/>: its length in bytes (0 if none) and replacement.
    /// </summary>
    public int LongestMatch(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> replacement)
    {
        replacement = default;
        if (_units.Length == 0) return 0;
        int longestLength = 0, longestValue = 0;
        // darts-clone commonPrefixSearch: unit fields are has_leaf bit 8, label = low byte (+ bit 31), offset bits 10..
        uint nodePos = Offset(_units[0]);
        for (int i = 0; i < input.Length; i++)
        {
            byte c = input[i];
            nodePos ^= c;
            if (nodePos >= _units.Length) break;
            uint unit = _units[nodePos];
            if ((unit & ((1u << 31) | 0xFF)) != c) break;
            nodePos ^= Offset(unit);
            if (((unit >> 8) & 1) != 0 && nodePos < _units.Length)
            {
                longestLength = i + 1;
                longestValue = (int)(_units[nodePos] & ((1u << 31) - 1));
            }
        }
        if (longestLength == 0) return 0;
        if (longestValue >= _normalized.Length) throw new FormatException("charsmap value points past the string blob");
        int end = Array.IndexOf(_normalized, (byte)0, longestValue);
        replacement = _normalized.AsSpan(longestValue, (end < 0 ? _normalized.Length : end) - longestValue);
        return longestLength;
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
