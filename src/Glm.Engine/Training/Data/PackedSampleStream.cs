using Glm.Engine.Tokenization;

namespace Glm.Engine.Training.Data;

/// <summary>Position of a <see cref="PackedSampleStream"/>: pass, document index and token offset inside that document's
/// ids-plus-eos. A plain record, so System.Text.Json or <see cref="ToString"/>/<see cref="Parse"/> can store it.</summary>
public sealed record PackedStreamCursor(int Epoch, int Document, int Offset)
{
    /// <summary>"epoch:document:offset".</summary>
    public override string ToString() => $"{Epoch}:{Document}:{Offset}";

    /// <summary>Parses <see cref="ToString"/> output.</summary>
    /// <exception cref="GlmException">Not three non-negative integers separated by ':'.</exception>
    public static PackedStreamCursor Parse(string text)
    {
        var p = text?.Split(':') ?? [];
        if (p.Length == 3 && int.TryParse(p[0], out int e) && int.TryParse(p[1], out int d) && int.TryParse(p[2], out int o) && e >= 0 && d >= 0 && o >= 0)
            return new PackedStreamCursor(e, d, o);
        throw new GlmException($"Stream cursor '{text}' is invalid: expected 'epoch:document:offset' with non-negative integers.");
    }
}

/// <summary>
/// Packs tokenized documents into fixed-length samples for pretraining: each sample is [CLS] followed by
/// <c>SampleLength − 1</c> ids of the endless stream doc₀ eos doc₁ eos … (wrapping to the next epoch at the end).
/// The <see cref="Cursor"/> can be saved and given back to continue with exactly the next sample.
/// </summary>
public sealed class PackedSampleStream
{
    private readonly IReadOnlyList<int[]> _documents;
    private readonly GlmSpecialTokens _tokens;
    private int _epoch, _document, _offset;

    /// <summary>Creates a stream over already tokenized documents.</summary>
    /// <exception cref="GlmException">No non-empty document, sample length below 2, or a cursor outside the documents.</exception>
    public PackedSampleStream(IReadOnlyList<int[]> documentTokenIds, int sampleLength, GlmSpecialTokens specialTokens, PackedStreamCursor? cursor = null)
    {
        if (sampleLength < 2) throw new GlmException($"Packed sample length {sampleLength} is invalid: expected at least 2 ([CLS] plus one token).");
        if (documentTokenIds.Count == 0 || documentTokenIds.All(d => d.Length == 0))
            throw new GlmException("PackedSampleStream needs at least one non-empty tokenized document.");
        _documents = documentTokenIds;
        _tokens = specialTokens;
        SampleLength = sampleLength;
        if (cursor is not null) Cursor = cursor;
    }

    /// <summary>Tokenizes <paramref name="documents"/> with <paramref name="tokenizer"/> and builds a stream.</summary>
    public static PackedSampleStream FromDocuments(IEnumerable<CorpusDocument> documents, IGlmTokenizer tokenizer, int sampleLength,
        GlmSpecialTokens specialTokens, PackedStreamCursor? cursor = null) =>
        new(documents.Select(d => tokenizer.Encode(d.Text).ToArray()).ToList(), sampleLength, specialTokens, cursor);

    /// <summary>Tokens per sample, [CLS] included.</summary>
    public int SampleLength { get; }

    /// <summary>Where the next sample starts. Setting it validates the document index and offset.</summary>
    public PackedStreamCursor Cursor
    {
        get => new(_epoch, _document, _offset);
        set
        {
            if (value.Document >= _documents.Count || value.Offset > _documents[value.Document].Length)
                throw new GlmException($"Stream cursor {value} is outside the corpus: {_documents.Count} documents, document {value.Document} has {(value.Document < _documents.Count ? _documents[value.Document].Length + 1 : 0)} stream tokens.");
            (_epoch, _document, _offset) = (value.Epoch, value.Document, value.Offset);
        }
    }

    /// <summary>The next sample; advances the cursor.</summary>
    public int[] Next()
    {
        var sample = new int[SampleLength];
        sample[0] = _tokens.Cls;
        for (int i = 1; i < SampleLength; i++)
        {
            var doc = _documents[_document];
            sample[i] = _offset < doc.Length ? doc[_offset] : _tokens.Eos;
            _offset++;
            if (_offset > doc.Length) Advance();
        }
        return sample;
    }

    private void Advance()
    {
        _offset = 0; // an empty document still contributes its eos, so cursors stay simple
        if (++_document == _documents.Count) { _document = 0; _epoch++; }
    }
}
