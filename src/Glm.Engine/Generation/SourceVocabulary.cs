using Glm.Engine.Tokenization;

namespace Glm.Engine.Generation;

/// <summary>Which copy constraint a seq2seq decoder applies (<see cref="SourceVocabulary"/>).</summary>
public enum CopyConstraint
{
    /// <summary>Any token.</summary>
    None,
    /// <summary>Only tokens made of characters that occur in the source.</summary>
    Characters,
    /// <summary>The output is one contiguous span of the source: the model chooses where it starts and where it stops.</summary>
    Span,
}

/// <summary>Restricts the next-token choice of a decoder, given what it generated so far.</summary>
public interface IDecodeConstraint
{
    /// <summary>Sets the logits of every id that may not follow <paramref name="generated"/> to −∞.</summary>
    void Restrict(Span<float> logits, IReadOnlyList<int> generated);
}

/// <summary>
/// Copy constraints for decoding from a source text. Titles and headlines reuse most of their characters from the text they
/// summarise (87 % of CSL title characters occur in the abstract), while a small fine-tuned model invents plausible but absent
/// ones. <see cref="CopyConstraint.Characters"/> keeps the model's word choice and order and only removes what cannot be in the source;
/// <see cref="CopyConstraint.Span"/> makes the output one contiguous piece of the source, the model choosing its start and end — the
/// decoding-time form of a copy/pointer mechanism (as HF's <c>prefix_allowed_tokens_fn</c> would be used for it). Tokens with
/// no text of their own (special ids, byte pieces of a character split over several tokens) are never allowed, so a
/// character outside the source is never produced; the stop ids are always allowed once something was generated.
/// </summary>
public sealed class SourceVocabulary
{
    private readonly string[] _texts;
    private readonly int[] _stopIds;
    private readonly Dictionary<string, List<int>> _idsByText = new(StringComparer.Ordinal);
    private readonly int _longestText;

    /// <summary>Decodes every id of <paramref name="tokenizer"/> once; <paramref name="stopIds"/> (e.g. eop) end the output.</summary>
    public SourceVocabulary(IGlmTokenizer tokenizer, int vocabSize, IEnumerable<int> stopIds)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        _texts = new string[vocabSize];
        for (int id = 0; id < vocabSize; id++)
        {
            string text = id < tokenizer.VocabSize && !tokenizer.IsSpecial(id) ? tokenizer.Decode([id], skipSpecialTokens: true) : "";
            _texts[id] = text.Contains('\uFFFD') ? "" : text;
            if (_texts[id].Length == 0) continue;
            if (!_idsByText.TryGetValue(_texts[id], out var ids)) _idsByText[_texts[id]] = ids = [];
            ids.Add(id);
            _longestText = Math.Max(_longestText, _texts[id].Length);
        }
        _stopIds = stopIds.Where(id => (uint)id < (uint)vocabSize).ToArray();
    }

    /// <summary>Vocabulary size the constraints cover.</summary>
    public int VocabSize => _texts.Length;

    /// <summary>The constraint of kind <paramref name="kind"/> for <paramref name="source"/> (null for <see cref="CopyConstraint.None"/>).</summary>
    public IDecodeConstraint? For(CopyConstraint kind, string source) => kind switch
    {
        CopyConstraint.None => null,
        CopyConstraint.Characters => new MaskConstraint(Allowed(source)),
        CopyConstraint.Span => new SpanConstraint(this, source),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown copy constraint"),
    };

    /// <summary>
    /// The ids allowed by <see cref="CopyConstraint.Characters"/> for <paramref name="source"/>: every id whose (non-empty, valid)
    /// text uses only characters of <paramref name="source"/>, and the stop ids.
    /// </summary>
    public bool[] Allowed(string source)
    {
        var characters = new HashSet<char>(source);
        var allowed = new bool[_texts.Length];
        for (int id = 0; id < _texts.Length; id++)
        {
            string text = _texts[id];
            if (text.Length == 0) continue;
            bool inside = true;
            foreach (char c in text)
                if (!characters.Contains(c)) { inside = false; break; }
            allowed[id] = inside;
        }
        foreach (int id in _stopIds) allowed[id] = true;
        return allowed;
    }

    /// <summary>Sets the logits of ids that <paramref name="allowed"/> closes to −∞ (ids past its end are closed too).</summary>
    public static void Apply(Span<float> logits, bool[] allowed)
    {
        for (int id = 0; id < logits.Length; id++)
            if (id >= allowed.Length || !allowed[id]) logits[id] = float.NegativeInfinity;
    }

    private sealed class MaskConstraint(bool[] allowed) : IDecodeConstraint
    {
        public void Restrict(Span<float> logits, IReadOnlyList<int> generated) => Apply(logits, allowed);
    }

    /// <summary>
    /// The output text must stay a substring of the source: the next token's text must continue one of the places where the
    /// output so far occurs. <c>_startingAt[p]</c> lists the ids whose text the source has at position p.
    /// </summary>
    private sealed class SpanConstraint : IDecodeConstraint
    {
        private readonly SourceVocabulary _vocabulary;
        private readonly string _source;
        private readonly List<int>[] _startingAt;

        public SpanConstraint(SourceVocabulary vocabulary, string source)
        {
            _vocabulary = vocabulary;
            _source = source;
            _startingAt = new List<int>[source.Length];
            for (int p = 0; p < source.Length; p++)
            {
                _startingAt[p] = [];
                for (int length = 1; length <= vocabulary._longestText && p + length <= source.Length; length++)
                    if (vocabulary._idsByText.TryGetValue(source.Substring(p, length), out var ids)) _startingAt[p].AddRange(ids);
            }
        }

        public void Restrict(Span<float> logits, IReadOnlyList<int> generated)
        {
            string text = string.Concat(generated.Select(id => (uint)id < (uint)_vocabulary._texts.Length ? _vocabulary._texts[id] : ""));
            var allowed = new bool[logits.Length];
            // Every place the output so far ends in the source (every position when nothing was generated yet).
            for (int start = 0; start + text.Length < _source.Length; start++)
            {
                if (text.Length > 0 && string.CompareOrdinal(_source, start, text, 0, text.Length) != 0) continue;
                foreach (int id in _startingAt[start + text.Length])
                    if (id < allowed.Length) allowed[id] = true;
            }
            if (generated.Count > 0 || !allowed.Contains(true)) // an empty source can only end
                foreach (int id in _vocabulary._stopIds) allowed[id] = true;
            Apply(logits, allowed);
        }
    }
}
