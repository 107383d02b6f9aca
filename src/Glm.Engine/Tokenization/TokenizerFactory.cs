using System.Text.Json;

namespace Glm.Engine.Tokenization;

/// <summary>
/// Picks and loads the tokenizer of a GLM model folder from its files and <c>config.json</c> <c>model_type</c>:
/// <c>cog-pretrain.model</c>/<c>spiece.model</c> → original GLM; <c>tokenizer.model</c> as SentencePiece protobuf →
/// ChatGLM3, as tiktoken rank text → GLM-4; <c>tokenizer.json</c> → GLM-4 (-hf / 0414 repos).
/// </summary>
public static class TokenizerFactory
{
    private static readonly string[] OriginalGlmFiles = ["cog-pretrain.model", "spiece.model"];

    /// <summary>
    /// Loads the tokenizer for <paramref name="modelFolder"/>. <paramref name="modelType"/> is the config's
    /// <c>model_type</c> (<c>chatglm</c>, <c>glm</c>, <c>glm4</c>); when null it is read from <c>config.json</c> if present.
    /// Missing or unreadable files raise <see cref="GlmException"/> naming the file and what was expected.
    /// </summary>
    public static IGlmTokenizer Load(string modelFolder, string? modelType = null)
    {
        if (!Directory.Exists(modelFolder))
            throw new GlmException($"Model folder '{modelFolder}' does not exist (expected a folder with tokenizer files).");
        modelType ??= ReadModelType(modelFolder);
        if (modelType is not null && modelType is not ("chatglm" or "glm" or "glm4"))
            throw new GlmException($"'{Path.Combine(modelFolder, "config.json")}': model_type '{modelType}' is not a GLM family type (expected chatglm, glm or glm4).");

        if (File.Exists(Path.Combine(modelFolder, Training.BpeTokenizerTrainer.RankFileName)))
            return Training.OwnBpeTokenizer.Load(modelFolder); // our own byte-level BPE (tokenizer.tiktoken + tokenizer_config.json)

        if (modelType is null or "glm")
        {
            foreach (string name in OriginalGlmFiles)
            {
                string path = Path.Combine(modelFolder, name);
                if (File.Exists(path)) return GlmChineseTokenizer.Load(path);
            }
        }

        string tokenizerModel = Path.Combine(modelFolder, "tokenizer.model");
        string tokenizerJson = Path.Combine(modelFolder, "tokenizer.json");
        bool preferJson = modelType is "glm" or "glm4" || !File.Exists(tokenizerModel);
        if (preferJson && File.Exists(tokenizerJson)) return Glm4Tokenizer.LoadHfTokenizerJson(tokenizerJson);
        if (File.Exists(tokenizerModel))
        {
            return SniffTokenizerModel(tokenizerModel) switch
            {
                TokenizerModelFormat.SentencePiece => ChatGlm3Tokenizer.Load(tokenizerModel),
                TokenizerModelFormat.Tiktoken => Glm4Tokenizer.LoadTiktoken(tokenizerModel),
                _ => throw new GlmException(
                    $"'{tokenizerModel}' is neither a SentencePiece model (protobuf, ChatGLM3) nor a tiktoken rank file ('<base64> <rank>' lines, GLM-4)."),
            };
        }
        throw new GlmException(
            $"No tokenizer found in '{modelFolder}' (expected tokenizer.model, tokenizer.json, cog-pretrain.model or spiece.model).");
    }

    /// <summary>Every file name <see cref="Load"/> recognises as a tokenizer.</summary>
    private static readonly string[] TokenizerFiles =
        ["tokenizer.model", "tokenizer.json", "tokenizer.tiktoken", .. OriginalGlmFiles];

    /// <summary>Like <see cref="Load"/>, but returns null for a folder with no tokenizer file at all (bare weights).</summary>
    public static IGlmTokenizer? TryLoad(string modelFolder, string? modelType = null) =>
        TokenizerFiles.Any(f => File.Exists(Path.Combine(modelFolder, f))) ? Load(modelFolder, modelType) : null;

    /// <summary>The chat format matching a tokenizer: ChatGLM3, GLM-4, or the plain-text blank chat of base original-GLM models.</summary>
    public static IChatFormat? CreateChatFormat(IGlmTokenizer tokenizer) => tokenizer switch
    {
        ChatGlm3Tokenizer => new ChatGlm3ChatFormat(tokenizer),
        Glm4Tokenizer => new Glm4ChatFormat(tokenizer),
        Training.OwnBpeTokenizer or GlmChineseTokenizer => new GlmBlankChatFormat(tokenizer),
        _ => null,
    };

    private enum TokenizerModelFormat { Unknown, SentencePiece, Tiktoken }

    private static TokenizerModelFormat SniffTokenizerModel(string path)
    {
        byte[] head = new byte[256];
        int read;
        try
        {
            using var stream = File.OpenRead(path);
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GlmException($"Cannot read '{path}': {e.Message}", e);
        }
        if (read == 0) return TokenizerModelFormat.Unknown;
        // ModelProto starts with field 1 (pieces), wire type 2: tag byte 0x0A.
        if (head[0] == 0x0A) return TokenizerModelFormat.SentencePiece;
        int lineEnd = Array.IndexOf(head, (byte)'\n', 0, read);
        string firstLine = System.Text.Encoding.ASCII.GetString(head, 0, lineEnd < 0 ? read : lineEnd).TrimEnd('\r');
        string[] fields = firstLine.Split(' ');
        bool looksTiktoken = fields.Length == 2 && fields[1].All(char.IsAsciiDigit) && fields[1].Length > 0
            && fields[0].Length > 0 && fields[0].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=');
        return looksTiktoken ? TokenizerModelFormat.Tiktoken : TokenizerModelFormat.Unknown;
    }

    private static string? ReadModelType(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new GlmException($"'{path}' is not a JSON object (a model config expected).");
            return doc.RootElement.TryGetProperty("model_type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new GlmException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }
}
