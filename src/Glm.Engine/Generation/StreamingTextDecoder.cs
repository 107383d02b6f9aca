using Glm.Engine.Tokenization;

namespace Glm.Engine.Generation;

/// <summary>
/// Turns a growing list of generated ids into text deltas that never end inside a character (a Chinese character split
/// over byte tokens decodes to U+FFFD until its last byte arrives) and never reveal the start of a stop string early.
/// </summary>
public sealed class StreamingTextDecoder
{
    private readonly IGlmTokenizer? _tokenizer;
    private readonly IReadOnlyList<string> _stopStrings;
    private readonly bool _skipSpecial;
    private readonly List<int> _ids = new();
    private int _emitted;

    /// <summary>Full text decoded so far (cut at a stop string once one is found).</summary>
    public string Text { get; private set; } = "";

    /// <summary>True once a stop string appeared.</summary>
    public bool StopStringHit { get; private set; }

    /// <summary>Creates a decoder; with no tokenizer, text stays empty (random models).</summary>
    public StreamingTextDecoder(IGlmTokenizer? tokenizer, IReadOnlyList<string> stopStrings, bool skipSpecial)
    {
        _tokenizer = tokenizer;
        _stopStrings = stopStrings;
        _skipSpecial = skipSpecial;
    }

    /// <summary>Adds a token and returns the text that is now safe to show.</summary>
    public string Push(int id)
    {
        if (_tokenizer is null || StopStringHit) return "";
        _ids.Add(id);
        string text = _tokenizer.Decode(_ids, _skipSpecial);
        foreach (var stop in _stopStrings)
        {
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0)
            {
                StopStringHit = true;
                text = text[..at];
            }
        }
        Text = text;
        int safe = text.Length;
        if (!StopStringHit)
        {
            while (safe > 0 && text[safe - 1] == '\uFFFD') safe--;           // an incomplete UTF-8 sequence
            safe = Math.Min(safe, text.Length - HeldBackForStops(text));       // a possible stop-string prefix
        }
        if (safe <= _emitted) return "";
        string delta = text[_emitted..safe];
        _emitted = safe;
        return delta;
    }

    /// <summary>Text not yet emitted (flushed at the end of generation).</summary>
    public string Flush()
    {
        if (Text.Length <= _emitted) return "";
        string rest = Text[_emitted..];
        _emitted = Text.Length;
        return rest;
    }

    private int HeldBackForStops(string text)
    {
        int hold = 0;
        foreach (var stop in _stopStrings)
            for (int len = Math.Min(stop.Length - 1, text.Length); len > hold; len--)
                if (text.AsSpan(text.Length - len).SequenceEqual(stop.AsSpan(0, len))) { hold = len; break; }
        return hold;
    }
}
