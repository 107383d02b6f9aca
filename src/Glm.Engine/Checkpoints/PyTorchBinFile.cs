using System.IO.Compression;
using System.Text;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>
/// A PyTorch <c>torch.save</c> zip checkpoint (<c>pytorch_model.bin</c>): <c>&lt;archive&gt;/data.pkl</c> is a pickle of
/// the state dict whose tensors point at storages <c>&lt;archive&gt;/data/&lt;key&gt;</c>. The pickle is read by a
/// restricted unpickler (no code runs). Nested dicts are flattened with dots; a THUDM/Megatron wrapper
/// (<c>{"module": {...}, "iteration": …}</c>) is unwrapped to the inner state dict.
/// </summary>
public sealed class PyTorchBinFile : IDisposable, ICheckpointFile
{
    private static readonly string[] WrapperKeys = { "module", "model", "state_dict" };
    private readonly ZipArchive _zip;
    private readonly string _prefix;
    private readonly Dictionary<string, TensorRef> _tensors;
    private readonly List<string> _names;
    private readonly object _gate = new();

    private PyTorchBinFile(string path, ZipArchive zip, string prefix, Dictionary<string, TensorRef> tensors, List<string> names)
    {
        FilePath = path; _zip = zip; _prefix = prefix; _tensors = tensors; _names = names;
    }

    /// <summary>Full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>Tensor names in pickle order (flattened, wrapper removed).</summary>
    public IReadOnlyCollection<string> Names => _names;

    /// <summary>True when the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Dtype, shape and file of a tensor; throws <see cref="GlmException"/> when absent.</summary>
    public TensorInfo Describe(string name)
    {
        var t = Get(name);
        return new TensorInfo(name, t.Storage.DType, t.Shape, FilePath);
    }

    /// <summary>Opens the archive and interprets its pickle. Throws <see cref="GlmException"/> naming the problem.</summary>
    public static PyTorchBinFile Open(string path)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new GlmException($"{path}: PyTorch checkpoint not found.");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            Span<byte> magic = stackalloc byte[4];
            if (fs.Read(magic) < 4 || magic[0] != 'P' || magic[1] != 'K')
                throw new GlmException($"{path}: not a zip archive; only the zip format of torch.save (PyTorch 1.6+) is supported, " +
                                       "re-save legacy files with torch.save(torch.load(f), f) or convert them to safetensors.");
            fs.Position = 0;
            ZipArchive zip;
            try { zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: false); }
            catch (InvalidDataException ex) { throw new GlmException($"{path}: damaged zip archive: {ex.Message}", ex); }
            try { return Read(path, zip); }
            catch { zip.Dispose(); throw; }
        }
        catch { fs.Dispose(); throw; }
    }

    private static PyTorchBinFile Read(string path, ZipArchive zip)
    {
        var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                  ?? throw new GlmException($"{path}: no <archive>/data.pkl entry; not a torch.save checkpoint.");
        string prefix = pkl.FullName[..^"data.pkl".Length];
        var byteOrder = zip.GetEntry(prefix + "byteorder");
        if (byteOrder is not null)
        {
            string order = Encoding.ASCII.GetString(ReadAll(byteOrder)).Trim();
            if (order != "little")
                throw new GlmException($"{path}: byteorder is '{order}', expected 'little' (big-endian checkpoints are not supported).");
        }
        object? root = RestrictedUnpickler.Load($"{path} ({pkl.FullName})", ReadAll(pkl));
        if (root is not PickleDict dict)
            throw new GlmException($"{path}: the pickle holds {root?.GetType().Name ?? "None"}, expected a dict of tensors (a state dict).");
        dict = Unwrap(dict);
        var tensors = new Dictionary<string, TensorRef>(StringComparer.Ordinal);
        var names = new List<string>();
        Flatten(path, dict, "", tensors, names);
        foreach (var (name, t) in tensors) Validate(path, zip, prefix, name, t);
        return new PyTorchBinFile(path, zip, prefix, tensors, names);
    }

    private static PickleDict Unwrap(PickleDict dict)
    {
        while (!dict.Items.Any(kv => kv.Value is TensorRef))
        {
            var inner = dict.Items.FirstOrDefault(kv => kv.Key is string k && WrapperKeys.Contains(k) && kv.Value is PickleDict);
            if (inner.Value is not PickleDict next) break;
            dict = next;
        }
        return dict;
    }

    private static void Flatten(string path, PickleDict dict, string prefix, Dictionary<string, TensorRef> tensors, List<string> names)
    {
        foreach (var (key, value) in dict.Items)
        {
            string name = prefix + Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture);
            if (value is TensorRef t)
            {
                if (!tensors.TryAdd(name, t)) throw new GlmException($"{path}: tensor name '{name}' occurs twice after flattening nested dicts.");
                names.Add(name);
            }
            else if (value is PickleDict inner) Flatten(path, inner, name + ".", tensors, names);
            // Other leaves (step counters, strings, None) are not weights.
        }
    }

    private static void Validate(string path, ZipArchive zip, string prefix, string name, TensorRef t)
    {
        string where = $"{path}: tensor '{name}'";
        var s = t.Storage;
        var entry = zip.GetEntry(prefix + "data/" + s.Key)
                    ?? throw new GlmException($"{where}: storage entry '{prefix}data/{s.Key}' is missing from the archive.");
        long storageBytes = s.ElementCount * DTypes.ElementSize(s.DType);
        if (entry.Length < storageBytes)
            throw new GlmException($"{where}: storage '{s.Key}' has {entry.Length} bytes, expected {storageBytes} ({s.ElementCount} × {s.DType}).");
        if (t.Shape.Length != t.Stride.Length || t.Shape.Any(d => d < 0) || t.Stride.Any(d => d < 0) || t.StorageOffset < 0)
            throw new GlmException($"{where}: size {ShapeText.Format(t.Shape)} / stride {ShapeText.Format(t.Stride)} / offset {t.StorageOffset} are inconsistent.");
        if (t.Shape.All(d => d > 0))
        {
            long last = t.StorageOffset;
            for (int i = 0; i < t.Shape.Length; i++) last += (t.Shape[i] - 1) * t.Stride[i];
            if (last >= s.ElementCount)
                throw new GlmException($"{where}: view (offset {t.StorageOffset}, size {ShapeText.Format(t.Shape)}, stride {ShapeText.Format(t.Stride)}) reaches element {last}, beyond storage '{s.Key}' of {s.ElementCount} elements.");
        }
    }

    private TensorRef Get(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new GlmException($"{FilePath}: no tensor named '{name}'.");

    /// <summary>Loads a tensor on the CPU in its file dtype, contiguous and owning its memory. The caller disposes it.</summary>
    public Tensor Load(string name)
    {
        TorchRuntime.EnsureInitialized();
        var t = Get(name);
        var s = t.Storage;
        if (t.Shape.Any(d => d == 0)) return torch.empty(t.Shape, dtype: s.DType);
        var storage = torch.empty(new[] { s.ElementCount }, dtype: s.DType);
        try
        {
            lock (_gate)
            {
                using var stream = _zip.GetEntry(_prefix + "data/" + s.Key)!.Open();
                TensorBytes.ReadInto(stream, storage);
            }
            long count = ShapeText.ElementCount(t.Shape);
            if (t.StorageOffset == 0 && count == s.ElementCount && IsContiguous(t.Shape, t.Stride))
            {
                var whole = storage.view(t.Shape);
                storage.Dispose();
                return whole;
            }
            // A view into a shared or larger storage: materialise just this tensor's elements.
            using var view = storage.as_strided(t.Shape, t.Stride, t.StorageOffset);
            // contiguous() of an already contiguous view would still pin the whole storage; clone() owns just its elements.
            var result = view.is_contiguous() ? view.clone() : view.contiguous();
            storage.Dispose();
            return result;
        }
        catch (Exception ex) when (ex is EndOfStreamException or InvalidDataException)
        {
            storage.Dispose();
            throw new GlmException($"{FilePath}: tensor '{name}': storage '{s.Key}' could not be read: {ex.Message}", ex);
        }
    }

    private static bool IsContiguous(long[] shape, long[] stride)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] != 1 && stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    private static byte[] ReadAll(ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>Closes the archive.</summary>
    public void Dispose() => _zip.Dispose();
}
