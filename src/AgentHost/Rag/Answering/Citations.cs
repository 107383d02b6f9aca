using System.Text;

namespace AgentHost.Rag.Answering;

/// <summary>Result of checking the citation markers of an answer.</summary>
/// <param name="Text">The answer with every marker pointing at a retrieved passage; others removed.</param>
/// <param name="Cited">Valid passage numbers in order of first citation.</param>
/// <param name="Dropped">Out-of-range numbers that were removed, in order of appearance.</param>
public sealed record CitationCheck(string Text, IReadOnlyList<int> Cited, IReadOnlyList<int> Dropped);

/// <summary>
/// Checks citation markers while the answer streams: <c>[n]</c>, <c>[n, m]</c>, <c>[n][m]</c> and full-width <c>【n】</c>.
/// Text is held back only from an opening bracket until the marker is complete (at most 16 chars), then emitted with
/// every number in 1..<c>passageCount</c> kept as <c>[n]</c> and the rest dropped. Brackets that are not citations pass
/// through unchanged.
/// </summary>
public sealed class CitationFilter(int passageCount)
{
    private const int MaxMarker = 16;
    private readonly StringBuilder _pending = new();
    private readonly List<int> _cited = [];
    private readonly List<int> _dropped = [];

    /// <summary>Valid numbers cited so far, in order of first citation.</summary>
    public IReadOnlyList<int> Cited => _cited;

    /// <summary>Out-of-range numbers removed so far.</summary>
    public IReadOnlyList<int> Dropped => _dropped;

    /// <summary>Checks a whole answer at once.</summary>
    public static CitationCheck Check(string answer, int passageCount)
    {
        var filter = new CitationFilter(passageCount);
        string text = filter.Push(answer) + filter.Flush();
        return new CitationCheck(text, filter.Cited, filter.Dropped);
    }

    /// <summary>Feeds streamed text; returns what can be shown now.</summary>
    public string Push(string delta)
    {
        var output = new StringBuilder();
        foreach (char c in delta) Feed(c, output);
        return output.ToString();
    }

    /// <summary>Releases text held back at the end of the stream (an unfinished marker is shown as is).</summary>
    public string Flush()
    {
        string rest = _pending.ToString();
        _pending.Clear();
        return rest;
    }

    private void Feed(char c, StringBuilder output)
    {
        if (_pending.Length == 0)
        {
            if (c is '[' or '【') _pending.Append(c);
            else output.Append(c);
            return;
        }
        char close = _pending[0] == '[' ? ']' : '】';
        if (c == close)
        {
            _pending.Append(c);
            output.Append(Resolve(_pending.ToString()));
            _pending.Clear();
        }
        else if ((char.IsAsciiDigit(c) || c is ',' or '，' or '、' or ' ') && _pending.Length < MaxMarker)
        {
            _pending.Append(c);
        }
        else
        {
            output.Append(_pending);
            _pending.Clear();
            Feed(c, output);
        }
    }

    private string Resolve(string marker)
    {
        var numbers = marker[1..^1].Split([',', '，', '、', ' '], StringSplitOptions.RemoveEmptyEntries);
        if (numbers.Length == 0) return marker;
        var kept = new StringBuilder();
        foreach (var n in numbers)
        {
            if (int.TryParse(n, out int number) && number >= 1 && number <= passageCount)
            {
                kept.Append('[').Append(number).Append(']');
                if (!_cited.Contains(number)) _cited.Add(number);
            }
            else _dropped.Add(int.TryParse(n, out number) ? number : -1);
        }
        return kept.ToString();
    }
}
