using System.Text.Json;
using Glm.Engine.Runtime;
using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>The on-disk layout a <see cref="CheckpointReader"/> found.</summary>
public enum CheckpointFormat
{
    /// <summary>One <c>model.safetensors</c> (or any single .safetensors file).</summary>
    SafeTensors,
    /// <summary><c>model.safetensors.index.json</c> plus shard files.</summary>
    ShardedSafeTensors,
    /// <summary>One <c>pytorch_model.bin</c> (torch.save zip).</summary>
    PyTorchBin,
    /// <summary><c>pytorch_model.bin.index.json</c> plus shard files.</summary>
    ShardedPyTorchBin,
}

/// <summary>
/// Read access to a model checkpoint folder in any Hugging Face layout: <c>model.safetensors</c>, sharded safetensors with
/// <c>model.safetensors.index.json</c>, <c>pytorch_model.bin</c>, or sharded <c>.bin</c> with
/// <c>pytorch_model.bin.index.json</c> (checked in that order). All shards are opened and cross-checked against the index
/// up front, so a missing shard or tensor fails at <see cref="Open"/>, not in the middle of loading a model.
/// </summary>
public sealed class CheckpointReader : IDisposable
{
    private readonly Dictionary<string, ICheckpointFile> _fileOf;
    private readonly List<ICheckpointFile> _files;
    private readonly List<string> _names;

    private CheckpointReader(string location, CheckpointFormat format, List<ICheckpointFile> files,
        Dictionary<string, ICheckpointFile> fileOf, List<string> names)
    {
        Location = location; Format = format; _files = files; _fileOf = fileOf; _names = names;
    }

    /// <summary>The folder or file that was opened.</summary>
    public string Location { get; }

    /// <summary>The layout found.</summary>
    public CheckpointFormat Format { get; }

    /// <summary>All tensor names (index order for sharded checkpoints, file order otherwise).</summary>
    public IReadOnlyCollection<string> Names => _names;

    /// <summary>Full paths of the files holding data.</summary>
    public IReadOnlyList<string> Files => _files.Select(f => f.FilePath).ToList();

    /// <summary>True when the checkpoint has a tensor of that name.</summary>
    public bool Contains(string name) => _fileOf.ContainsKey(name);

    /// <summary>Dtype, shape and file of a tensor. Throws <see cref="GlmException"/> when absent.</summary>
    public TensorInfo Describe(string name) => FileOf(name).Describe(name);

    /// <summary>Loads a tensor on the CPU in its file dtype. The caller owns (disposes) the result.</summary>
    public Tensor Load(string name) => FileOf(name).Load(name);

    /// <summary>Loads a tensor on the CPU converted to <paramref name="dtype"/>. The caller owns (disposes) the result.</summary>
    public Tensor Load(string name, ScalarType dtype)
    {
        var t = Load(name);
        if (t.dtype == dtype) return t;
        using (t) return t.to(dtype);
    }

    /// <summary>
    /// Describes the tensor and checks its shape; throws <see cref="GlmException"/>
    /// "tensor X: expected shape [a,b], found [c,d] in file F" on a mismatch, or names the checkpoint when X is absent.
    /// </summary>
    public TensorInfo RequireShape(string name, long[] expected)
    {
        var info = Describe(name);
        if (!info.Shape.SequenceEqual(expected))
            throw new GlmException($"tensor {name}: expected shape {ShapeText.Format(expected)}, found {ShapeText.Format(info.Shape)} in file {info.File}");
        return info;
    }

    private ICheckpointFile FileOf(string name) =>
        _fileOf.TryGetValue(name, out var f) ? f
            : throw new GlmException($"{Location}: checkpoint has no tensor named '{name}' ({_names.Count} tensors).");

    /// <summary>
    /// Opens a checkpoint folder, or a single <c>.safetensors</c>, <c>.bin</c> or <c>*.index.json</c> file.
    /// <paramref name="mode"/> selects how safetensors data is read (memory map by default).
    /// </summary>
    /// <exception cref="GlmException">Nothing recognisable, malformed index, missing shard, or a name absent from its shard.</exception>
    public static CheckpointReader Open(string folderOrFile, SafeTensorsLoadMode mode = SafeTensorsLoadMode.MemoryMap)
    {
        TorchRuntime.EnsureInitialized();
        string location = Path.GetFullPath(folderOrFile);
        if (File.Exists(location)) return OpenFile(location, mode);
        if (!Directory.Exists(location)) throw new GlmException($"{location}: checkpoint folder not found.");
        foreach (var candidate in new[] { "model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin" })
        {
            string path = Path.Combine(location, candidate);
            if (File.Exists(path)) return OpenFile(path, mode);
        }
        var present = Directory.GetFiles(location).Select(Path.GetFileName).Where(n => n!.EndsWith(".safetensors") || n.EndsWith(".bin") || n.EndsWith(".json"));
        throw new GlmException($"{location}: no checkpoint found; expected model.safetensors, model.safetensors.index.json, pytorch_model.bin " +
                               $"or pytorch_model.bin.index.json; found: {string.Join(", ", present.DefaultIfEmpty("(none)"))}.");
    }

    private static CheckpointReader OpenFile(string path, SafeTensorsLoadMode mode)
    {
        if (path.EndsWith(".index.json", StringComparison.Ordinal)) return OpenIndex(path, mode);
        var file = OpenData(path, mode);
        var format = file is SafeTensorsFile ? CheckpointFormat.SafeTensors : CheckpointFormat.PyTorchBin;
        var fileOf = file.Names.ToDictionary(n => n, _ => file, StringComparer.Ordinal);
        return new CheckpointReader(path, format, new List<ICheckpointFile> { file }, fileOf, file.Names.ToList());
    }

    private static ICheckpointFile OpenData(string path, SafeTensorsLoadMode mode) =>
        path.EndsWith(".safetensors", StringComparison.Ordinal) ? SafeTensorsFile.Open(path, mode) : PyTorchBinFile.Open(path);

    private static CheckpointReader OpenIndex(string indexPath, SafeTensorsLoadMode mode)
    {
        string folder = Path.GetDirectoryName(indexPath)!;
        var weightMap = ReadWeightMap(indexPath);
        var opened = new Dictionary<string, ICheckpointFile>(StringComparer.Ordinal);
        try
        {
            var fileOf = new Dictionary<string, ICheckpointFile>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                if (!opened.TryGetValue(shard, out var file))
                {
                    string shardPath = Path.Combine(folder, shard);
                    if (!File.Exists(shardPath))
                        throw new GlmException($"{indexPath}: weight_map puts tensor '{name}' in shard '{shard}', but {shardPath} does not exist.");
                    file = OpenData(shardPath, mode);
                    opened[shard] = file;
                }
                if (!file.Contains(name))
                    throw new GlmException($"{indexPath}: weight_map puts tensor '{name}' in shard '{shard}', but {file.FilePath} has no such tensor.");
                fileOf[name] = file;
            }
            var format = opened.Values.FirstOrDefault() is PyTorchBinFile || indexPath.EndsWith(".bin.index.json", StringComparison.Ordinal)
                ? CheckpointFormat.ShardedPyTorchBin : CheckpointFormat.ShardedSafeTensors;
            return new CheckpointReader(indexPath, format, opened.Values.ToList(), fileOf, weightMap.Select(kv => kv.Key).ToList());
        }
        catch
        {
            foreach (var f in opened.Values) f.Dispose();
            throw;
        }
    }

    private static List<KeyValuePair<string, string>> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath)); }
        catch (JsonException ex) { throw new GlmException($"{indexPath}: index is not valid JSON: {ex.Message}", ex); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map)
                || map.ValueKind != JsonValueKind.Object)
                throw new GlmException($"{indexPath}: index has no \"weight_map\" object mapping tensor names to shard files.");
            var result = new List<KeyValuePair<string, string>>();
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new GlmException($"{indexPath}: weight_map.{p.Name} is {p.Value.ValueKind}, expected a shard file name string.");
                string shard = p.Value.GetString()!;
                if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                    throw new GlmException($"{indexPath}: weight_map.{p.Name} = '{shard}' is not a file name in the index's folder.");
                result.Add(new(p.Name, shard));
            }
            return result;
        }
    }

    /// <summary>Closes all shard files. Tensors already loaded stay valid.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
