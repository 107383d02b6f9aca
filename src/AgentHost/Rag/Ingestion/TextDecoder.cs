using System.Text;
using Glm.Engine;
using UtfUnknown;

namespace AgentHost.Rag.Ingestion;

/// <summary>Decoded file text and the encoding it was read with.</summary>
public sealed record DecodedText(string Text, string EncodingName);

/// <summary>
/// Decodes Chinese text files: BOMs, strict UTF-8, UTF-16 without BOM, then charset detection (GB18030/GBK, Big5, …).
/// Decoding is strict: an invalid byte fails the file with its offset instead of being replaced silently.
/// </summary>
public static class TextDecoder
{
    static TextDecoder() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    /// <summary>Decodes <paramref name="bytes"/> read from <paramref name="path"/>; line endings become LF.</summary>
    /// <exception cref="GlmException">Empty, binary, undetectable or invalid content; the message names the file.</exception>
    public static DecodedText Decode(string path, byte[] bytes)
    {
        if (bytes.Length == 0) throw new GlmException($"{path}: file is empty; expected text");
        var (encoding, bomLength) = DetectEncoding(path, bytes);
        string text = DecodeStrict(path, bytes, bomLength, encoding);
        CheckLooksLikeText(path, text);
        return new DecodedText(text.Replace("\r\n", "\n").Replace('\r', '\n'), encoding.WebName);
    }

    private static (Encoding Encoding, int BomLength) DetectEncoding(string path, byte[] b)
    {
        if (b is [0xEF, 0xBB, 0xBF, ..]) return (new UTF8Encoding(false), 3);
        if (b is [0xFF, 0xFE, 0, 0, ..]) return (new UTF32Encoding(false, false), 4);
        if (b is [0xFF, 0xFE, ..]) return (new UnicodeEncoding(false, false), 2);
        if (b is [0xFE, 0xFF, ..]) return (new UnicodeEncoding(true, false), 2);

        if (Array.IndexOf(b, (byte)0) >= 0)
        {
            var utf16 = GuessUtf16WithoutBom(b);
            return utf16 is not null ? (utf16, 0)
                : throw new GlmException($"{path}: contains NUL bytes and is not UTF-16; looks like a binary file, expected text");
        }
        if (IsValidUtf8(b) || IsMostlyUtf8(b)) return (new UTF8Encoding(false), 0);

        var detected = CharsetDetector.DetectFromBytes(b).Detected;
        string? name = detected?.EncodingName?.ToLowerInvariant();
        Encoding? encoding = name switch
        {
            null => null,
            "gb18030" or "gb2312" or "gbk" or "hz-gb-2312" or "x-gbk" => Encoding.GetEncoding(54936),
            "big5" or "big-5" or "cp950" => Encoding.GetEncoding(950),
            // Mostly UTF-8 with a few bad bytes: decode as UTF-8 so the bad offset gets reported.
            "utf-8" or "ascii" => new UTF8Encoding(false),
            _ => TryGetEncoding(name),
        };
        return encoding is null
            ? throw new GlmException($"{path}: could not determine the text encoding (tried UTF-8, UTF-16, GB18030/GBK, Big5); re-save the file as UTF-8")
            : (encoding, 0);
    }

    private static Encoding? TryGetEncoding(string name)
    {
        try { return Encoding.GetEncoding(name); } catch (ArgumentException) { return null; }
    }

    private static bool IsValidUtf8(byte[] b)
    {
        try { _ = new UTF8Encoding(false, true).GetCharCount(b); return true; }
        catch (DecoderFallbackException) { return false; }
    }

    /// <summary>
    /// UTF-8 with a few corrupt bytes: many valid multi-byte sequences, few invalid bytes. Treated as UTF-8 so the strict
    /// decode reports the corrupt offset (GBK/Big5 text read as UTF-8 is mostly invalid).
    /// </summary>
    private static bool IsMostlyUtf8(byte[] b)
    {
        int valid = 0, invalid = 0, i = 0;
        while (i < b.Length)
        {
            if (b[i] < 0x80) { i++; continue; }
            var status = Rune.DecodeFromUtf8(b.AsSpan(i), out _, out int read);
            if (status != System.Buffers.OperationStatus.Done) { invalid++; i++; }
            else { valid++; i += read; }
        }
        return valid >= 8 && valid >= 10 * invalid;
    }

    /// <summary>UTF-16 text without BOM has NULs concentrated at odd (LE) or even (BE) positions when mostly ASCII.</summary>
    private static Encoding? GuessUtf16WithoutBom(byte[] b)
    {
        if (b.Length % 2 != 0) return null;
        int even = 0, odd = 0;
        for (int i = 0; i < b.Length; i++)
            if (b[i] == 0) { if (i % 2 == 0) even++; else odd++; }
        int pairs = b.Length / 2;
        if (odd > pairs / 4 && even == 0) return new UnicodeEncoding(false, false);
        if (even > pairs / 4 && odd == 0) return new UnicodeEncoding(true, false);
        var detected = CharsetDetector.DetectFromBytes(b).Detected?.EncodingName?.ToLowerInvariant();
        return detected switch
        {
            "utf-16le" => new UnicodeEncoding(false, false),
            "utf-16be" => new UnicodeEncoding(true, false),
            _ => null,
        };
    }

    private static string DecodeStrict(string path, byte[] bytes, int offset, Encoding encoding)
    {
        var strict = (Encoding)encoding.Clone();
        strict.DecoderFallback = DecoderFallback.ExceptionFallback;
        try { return strict.GetString(bytes, offset, bytes.Length - offset); }
        catch (DecoderFallbackException e)
        {
            string bad = e.BytesUnknown is { Length: > 0 } u ? Convert.ToHexString(u) : "?";
            string at = e.Index >= 0 ? $" at byte offset {offset + e.Index}" : "";
            throw new GlmException($"{path}: invalid {encoding.WebName} byte sequence{at} (bytes 0x{bad}); "
                + "no text was indexed from this file — fix the bytes or re-save it in one consistent encoding");
        }
    }

    private static void CheckLooksLikeText(string path, string text)
    {
        int control = 0;
        foreach (char c in text)
            if (char.IsControl(c) && c is not ('\n' or '\r' or '\t' or '\f' or '\v')) control++;
        if (control > Math.Max(2, text.Length / 200))
            throw new GlmException($"{path}: {control} control characters in {text.Length} chars; looks like a binary file, expected text");
    }
}
