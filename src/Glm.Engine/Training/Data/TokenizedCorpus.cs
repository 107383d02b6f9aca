using System.Security.Cryptography;
using System.Text;
using Glm.Engine.Tokenization;

namespace Glm.Engine.Training.Data;

/// <summary>
/// Token ids of a list of documents, cached in a binary file so a resumed or repeated training run does not re-tokenize the
/// corpus. The cache is keyed by a fingerprint of the documents and the tokenizer's vocabulary size; a stale cache is rebuilt.
/// File layout: "GLMTOK1\0", fingerprint (32 bytes), document count, then per document its length and int32 ids (little-endian).
/// </summary>
public static class TokenizedCorpus
{
    private static readonly byte[] Magic = "GLMTOK1\0"u8.ToArray();

    /// <summary>Loads the ids from <paramref name="cacheFile"/> or tokenizes <paramref name="documents"/> and writes the cache.</summary>
    public static IReadOnlyList<int[]> LoadOrBuild(IReadOnlyList<CorpusDocument> documents, IGlmTokenizer tokenizer, string cacheFile,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default)
    {
        byte[] fingerprint = Fingerprint(documents, tokenizer);
        if (TryRead(cacheFile, fingerprint) is { } cached) return cached;

        var ids = new int[documents.Count][];
        int done = 0;
        Parallel.For(0, documents.Count, new ParallelOptions { CancellationToken = ct }, i =>
        {
            ids[i] = tokenizer.Encode(documents[i].Text).ToArray();
            progress?.Report((Interlocked.Increment(ref done), documents.Count));
        });
        Write(cacheFile, fingerprint, ids);
        return ids;
    }

    private static byte[] Fingerprint(IReadOnlyList<CorpusDocument> documents, IGlmTokenizer tokenizer)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(BitConverter.GetBytes(tokenizer.VocabSize));
        sha.AppendData(Encoding.UTF8.GetBytes(tokenizer.GetType().FullName ?? ""));
        sha.AppendData(Encoding.UTF8.GetBytes(string.Join(",", tokenizer.Encode("中文，English 123。"))));
        foreach (var d in documents)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(d.Source));
            sha.AppendData(BitConverter.GetBytes(d.Text.Length));
            sha.AppendData(Encoding.UTF8.GetBytes(d.Text));
        }
        return sha.GetHashAndReset();
    }

    private static IReadOnlyList<int[]>? TryRead(string path, byte[] fingerprint)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var r = new BinaryReader(File.OpenRead(path));
            if (!r.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic)) return null;
            if (!r.ReadBytes(32).AsSpan().SequenceEqual(fingerprint)) return null;
            int count = r.ReadInt32();
            var docs = new int[count][];
            for (int i = 0; i < count; i++)
            {
                int n = r.ReadInt32();
                var bytes = r.ReadBytes(n * sizeof(int));
                if (bytes.Length != n * sizeof(int)) return null; // truncated: rebuild
                docs[i] = new int[n];
                Buffer.BlockCopy(bytes, 0, docs[i], 0, bytes.Length);
            }
            return docs;
        }
        catch (EndOfStreamException) { return null; }
    }

    private static void Write(string path, byte[] fingerprint, int[][] docs)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // A private temporary name: two processes filling the same cache (e.g. eval-pretrain's shared temp folder) must not
        // write into one file; the last complete one wins the move.
        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        using (var w = new BinaryWriter(File.Create(tmp)))
        {
            w.Write(Magic);
            w.Write(fingerprint);
            w.Write(docs.Length);
            foreach (var d in docs)
            {
                w.Write(d.Length);
                var bytes = new byte[d.Length * sizeof(int)];
                Buffer.BlockCopy(d, 0, bytes, 0, bytes.Length);
                w.Write(bytes);
            }
        }
        File.Move(tmp, path, overwrite: true);
    }
}
