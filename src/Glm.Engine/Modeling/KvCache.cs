using Glm.Engine.Modeling.Kernels;
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

    internal unsafe KvCache(int layers, int batch, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
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
        if (device.type == TorchSharp.DeviceType.CPU)
        {
            _keyData = _keys.Select(t => (IntPtr)KernelSupport.Data(t)).ToArray();
            _valueData = _values.Select(t => (IntPtr)KernelSupport.Data(t)).ToArray();
        }
    }

    // Element addresses of the CPU tensors, read once (each read is two native calls; the fused decode step needs 40 per token).
    private readonly IntPtr[]? _keyData, _valueData;

    /// <summary>Address of layer <paramref name="layer"/>'s keys [b, kvHeads, capacity, headDim] (CPU caches only).</summary>
    internal unsafe byte* KeyData(int layer) => (byte*)_keyData![layer];

    /// <summary>Address of layer <paramref name="layer"/>'s values (CPU caches only).</summary>
    internal unsafe byte* ValueData(int layer) => (byte*)_valueData![layer];

    /// <summary>True for a one-row CPU cache in plain append mode (no scheduler row targets): what the fused decode step writes.</summary>
    internal bool IsPlainSingleRow => BatchSize == 1 && _row < 0 && _positions is null && _keyData is not null;

    /// <summary>True when the next forward is the scheduler's step for a lone request: one token into row 0 at its own
    /// position, attending over <see cref="RaggedAttend"/> positions (a CPU cache, so the fused decode step can write row 0).</summary>
    internal bool IsLoneRaggedRow => _positions is not null && _rows == 1 && _keyData is not null;

    /// <summary>Positions a ragged step attends over (set by <see cref="TargetRagged"/>).</summary>
    internal int RaggedAttend => _attend;

    // Write targets used by the continuous-batching scheduler (one slot per request, see Generation/BatchScheduler):
    // _row ≥ 0: the next forward writes row _row only (prefill of one slot, at Length..Length+s);
    // _positions set: the next forward writes one token into each of rows 0.._rows-1 at that row's own position and
    // attends over the first _attend cache positions (padding beyond a row's length is masked by the caller).
    private int _row = -1;
    private Tensor? _positions;
    private int _rows, _attend;

    /// <summary>Writes k, v [b, g, s, d] at positions Length..Length+s of <paramref name="layer"/> and returns views of all cached tokens.</summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        if (_positions is not null)
        {
            var keys = _keys[layer].narrow(0, 0, _rows);
            var values = _values[layer].narrow(0, 0, _rows);
            if (!CpuDecodeOps.TryWriteTokenRows(_keys[layer], k, _positions, _rows) || !CpuDecodeOps.TryWriteTokenRows(_values[layer], v, _positions, _rows))
            {
                var index = _positions.view(_rows, 1, 1, 1).expand(_rows, k.shape[1], 1, k.shape[3]);
                keys.scatter_(2, index, k);
                values.scatter_(2, index, v);
            }
            return (keys.narrow(2, 0, _attend), values.narrow(2, 0, _attend));
        }
        long s = k.shape[2];
        if (Length + s > Capacity)
            throw new GlmException($"KV cache full: {Length} + {s} tokens exceed its capacity of {Capacity}. Lower max new tokens or raise the context size.");
        var kc = _row >= 0 ? _keys[layer].narrow(0, _row, 1) : _keys[layer];
        var vc = _row >= 0 ? _values[layer].narrow(0, _row, 1) : _values[layer];
        kc.narrow(2, Length, s).copy_(k);
        vc.narrow(2, Length, s).copy_(v);
        return (kc.narrow(2, 0, Length + s), vc.narrow(2, 0, Length + s));
    }

    /// <summary>The next forward (batch 1) writes into row <paramref name="row"/> from position 0.</summary>
    internal void TargetRow(int row)
    {
        if ((uint)row >= (uint)BatchSize) throw new ArgumentOutOfRangeException(nameof(row), row, $"expected 0..{BatchSize - 1}");
        ResetTarget();
        _row = row;
    }

    /// <summary>
    /// The next forward (one token for each of rows 0..rows−1) writes row r's token at <paramref name="positions"/>[r]
    /// (int64 [rows], on the cache's device; each &lt; <paramref name="attend"/>) and attends over positions 0..attend−1.
    /// </summary>
    internal void TargetRagged(int rows, Tensor positions, int attend)
    {
        if (rows < 1 || rows > BatchSize) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"expected 1..{BatchSize}");
        if (attend > Capacity) throw new GlmException($"KV cache full: a row needs {attend} positions, more than its capacity of {Capacity}.");
        ResetTarget();
        (_positions, _rows, _attend) = (positions, rows, attend);
    }

    /// <summary>Back to whole-cache appends from position 0 (clears <see cref="TargetRow"/> / <see cref="TargetRagged"/>).</summary>
    internal void ResetTarget()
    {
        _row = -1;
        _positions = null;
        Length = 0;
    }

    /// <summary>Copies the first <paramref name="length"/> positions of row <paramref name="from"/> into row <paramref name="to"/> (every layer).</summary>
    internal void CopyRow(int from, int to, int length)
    {
        if (from == to || length == 0) return;
        using var scope = NewDisposeScope();
        for (int i = 0; i < _keys.Length; i++)
        {
            _keys[i][to].narrow(1, 0, length).copy_(_keys[i][from].narrow(1, 0, length));
            _values[i][to].narrow(1, 0, length).copy_(_values[i][from].narrow(1, 0, length));
        }
    }

    /// <summary>
    /// Copies the first <paramref name="length"/> positions of <paramref name="source"/>'s row 0 into every row of this cache
    /// and continues from there: one shared prefix (a Part A) under many different continuations, computed once.
    /// </summary>
    internal void BroadcastPrefix(KvCache source, int length)
    {
        if (length > source.Length || length > Capacity)
            throw new GlmException($"KV cache: cannot share {length} positions (source holds {source.Length}, capacity {Capacity}).");
        ResetTarget();
        using var scope = NewDisposeScope();
        for (int i = 0; i < _keys.Length; i++)
        {
            _keys[i].narrow(2, 0, length).copy_(source._keys[i].narrow(0, 0, 1).narrow(2, 0, length));
            _values[i].narrow(2, 0, length).copy_(source._values[i].narrow(0, 0, 1).narrow(2, 0, length));
        }
        Length = length;
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
