namespace Glm.Engine.Tokenization.SentencePiece;

/// <summary>Piece types of SentencePiece's <c>ModelProto.SentencePiece.Type</c>.</summary>
internal enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One vocabulary entry of a SentencePiece model.</summary>
internal readonly record struct SentencePieceEntry(string Piece, float Score, PieceType Type);

/// <summary>
/// The parts of a SentencePiece <c>tokenizer.model</c> (protobuf <c>ModelProto</c>) that encoding and decoding need.
/// Field numbers follow sentencepiece_model.proto.
/// </summary>
internal sealed class SentencePieceModel
{
    public required IReadOnlyList<SentencePieceEntry> Pieces { get; init; }
    /// <summary>1 = unigram, 2 = BPE, 3 = word, 4 = char.</summary>
    public int ModelType { get; init; } = 1;
    public bool ByteFallback { get; init; }
    public bool TreatWhitespaceAsSuffix { get; init; }
    public string UnknownSurface { get; init; } = " \u2047 ";
    public string NormalizerName { get; init; } = "";
    public byte[] PrecompiledCharsMap { get; init; } = [];
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    /// <summary>Loads and parses a model file; any problem becomes a <see cref="GlmException"/> naming the file.</summary>
    public static SentencePieceModel Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GlmException($"Cannot read SentencePiece model '{path}': {e.Message}", e);
        }
        try
        {
            var model = Parse(bytes);
            if (model.Pieces.Count == 0)
                throw new FormatException("no pieces (field 1) found");
            return model;
        }
        catch (FormatException e)
        {
            throw new GlmException(
                $"'{path}' is not a valid SentencePiece model (protobuf ModelProto expected): {e.Message}", e);
        }
    }

    /// <summary>Parses the protobuf bytes of a <c>ModelProto</c>.</summary>
    public static SentencePieceModel Parse(ReadOnlySpan<byte> bytes)
    {
        var pieces = new List<SentencePieceEntry>();
        var trainer = new Dictionary<int, object>();
        var normalizer = new Dictionary<int, object>();
        var reader = new ProtobufReader(bytes);
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            if (field == 1 && wire == 2) pieces.Add(ParsePiece(reader.ReadLengthDelimited()));
            else if (field == 2 && wire == 2) ParseFlatMessage(reader.ReadLengthDelimited(), trainer);
            else if (field == 3 && wire == 2) ParseFlatMessage(reader.ReadLengthDelimited(), normalizer);
            else reader.Skip(wire);
        }

        return new SentencePieceModel
        {
            Pieces = pieces,
            ModelType = (int)GetVarint(trainer, 3, 1),
            TreatWhitespaceAsSuffix = GetVarint(trainer, 24, 0) != 0,
            ByteFallback = GetVarint(trainer, 35, 0) != 0,
            UnknownSurface = trainer.TryGetValue(44, out var surface) ? System.Text.Encoding.UTF8.GetString((byte[])surface) : " \u2047 ",
            NormalizerName = normalizer.TryGetValue(1, out var name) ? System.Text.Encoding.UTF8.GetString((byte[])name) : "",
            PrecompiledCharsMap = normalizer.TryGetValue(2, out var map) ? (byte[])map : [],
            AddDummyPrefix = GetVarint(normalizer, 3, 1) != 0,
            RemoveExtraWhitespaces = GetVarint(normalizer, 4, 1) != 0,
            EscapeWhitespaces = GetVarint(normalizer, 5, 1) != 0,
        };
    }

    private static SentencePieceEntry ParsePiece(ReadOnlySpan<byte> bytes)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        var reader = new ProtobufReader(bytes);
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            if (field == 1 && wire == 2) piece = reader.ReadString();
            else if (field == 2 && wire == 5) score = reader.ReadFloat();
            else if (field == 3 && wire == 0) type = (PieceType)(int)reader.ReadVarint();
            else reader.Skip(wire);
        }
        return new SentencePieceEntry(piece, score, type);
    }

    /// <summary>Collects varint (as ulong) and length-delimited (as byte[]) fields of a message without nesting.</summary>
    private static void ParseFlatMessage(ReadOnlySpan<byte> bytes, Dictionary<int, object> fields)
    {
        var reader = new ProtobufReader(bytes);
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            if (wire == 0) fields[field] = reader.ReadVarint();
            else if (wire == 2) fields[field] = reader.ReadLengthDelimited().ToArray();
            else reader.Skip(wire);
        }
    }

    private static ulong GetVarint(Dictionary<int, object> fields, int field, ulong fallback) =>
        fields.TryGetValue(field, out var v) && v is ulong u ? u : fallback;
}
