using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>
/// GLM's partial, interleaved rotary embedding: only the first <c>rotaryDim</c> dims of each head rotate, in adjacent pairs
/// (2i, 2i+1), with θ_i = base^(−2i/rotaryDim). The cos/sin table is computed once in fp32 and cast to the activation dtype
/// before use, as the reference does (glm-formats.md §2.3 step 2, pitfalls 1–4).
/// </summary>
internal sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _cos; // [maxPositions, rotaryDim/2] in the activation dtype
    private readonly Tensor _sin;

    public int RotaryDim { get; }

    /// <summary>cos table [maxPositions, rotaryDim/2] in the activation dtype.</summary>
    public Tensor Cos => _cos;

    /// <summary>sin table [maxPositions, rotaryDim/2] in the activation dtype.</summary>
    public Tensor Sin => _sin;
    public int MaxPositions { get; }

    public RotaryEmbedding(int rotaryDim, double ropeBase, int maxPositions, ScalarType dtype, Device device)
    {
        RotaryDim = rotaryDim;
        MaxPositions = maxPositions;
        using var scope = NewDisposeScope();
        // Same op order as the reference: base ** (arange(0, dim, 2) / dim) in fp32, then 1 / that.
        var exponents = arange(0, rotaryDim, 2, dtype: ScalarType.Float32) / (float)rotaryDim;
        var theta = 1.0f / pow(tensor((float)ropeBase), exponents);
        var positions = arange(0, maxPositions, dtype: ScalarType.Float32);
        var angles = outer(positions, theta);
        _cos = angles.cos().to(dtype, device).MoveToOuterDisposeScope();
        _sin = angles.sin().to(dtype, device).MoveToOuterDisposeScope();
    }

    /// <summary>Gathers (cos, sin) for <paramref name="positionIds"/> [b, s] → each [b, 1, s, rotaryDim/2].</summary>
    public (Tensor Cos, Tensor Sin) Gather(Tensor positionIds)
    {
        long b = positionIds.shape[0], s = positionIds.shape[1];
        var flat = positionIds.reshape(-1);
        var cos = _cos.index_select(0, flat).view(b, 1, s, -1);
        var sin = _sin.index_select(0, flat).view(b, 1, s, -1);
        return (cos, sin);
    }

    /// <summary>Rotates the first <see cref="RotaryDim"/> dims of <paramref name="x"/> [b, heads, s, d].</summary>
    public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long b = x.shape[0], h = x.shape[1], s = x.shape[2], d = x.shape[3];
        var rot = x.narrow(3, 0, RotaryDim).reshape(b, h, s, RotaryDim / 2, 2);
        var x0 = rot.select(4, 0);
        var x1 = rot.select(4, 1);
        // (x0·c − x1·s, x1·c + x0·s) in the activation dtype, in the reference's order of operations.
        var out0 = x0 * cos - x1 * sin;
        var out1 = x1 * cos + x0 * sin;
        var rotated = stack(new[] { out0, out1 }, -1).view(b, h, s, RotaryDim);
        if (RotaryDim == d) return rotated;
        return cat(new[] { rotated, x.narrow(3, RotaryDim, d - RotaryDim) }, 3);
    }

    /// <summary>
    /// Rotates Q and K in place inside the fused <paramref name="qkv"/> [b, s, heads·d] (the first
    /// <paramref name="rotatedHeads"/> heads), for <paramref name="positionIds"/> [b, s]. False (nothing changed) when the
    /// managed kernel does not apply; then use <see cref="Apply"/>.
    /// </summary>
    public bool TryApplyInPlace(Tensor qkv, int rotatedHeads, int headDim, Tensor positionIds) =>
        CpuDecodeOps.TryRotateInPlace(qkv, rotatedHeads, headDim, RotaryDim, _cos, _sin, positionIds);

    public void Dispose()
    {
        _cos.Dispose();
        _sin.Dispose();
    }
}
