using System.Text.Json;
using Glm.Engine.Runtime;
using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>Writes safetensors files (single or sharded with a Hugging Face style index).</summary>
public static class SafeTensorsWriter
{
    /// <summary>Name of the index file written by <see cref="SaveSharded"/>.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>
    /// Writes the tensors to <paramref name="path"/> atomically (temporary file in the same folder, then a rename). Data is
    /// CPU, contiguous, little-endian; the header is padded with spaces to a multiple of 8 and tensors are ordered by
    /// element size (largest first) then name, so every tensor starts at a multiple of its element size and can be mapped.
    /// </summary>
    /// <exception cref="GlmException">Duplicate or empty name, or a dtype safetensors cannot hold.</exception>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        TorchRuntime.EnsureInitialized();
        var list = Validate(path, tensors);
        WriteFile(Path.GetFullPath(path), list, metadata);
    }

    /// <summary>
    /// Writes the tensors into shards of at most <paramref name="maxShardBytes"/> data bytes each (a tensor larger than that
    /// gets a shard of its own), named <c>model-0000N-of-0000M.safetensors</c>, plus <see cref="IndexFileName"/> with
    /// <c>{"metadata":{"total_size":…},"weight_map":{name:file}}</c>. Tensors keep the given order across shards.
    /// </summary>
    /// <returns>Full paths of the shard files, in order.</returns>
    public static IReadOnlyList<string> SaveSharded(string folder, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null)
    {
        TorchRuntime.EnsureInitialized();
        if (maxShardBytes <= 0)
            throw new GlmException($"maxShardBytes {maxShardBytes}: expected a positive number of bytes.");
        folder = Path.GetFullPath(folder);
        var list = Validate(folder, tensors);
        var shards = new List<List<KeyValuePair<string, Tensor>>>();
        long current = 0;
        foreach (var kv in list)
        {
            long bytes = ByteCount(kv.Value);
            if (shards.Count == 0 || (current + bytes > maxShardBytes && shards[^1].Count > 0))
            {
                shards.Add(new List<KeyValuePair<string, Tensor>>());
                current = 0;
            }
            shards[^1].Add(kv);
            current += bytes;
        }
        if (shards.Count == 0) shards.Add(new List<KeyValuePair<string, Tensor>>());

        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long totalSize = 0;
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            string shardPath = Path.Combine(folder, file);
            WriteFile(shardPath, shards[i], metadata);
            paths.Add(shardPath);
            foreach (var kv in shards[i]) { weightMap[kv.Key] = file; totalSize += ByteCount(kv.Value); }
        }
        WriteIndex(Path.Combine(folder, IndexFileName), totalSize, weightMap);
        return paths;
    }

    private static List<KeyValuePair<string, Tensor>> Validate(string target, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (string.IsNullOrEmpty(name) || name == "__metadata__")
                throw new GlmException($"{target}: tensor name '{name}' is not allowed (empty or reserved).");
            if (!seen.Add(name)) throw new GlmException($"{target}: tensor name '{name}' given twice.");
            if (t is null || t.IsInvalid) throw new GlmException($"{target}: tensor '{name}' is null or disposed.");
            DTypes.ToSafeTensors(t.dtype);
        }
        return list;
    }

    private static long ByteCount(Tensor t) => t.NumberOfElements * DTypes.ElementSize(t.dtype);

    private static void WriteFile(string path, List<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var ordered = tensors.OrderByDescending(kv => DTypes.ElementSize(kv.Value.dtype))
            .ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        byte[] header = BuildHeader(ordered, metadata);
        AtomicFile.Write(path, stream =>
        {
            stream.Write(BitConverter.GetBytes((ulong)header.Length));
            stream.Write(header);
            foreach (var (_, t) in ordered)
            {
                var data = TensorBytes.AsCpuContiguous(t);
                try { TensorBytes.WriteFrom(data, stream); }
                finally { if (!ReferenceEquals(data, t)) data.Dispose(); }
            }
        });
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in ordered)
            {
                long bytes = ByteCount(t);
                json.WriteStartObject(name);
                json.WriteString("dtype", DTypes.ToSafeTensors(t.dtype));
                json.WriteStartArray("shape");
                foreach (long d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int padded = (int)((buffer.Length + 7) / 8 * 8);
        while (buffer.Length < padded) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    private static void WriteIndex(string path, long totalSize, SortedDictionary<string, string> weightMap)
    {
        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (k, v) in weightMap) json.WriteString(k, v);
            json.WriteEndObject();
            json.WriteEndObject();
        });
    }
}

/// <summary>Writes a file through a temporary sibling and a rename, so readers never see a half-written file.</summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string? dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { /* best effort; the original error matters */ }
            throw;
        }
    }
}
