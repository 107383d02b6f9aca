using System.Text.Json;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>How tensor data is brought into memory.</summary>
public enum SafeTensorsLoadMode
{
    /// <summary>Map the file (private copy-on-write) and return views of the mapping; pages load lazily, no second copy.</summary>
    MemoryMap,
    /// <summary>Read each tensor's bytes from a FileStream into a freshly allocated tensor.</summary>
    Stream,
}

/// <summary>
/// One <c>.safetensors</c> file: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON
/// <c>{name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {..}}</c>, then the data section.
/// The header is fully validated on <see cref="Open"/>; data is read on <see cref="Load(string)"/>.
/// </summary>
public sealed class SafeTensorsFile : IDisposable, ICheckpointFile
{
    /// <summary>Largest header accepted (the reference implementation uses the same limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly Dictionary<string, Entry> _entries;
    private readonly List<string> _names;
    private readonly Dictionary<ScalarType, Tensor> _mapped = new();
    private readonly object _gate = new();
    private bool _disposed;

    private sealed record Entry(TensorInfo Info, long Begin, long End);

    private SafeTensorsFile(string path, long fileLength, long dataStart, Dictionary<string, Entry> entries,
        List<string> names, IReadOnlyDictionary<string, string> metadata, SafeTensorsLoadMode mode)
    {
        FilePath = path; FileLength = fileLength; DataStart = dataStart;
        _entries = entries; _names = names; Metadata = metadata; Mode = mode;
    }

    /// <summary>Full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>File size in bytes when opened.</summary>
    public long FileLength { get; }

    /// <summary>Absolute offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Default load mode of <see cref="Load(string)"/>.</summary>
    public SafeTensorsLoadMode Mode { get; }

    /// <summary>Tensor names in header order.</summary>
    public IReadOnlyCollection<string> Names => _names;

    /// <summary>True when the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Dtype, shape and file of a tensor; throws <see cref="GlmException"/> when absent.</summary>
    public TensorInfo Describe(string name) => Get(name).Info;

    /// <summary>Opens and validates a safetensors file. Throws <see cref="GlmException"/> naming the problem.</summary>
    public static SafeTensorsFile Open(string path, SafeTensorsLoadMode mode = SafeTensorsLoadMode.MemoryMap)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new GlmException($"{path}: safetensors file not found.");
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = fs.Length;
        if (fileLength < 8)
            throw new GlmException($"{path}: file is {fileLength} bytes, expected at least 8 (the header length).");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLength = BitConverter.ToUInt64(lenBytes);
        if (headerLength > (ulong)(fileLength - 8))
            throw new GlmException($"{path}: header length {headerLength} runs beyond the file ({fileLength} bytes, at most {fileLength - 8} available).");
        if (headerLength > MaxHeaderBytes)
            throw new GlmException($"{path}: header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes.");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        long dataStart = 8 + (long)headerLength;
        var (entries, names, metadata) = ParseHeader(path, header, fileLength - dataStart);
        return new SafeTensorsFile(path, fileLength, dataStart, entries, names, metadata, mode);
    }

    private static (Dictionary<string, Entry>, List<string>, IReadOnlyDictionary<string, string>) ParseHeader(
        string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException ex) { throw new GlmException($"{path}: header is not valid JSON: {ex.Message}", ex); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new GlmException($"{path}: header must be a JSON object, found {doc.RootElement.ValueKind}.");
            var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
            var names = new List<string>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__") { ReadMetadata(path, prop.Value, metadata); continue; }
                if (entries.ContainsKey(prop.Name))
                    throw new GlmException($"{path}: tensor '{prop.Name}' appears twice in the header.");
                entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
                names.Add(prop.Name);
            }
            CheckNoOverlap(path, entries);
            return (entries, names, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new GlmException($"{path}: __metadata__ must be an object of strings, found {value.ValueKind}.");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new GlmException($"{path}: __metadata__.{m.Name} must be a string, found {m.Value.ValueKind}.");
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static Entry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        string where = $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object)
            throw new GlmException($"{where}: expected an object with dtype, shape, data_offsets, found {e.ValueKind}.");
        if (!e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new GlmException($"{where}: missing string field 'dtype'.");
        string dtypeName = dtypeEl.GetString()!;
        var dtype = DTypes.FromSafeTensors(dtypeName)
            ?? throw new GlmException($"{where}: dtype '{dtypeName}' is not supported, expected one of {DTypes.SupportedSafeTensorsNames}.");
        long[] shape = ReadLongArray(where, e, "shape", null);
        long[] offsets = ReadLongArray(where, e, "data_offsets", 2);
        long begin = offsets[0], end = offsets[1];
        if (begin > end)
            throw new GlmException($"{where}: data_offsets [{begin},{end}] has begin after end.");
        if (end > dataLength)
            throw new GlmException($"{where}: data_offsets end {end} is beyond the data section of {dataLength} bytes (file truncated or offsets wrong).");
        long expectedBytes;
        try { expectedBytes = checked(ShapeText.ElementCount(shape) * DTypes.ElementSize(dtype)); }
        catch (OverflowException) { throw new GlmException($"{where}: shape {ShapeText.Format(shape)} is too large."); }
        if (end - begin != expectedBytes)
            throw new GlmException($"{where}: data_offsets [{begin},{end}] span {end - begin} bytes, expected {expectedBytes} for {dtypeName} {ShapeText.Format(shape)}.");
        return new Entry(new TensorInfo(name, dtype, shape, path), begin, end);
    }

    private static long[] ReadLongArray(string where, JsonElement e, string field, int? length)
    {
        if (!e.TryGetProperty(field, out var arr) || arr.ValueKind != JsonValueKind.Array)
            throw new GlmException($"{where}: missing array field '{field}'.");
        var values = new List<long>();
        foreach (var item in arr.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw new GlmException($"{where}: {field} must hold non-negative integers, found {item.GetRawText()}.");
            values.Add(v);
        }
        if (length is int n && values.Count != n)
            throw new GlmException($"{where}: {field} must have {n} entries, found {values.Count}.");
        return values.ToArray();
    }

    private static void CheckNoOverlap(string path, Dictionary<string, Entry> entries)
    {
        Entry? previous = null;
        foreach (var entry in entries.Values.Where(x => x.End > x.Begin).OrderBy(x => x.Begin))
        {
            if (previous is not null && entry.Begin < previous.End)
                throw new GlmException($"{path}: tensor '{entry.Info.Name}' data_offsets [{entry.Begin},{entry.End}] overlap tensor '{previous.Info.Name}' [{previous.Begin},{previous.End}].");
            previous = entry;
        }
    }

    private Entry Get(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new GlmException($"{FilePath}: no tensor named '{name}'.");

    /// <summary>Loads a tensor on the CPU in its file dtype using <see cref="Mode"/>. The caller owns (disposes) it.</summary>
    public Tensor Load(string name) => Load(name, Mode);

    /// <summary>Loads a tensor on the CPU in its file dtype. The caller owns (disposes) it.</summary>
    /// <remarks>
    /// Memory-mapped tensors are views of a private (copy-on-write) mapping: writes to them never reach the file. A tensor
    /// whose absolute offset is not a multiple of its element size cannot be a view and is read by stream instead.
    /// </remarks>
    public Tensor Load(string name, SafeTensorsLoadMode mode)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        TorchRuntime.EnsureInitialized();
        var entry = Get(name);
        var info = entry.Info;
        long absolute = DataStart + entry.Begin;
        int elementSize = DTypes.ElementSize(info.DType);
        if (info.ElementCount == 0) return torch.empty(info.Shape, dtype: info.DType);
        if (mode == SafeTensorsLoadMode.MemoryMap && absolute % elementSize == 0)
        {
            var flat = MappedAs(info.DType);
            using var slice = flat.narrow(0, absolute / elementSize, info.ElementCount);
            return slice.view(info.Shape);
        }
        return ReadByStream(info, absolute);
    }

    private Tensor ReadByStream(TensorInfo info, long absolute)
    {
        var result = torch.empty(info.Shape, dtype: info.DType);
        try
        {
            using var fs = new FileStream(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            fs.Seek(absolute, SeekOrigin.Begin);
            TensorBytes.ReadInto(fs, result);
            return result;
        }
        catch (EndOfStreamException ex)
        {
            result.Dispose();
            throw new GlmException($"{FilePath}: tensor '{info.Name}' ends beyond the end of the file (file truncated since it was opened?).", ex);
        }
    }

    /// <summary>The whole file mapped as a flat 1-D tensor of the dtype (its aligned prefix: libtorch maps whole elements).</summary>
    /// <remarks>
    /// Measured with TorchSharp 0.107: <c>from_file</c> maps from byte 0 and needs size × element size ≤ file length
    /// (a 13-byte file maps as 3 floats; asking for 4 fails with "size &lt;13&gt; is smaller than the required mapping size
    /// &lt;16&gt;"), so mapping floor(length / element size) elements works for any file length. A file mixing dtypes is
    /// mapped once per dtype; that costs address space only, pages are shared through the page cache.
    /// </remarks>
    private Tensor MappedAs(ScalarType dtype)
    {
        lock (_gate)
        {
            if (_mapped.TryGetValue(dtype, out var flat)) return flat;
            long length = new FileInfo(FilePath).Length;
            if (length < FileLength)
                throw new GlmException($"{FilePath}: file shrank from {FileLength} to {length} bytes since it was opened.");
            long elements = FileLength / DTypes.ElementSize(dtype);
            flat = torch.from_file(FilePath, shared: false, size: elements, dtype: dtype);
            // The mapping belongs to this file object, not to whatever dispose scope the caller has open.
            flat.DetachFromDisposeScope();
            _mapped[dtype] = flat;
            return flat;
        }
    }

    /// <summary>Releases this object's handles on the mappings; tensors already loaded stay valid (they share the storage).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_gate)
        {
            foreach (var t in _mapped.Values) t.Dispose();
            _mapped.Clear();
        }
    }
}
