namespace Glm.Engine.Checkpoints;

/// <summary>A whitelisted Python global named by a pickle (module and name).</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => Module + "." + Name;
}

/// <summary>A dict (or OrderedDict) from a pickle, keeping insertion order.</summary>
internal sealed class PickleDict
{
    private readonly Dictionary<object, int> _index = new();

    public List<KeyValuePair<object, object?>> Items { get; } = new();

    public void Set(object key, object? value)
    {
        if (_index.TryGetValue(key, out int i)) Items[i] = new(key, value);
        else { _index[key] = Items.Count; Items.Add(new(key, value)); }
    }
}

/// <summary>The persistent id of a storage: <c>('storage', torch.XStorage, key, location, numel)</c>.</summary>
internal sealed record StorageRef(TorchSharp.torch.ScalarType DType, string Key, string Location, long ElementCount);

/// <summary>A tensor rebuilt by <c>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)</c>.</summary>
internal sealed record TensorRef(StorageRef Storage, long StorageOffset, long[] Shape, long[] Stride);
