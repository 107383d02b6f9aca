using System.Text;

namespace Glm.Engine.Tokenization.Tiktoken;

/// <summary>
/// A tiktoken rank table: byte strings and their ranks (= token ids). Byte strings are held as Latin-1 strings
/// (one char per byte) so they can key a dictionary cheaply.
/// </summary>
internal sealed class TiktokenRanks
{
    private readonly Dictionary<string, int> _rankByBytes;
    private readonly Dictionary<int, byte[]> _bytesByRank;

    public TiktokenRanks(Dictionary<string, int> rankByBytes)
    {
        _rankByBytes = rankByBytes;
        _bytesByRank = new Dictionary<int, byte[]>(rankByBytes.Count);
        foreach (var (key, rank) in rankByBytes) _bytesByRank[rank] = Encoding.Latin1.GetBytes(key);
        MaxRank = rankByBytes.Count == 0 ? -1 : rankByBytes.Values.Max();
    }

    /// <summary>Number of entries.</summary>
    public int Count => _rankByBytes.Count;

    /// <summary>Largest rank in the table.</summary>
    public int MaxRank { get; }

    /// <summary>Rank of a Latin-1-encoded byte string, or null.</summary>
    public int? RankOf(string latin1Bytes) => _rankByBytes.TryGetValue(latin1Bytes, out int r) ? r : null;

    /// <summary>The bytes of a rank, or null when no entry has it.</summary>
    public byte[]? BytesOf(int rank) => _bytesByRank.TryGetValue(rank, out var b) ? b : null;

    /// <summary>
    /// Parses a tiktoken rank file: one <c>&lt;base64 bytes&gt; &lt;rank&gt;</c> pair per line; blank lines ignored.
    /// Errors are <see cref="GlmException"/>s naming the file, line and what was expected.
    /// </summary>
    public static TiktokenRanks Load(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GlmException($"Cannot read tiktoken rank file '{path}': {e.Message}", e);
        }
        var ranks = new Dictionary<string, int>(lines.Length, StringComparer.Ordinal);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0) continue;
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(fields[0]);
            }
            catch (FormatException)
            {
                throw new GlmException($"{path}:{i + 1}: '{Clip(line)}' is not a tiktoken rank line (expected '<base64 bytes> <rank>').");
            }
            if (fields.Length != 2 || !int.TryParse(fields[1], out int rank) || rank < 0 || bytes.Length == 0)
                throw new GlmException($"{path}:{i + 1}: '{Clip(line)}' is not a tiktoken rank line (expected '<base64 bytes> <rank>' with a non-negative integer rank).");
            if (!ranks.TryAdd(Encoding.Latin1.GetString(bytes), rank))
                throw new GlmException($"{path}:{i + 1}: token bytes '{fields[0]}' appear twice (each byte string must have one rank).");
        }
        if (ranks.Count == 0) throw new GlmException($"Tiktoken rank file '{path}' has no entries (expected '<base64 bytes> <rank>' lines).");
        return new TiktokenRanks(ranks);
    }

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
