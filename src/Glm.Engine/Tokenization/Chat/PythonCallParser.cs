using System.Globalization;
using System.Text;

namespace Glm.Engine.Tokenization;

/// <summary>
/// Parses a ChatGLM3 tool-call expression such as <c>tool_call(location="beijing", days=3)</c> into a JSON object of its
/// keyword arguments, accepting the Python literals the reference <c>eval</c> would: strings (single, double, triple
/// quotes, escapes, implicit concatenation), ints, floats, True/False/None, lists, tuples and dicts with string keys.
/// Arbitrary code is never executed; anything else is a <see cref="FormatException"/> with the position.
/// </summary>
internal sealed class PythonCallParser
{
    private readonly string _s;
    private int _pos;

    private PythonCallParser(string s) => _s = s;

    /// <summary>Arguments of the call to <paramref name="expectedFunction"/> as compact Python-style JSON.</summary>
    public static string ParseKeywordArguments(string expression, string expectedFunction = "tool_call")
    {
        var p = new PythonCallParser(expression);
        p.SkipSpace();
        string name = p.Identifier();
        if (name != expectedFunction) throw new FormatException($"expected a call to {expectedFunction}(...), found '{name}'");
        p.Expect('(');
        var json = new StringBuilder("{");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        p.SkipSpace();
        while (!p.TryConsume(')'))
        {
            int start = p._pos;
            if (p._pos < p._s.Length && !(char.IsLetter(p._s[p._pos]) || p._s[p._pos] == '_'))
                throw new FormatException($"positional argument at offset {start}; only keyword arguments (name=value) are accepted");
            string key = p.Identifier();
            p.SkipSpace();
            if (!p.TryConsume('=')) throw new FormatException($"positional argument at offset {start}; only keyword arguments (name=value) are accepted");
            if (!seen.Add(key)) throw new FormatException($"keyword argument '{key}' repeated");
            if (json.Length > 1) json.Append(", ");
            PythonJson.WriteString(json, key);
            json.Append(": ");
            p.Value(json);
            p.SkipSpace();
            if (!p.TryConsume(',')) { p.Expect(')'); break; }
            p.SkipSpace();
        }
        p.SkipSpace();
        if (p._pos != p._s.Length) throw new FormatException($"unexpected text after the call at offset {p._pos}");
        return json.Append('}').ToString();
    }

    private void Value(StringBuilder json)
    {
        SkipSpace();
        if (_pos >= _s.Length) throw new FormatException("expression ends where a value was expected");
        char c = _s[_pos];
        if (c is '"' or '\'')
        {
            var text = new StringBuilder();
            do { text.Append(StringLiteral()); SkipSpace(); } while (_pos < _s.Length && _s[_pos] is '"' or '\'');
            PythonJson.WriteString(json, text.ToString());
        }
        else if (c == '[') Sequence(json, ']');
        else if (c == '(') Sequence(json, ')');
        else if (c == '{') Dict(json);
        else if (char.IsDigit(c) || c is '-' or '+' or '.') Number(json);
        else
        {
            int start = _pos;
            string word = Identifier();
            json.Append(word switch
            {
                "True" => "true",
                "False" => "false",
                "None" => "null",
                _ => throw new FormatException($"'{word}' at offset {start} is not a literal (strings, numbers, True/False/None, lists, dicts expected)"),
            });
        }
    }

    private void Sequence(StringBuilder json, char close)
    {
        _pos++;
        json.Append('[');
        bool first = true;
        SkipSpace();
        while (!TryConsume(close))
        {
            if (!first) json.Append(", ");
            first = false;
            Value(json);
            SkipSpace();
            if (!TryConsume(',')) { Expect(close); break; }
            SkipSpace();
        }
        json.Append(']');
    }

    private void Dict(StringBuilder json)
    {
        _pos++;
        json.Append('{');
        bool first = true;
        SkipSpace();
        while (!TryConsume('}'))
        {
            if (!first) json.Append(", ");
            first = false;
            if (_pos >= _s.Length || _s[_pos] is not ('"' or '\''))
                throw new FormatException($"dict key at offset {_pos} is not a string (JSON objects need string keys)");
            PythonJson.WriteString(json, StringLiteral());
            SkipSpace();
            Expect(':');
            json.Append(": ");
            Value(json);
            SkipSpace();
            if (!TryConsume(',')) { Expect('}'); break; }
            SkipSpace();
        }
        json.Append('}');
    }

    private void Number(StringBuilder json)
    {
        int start = _pos;
        if (_s[_pos] is '-' or '+') _pos++;
        while (_pos < _s.Length && (char.IsAsciiDigit(_s[_pos]) || _s[_pos] is '.' or 'e' or 'E' or '_'
               || (_s[_pos] is '-' or '+' && _s[_pos - 1] is 'e' or 'E'))) _pos++;
        string text = _s[start.._pos].Replace("_", "", StringComparison.Ordinal).TrimStart('+');
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long integer))
            json.Append(integer.ToString(CultureInfo.InvariantCulture));
        else if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double real) && double.IsFinite(real))
            json.Append(PythonFloat(real));
        else throw new FormatException($"'{_s[start.._pos]}' at offset {start} is not a number");
    }

    // Python's repr(float): shortest round-trip digits, always with a '.' or exponent.
    private static string PythonFloat(double value)
    {
        string r = value.ToString("R", CultureInfo.InvariantCulture);
        if (r.Contains('E'))
        {
            double abs = Math.Abs(value);
            if (abs >= 1e-4 && abs < 1e16) r = value.ToString("0.0###################", CultureInfo.InvariantCulture);
            else
            {
                string[] parts = r.Split('E');
                int exp = int.Parse(parts[1], CultureInfo.InvariantCulture);
                r = parts[0] + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
            }
        }
        else if (!r.Contains('.')) r += ".0";
        return r;
    }

    private string StringLiteral()
    {
        char quote = _s[_pos];
        bool triple = _pos + 2 < _s.Length && _s[_pos + 1] == quote && _s[_pos + 2] == quote;
        int start = _pos;
        _pos += triple ? 3 : 1;
        var text = new StringBuilder();
        while (true)
        {
            if (_pos >= _s.Length) throw new FormatException($"string starting at offset {start} is not closed");
            char c = _s[_pos];
            if (c == quote && (!triple || (_pos + 2 < _s.Length && _s[_pos + 1] == quote && _s[_pos + 2] == quote)))
            {
                _pos += triple ? 3 : 1;
                return text.ToString();
            }
            if (c == '\n' && !triple) throw new FormatException($"string starting at offset {start} runs past the end of the line");
            if (c == '\\' && _pos + 1 < _s.Length)
            {
                _pos++;
                text.Append(Escape());
                continue;
            }
            text.Append(c);
            _pos++;
        }
    }

    private string Escape()
    {
        char e = _s[_pos++];
        switch (e)
        {
            case 'n': return "\n";
            case 't': return "\t";
            case 'r': return "\r";
            case '0': return "\0";
            case 'b': return "\b";
            case 'f': return "\f";
            case '\n': return "";
            case 'u' or 'U' or 'x':
                int length = e == 'u' ? 4 : e == 'U' ? 8 : 2;
                if (_pos + length > _s.Length || !int.TryParse(_s.AsSpan(_pos, length), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                    throw new FormatException($"bad \\{e} escape at offset {_pos - 2}");
                _pos += length;
                return char.ConvertFromUtf32(code);
            case '\\' or '\'' or '"': return e.ToString();
            default: return "\\" + e; // Python keeps unknown escapes verbatim
        }
    }

    private string Identifier()
    {
        int start = _pos;
        while (_pos < _s.Length && (char.IsLetterOrDigit(_s[_pos]) || _s[_pos] == '_')) _pos++;
        if (_pos == start) throw new FormatException(_pos < _s.Length ? $"unexpected '{_s[_pos]}' at offset {_pos}" : "unexpected end of expression");
        return _s[start.._pos];
    }

    private void SkipSpace()
    {
        while (_pos < _s.Length && char.IsWhiteSpace(_s[_pos])) _pos++;
    }

    private bool TryConsume(char c)
    {
        if (_pos < _s.Length && _s[_pos] == c) { _pos++; return true; }
        return false;
    }

    private void Expect(char c)
    {
        SkipSpace();
        if (!TryConsume(c))
            throw new FormatException(_pos < _s.Length ? $"expected '{c}' at offset {_pos}, found '{_s[_pos]}'" : $"expected '{c}' but the expression ended");
    }
}
