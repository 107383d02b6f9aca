using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>
/// Preallocated key/value cache for one request (or one batch): per layer K and V of shape [b, kvHeads, capacity, headDim],
/// written in place so decoding allocates nothing per step. Keys are stored after RoPE.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    /// <summary>Tokens currently held (the same for every row; padding is masked, not trimmed).</summary>
    public int Length { get; internal set; }

    /// <summary>Maximum tokens the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Batch rows.</summary>
    public int BatchSize { get; }

    internal KvCache(int layers, int batch, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
    {
        Capacity = capacity;
        BatchSize = batch;
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _keys[i] = zeros(new long[] { batch, kvHeads, capacity, headDim }, dtype: dtype, device: device);
            _values[i] = zeros(new long[] { batch, kvHeads, capacity, headDim }, dtype: dtype, device: device);
        }
    }

    /// <summary>Writes k, v [b, g, s, d] at positions Length..Length+s of <paramref name="layer"/> and returns views of all cached tokens.</summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        long s = k.shape[2];
        if (Length + s > Capacity)
            throw new GlmException($"KV cache full: {Length} + {s} tokens exceed its capacity of {Capacity}. Lower max new tokens or raise the context size.");
        _keys[layer].narrow(2, Length, s).copy_(k);
        _values[layer].narrow(2, Length, s).copy_(v);
        return (_keys[layer].narrow(2, 0, Length + s), _values[layer].narrow(2, 0, Length + s));
    }

    /// <summary>Bytes held by the cache.</summary>
    public long Bytes => _keys.Sum(t => t.NumberOfElements * t.ElementSize) * 2;

    /// <summary>Frees the cache memory at once.</summary>
    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
