using System.Text;
using System.Text.RegularExpressions;

namespace Glm.Engine.Tokenization.Tiktoken;

/// <summary>
/// Splits text with the GLM-4 (= cl100k_base) pre-tokenizer regex, matching code points like tiktoken's Rust regex:
/// .NET classes see UTF-16 units, so each supplementary code point is matched through a one-unit stand-in of the same
/// class (letter, number or other) and the spans are mapped back to the original text.
/// </summary>
internal sealed class Glm4PreTokenizer
{
    /// <summary>The GLM-4 / cl100k_base pre-tokenizer pattern.</summary>
    public const string Glm4Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private readonly Regex _regex;

    public Glm4PreTokenizer(string pattern = Glm4Pattern)
    {
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    /// <summary>The pieces of <paramref name="text"/>, in order; their concatenation is the text.</summary>
    public List<string> Split(string text)
    {
        var pieces = new List<string>();
        if (text.Length == 0) return pieces;
        string shadow = BuildShadow(text, out int[]? originalIndex);
        foreach (Match match in _regex.Matches(shadow))
        {
            if (match.Length == 0) continue;
            if (originalIndex is null)
            {
                pieces.Add(match.Value);
                continue;
            }
            int start = originalIndex[match.Index];
            int end = originalIndex[match.Index + match.Length];
            pieces.Add(text[start..end]);
        }
        return pieces;
    }

    /// <summary>
    /// Replaces each surrogate pair by one BMP character of the same regex class; returns the text unchanged (and a
    /// null map) when there is none. The map gives, per shadow index (plus one past the end), the original index.
    /// </summary>
    private static string BuildShadow(string text, out int[]? originalIndex)
    {
        originalIndex = null;
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF')) return text;
        var shadow = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                shadow.Append(StandIn(category));
                i++;
            }
            else
            {
                shadow.Append(text[i]);
            }
        }
        map.Add(text.Length);
        originalIndex = map.ToArray();
        return shadow.ToString();
    }

    // Supplementary planes hold no white space, so three classes suffice: a letter, a digit, or a symbol.
    private static char StandIn(System.Globalization.UnicodeCategory category) => category switch
    {
        System.Globalization.UnicodeCategory.UppercaseLetter or System.Globalization.UnicodeCategory.LowercaseLetter
            or System.Globalization.UnicodeCategory.TitlecaseLetter or System.Globalization.UnicodeCategory.ModifierLetter
            or System.Globalization.UnicodeCategory.OtherLetter => '\u4E00',
        System.Globalization.UnicodeCategory.DecimalDigitNumber or System.Globalization.UnicodeCategory.LetterNumber
            or System.Globalization.UnicodeCategory.OtherNumber => '0',
        _ => '\u00A9',
    };
}
