using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling.Kernels;

internal static unsafe partial class CpuDecodeOps
{
    /// <summary>
    /// Causal attention of a prompt (prefill), replacing K/V expansion + SDPA: <paramref name="q"/> [1, heads, s, d] over
    /// <paramref name="k"/>/<paramref name="v"/> [1, kvHeads, t, d] (t ≥ s: cached positions first), query i seeing keys
    /// 0 … t − s + i. K and V are widened to fp32 once per call. Head sizes that are multiples of 64 run the register tiles of
    /// <see cref="AttendPromptRows"/>; others the decode loop (<see cref="AttendGroup"/>) per query position over its own prefix. Both keep the decode branch's roundings (scores rounded, scaled and
    /// rounded, fp32 softmax, probabilities rounded, fp32 P·V rounded once); libtorch's SDPA keeps scores and probabilities in
    /// fp32, so results differ from it by bf16/fp16 ulps. Work items are dealt to the workers in turn (a row's cost grows with
    /// its position). Returns [1, heads, s, d], a view of a [1, s, heads, d] tensor (the layout the output projection reads), or
    /// null when not applicable (batch &gt; 1, other dtypes, no AVX-512). glm4-bench: 128-token prompt 23–31 → 13–16 ms,
    /// 1,024 tokens 1,070 → 466 ms.
    /// </summary>
    public static Tensor? TryPrefillAttention(Tensor q, Tensor k, Tensor v, float scale)
    {
        if (!Enabled || !Avx512F.IsSupported || q.device_type != DeviceType.CPU || q.requires_grad || q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return null;
        if (q.dtype != k.dtype || q.dtype != v.dtype || (q.dtype != ScalarType.BFloat16 && q.dtype != ScalarType.Float16 && q.dtype != ScalarType.Float32)) return null;
        long[] qs = q.shape, ks = k.shape, vs = v.shape;
        long heads = qs[1], rows = qs[2], d = qs[3], groups = ks[1], t = ks[2];
        if (qs[0] != 1 || ks[0] != 1 || vs[0] != 1 || rows < 2 || t < rows || d % 16 != 0 || groups == 0 || heads % groups != 0 ||
            vs[1] != groups || vs[2] != t || ks[3] != d || vs[3] != d || q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1)
            return null;
        var y = empty(new long[] { 1, rows, heads, d }, dtype: q.dtype);
        // Row r = query position r: its own q row (stride over positions), the same K/V for every row (row strides 0).
        var strides = new Strides(Data(q), Data(k), Data(v), Data(y), q.stride(2), q.stride(1), 0, k.stride(1), k.stride(2),
            0, v.stride(1), v.stride(2), d, heads);
        var e = KindOf(q.dtype);
        long perGroup = heads / groups, items = rows * groups;
        int threads = (int)Math.Min(ThreadCount(), items);
        // K and V of every group widened to fp32 once ([2, groups, t, d]) instead of once per query row.
        float* wide = (float*)NativeMemory.AlignedAlloc((nuint)(2 * groups * t * d * sizeof(float)), 64);
        // Register tiles when the head size is a multiple of 64 (Kᵀ per group [d][stride], keys padded to 64 with zeros); the
        // per-row loop otherwise. glm4-bench, tiles against the loop: 1,024 tokens 447 against 633 ms, 128 tokens 11–13 against
        // 14–15 ms, 32 tokens 8.9 against 9.7 ms.
        bool tiles = d % 64 == 0 && rows >= PromptTileRows;
        long stride = (t + 63) / 64 * 64;
        float* keysT = tiles ? (float*)NativeMemory.AlignedAlloc((nuint)(groups * d * stride * sizeof(float)), 64) : null;
        try
        {
            KernelWorkers.Run(threads, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (part) =>
            {
                for (long item = part; item < 2 * groups; item += threads)
                {
                    long g = item % groups;
                    bool isValue = item >= groups;
                    byte* src = isValue ? strides.V : strides.K;
                    long rowStride = isValue ? strides.V2 : strides.K2, groupStride = isValue ? strides.V1 : strides.K1;
                    float* dst = wide + item * t * d;
                    for (long j = 0; j < t; j++)
                        for (long i = 0; i < d; i += 16) Avx512F.Store(dst + j * d + i, Wide(src, e, g * groupStride + j * rowStride + i));
                    if (tiles && !isValue) TransposeKeys(dst, t, d, keysT + g * d * stride, stride);
                }
            });
            if (tiles)
            {
                long blocks = (rows + ItemRows - 1) / ItemRows, tileItems = groups * blocks;
                KernelWorkers.Run(threads, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (part) =>
                {
                    float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)(PromptRowsBuffer(perGroup, d, stride) * sizeof(float)), 64);
                    try
                    {
                        // Items in row order dealt in turn (a row block's cost grows with its position).
                        for (long item = part; item < tileItems; item += threads)
                        {
                            long g = item % groups, r0 = item / groups * ItemRows;
                            AttendPromptRows(strides, e, g, r0, Math.Min(rows, r0 + ItemRows), perGroup, t - rows, scale,
                                keysT + g * d * stride, stride, wide + (groups + g) * t * d, buffer);
                        }
                    }
                    finally { NativeMemory.AlignedFree(buffer); }
                });
                return y.transpose(1, 2);
            }
            KernelWorkers.Run(threads, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (part) =>
            {
                float* buffer = (float*)NativeMemory.Alloc((nuint)(perGroup * (2 * d + t) + (1 + KeyBlock + ValueBlock) * d), sizeof(float));
                try
                {
                    for (long item = part; item < items; item += threads)
                    {
                        long r = item / groups, g = item % groups;
                        AttendGroup(strides, e, r, g, g * perGroup, perGroup, t - rows + r + 1, scale, buffer,
                            wide + g * t * d, wide + (groups + g) * t * d);
                    }
                }
                finally { NativeMemory.Free(buffer); }
            });
        }
        finally
        {
            NativeMemory.AlignedFree(wide);
            if (keysT != null) NativeMemory.AlignedFree(keysT);
        }
        return y.transpose(1, 2);
    }

    /// <summary>Prompts of at least this many rows use <see cref="AttendPromptRows"/>: all of them by default (tests raise it to
    /// reach the per-row loop; GLM_PROMPT_TILE_ROWS overrides).</summary>
    internal static long PromptTileRows { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("GLM_PROMPT_TILE_ROWS"), out long rows) && rows > 0 ? rows : 2;

    /// <summary>Query heads per register tile of the prompt attention (GLM-4 has 6 per KV group; others are padded).</summary>
    private const int TileHeads = 6;

    /// <summary>Prompt rows per work item: each 64-key block of Kᵀ is read from L2 once for all of them.</summary>
    private const long ItemRows = 4;

    /// <summary>
    /// Prompt attention for query rows [r0, r1) of KV group g, all its heads, as register tiles of 512-bit FMAs: scores for
    /// 6 heads × 64 keys at a time from Kᵀ (24 accumulators, 4 key vectors and 6 broadcast query values per dimension), the
    /// decode branch's softmax per row and head over the row's causal prefix, then P·V for 6 heads × 64 dimensions at a time.
    /// The per-row decode loop (<see cref="AttendGroup"/>) loads a key vector for every multiply-add; here each load feeds 6.
    /// <paramref name="keysT"/> is K of the group widened and transposed, [d][stride] (zero past t); <paramref name="values"/>
    /// V widened, [t][d].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendPromptRows(in Strides s, Kind e, long g, long r0, long r1, long perGroup, long offset, float scale,
        float* keysT, long stride, float* values, float* buffer)
    {
        long d = s.D, padded = (perGroup + TileHeads - 1) / TileHeads * TileHeads, rows = r1 - r0;
        // Queries widened [row][padded][d] (padding heads zero); scores, then probabilities in place, [row][padded][stride];
        // one tile's P·V sums [6][64].
        float* queries = buffer, scores = queries + rows * padded * d, sums = scores + rows * padded * stride;
        for (long i = 0; i < rows; i++)
            for (long h = 0; h < padded; h++)
            {
                float* dst = queries + (i * padded + h) * d;
                long at = (r0 + i) * s.Q0 + (g * perGroup + h) * s.Q1;
                for (long c = 0; c < d; c += 16) Avx512F.Store(dst + c, h < perGroup ? Wide(s.Q, e, at + c) : Vector512<float>.Zero);
            }
        // Key blocks outside, rows inside: each 64-key block of Kᵀ (32 KiB at d = 128) is read from L2 once for the item's rows.
        for (long b = 0; b * 64 < offset + r1; b++)
            for (long i = 0; i < rows; i++)
            {
                if (b * 64 >= offset + r0 + i + 1) continue;
                for (long chunk = 0; chunk < padded; chunk += TileHeads)
                    HeadTile(queries + (i * padded + chunk) * d, d, keysT + b * 64, stride, d, scores + (i * padded + chunk) * stride + b * 64, stride);
            }
        for (long i = 0; i < rows; i++)
        {
            long seen = offset + r0 + i + 1;
            // Padding heads keep zero scores, so their P·V sums are zero and never stored.
            for (long h = 0; h < perGroup; h++) Softmax(scores + (i * padded + h) * stride, seen, scale, e);
            for (long chunk = 0; chunk < padded; chunk += TileHeads)
                for (long c0 = 0; c0 < d; c0 += 64)
                {
                    // P·V for 6 heads × 64 dimensions in fp32, then each real head's 64 outputs stored once in the element type.
                    HeadTile(scores + (i * padded + chunk) * stride, stride, values + c0, d, seen, sums, 64);
                    long heads = Math.Min(TileHeads, perGroup - chunk), outBase = ((r0 + i) * s.Heads + g * perGroup + chunk) * d + c0;
                    for (long h = 0; h < heads; h++)
                        for (long j = 0; j < 64; j += 16) StoreWide(s.Y, e, outBase + h * d + j, Avx512F.LoadVector512(sums + h * 64 + j));
                }
        }
    }

    /// <summary>Floats <see cref="AttendPromptRows"/> needs as scratch.</summary>
    private static long PromptRowsBuffer(long perGroup, long d, long stride)
    {
        long padded = (perGroup + TileHeads - 1) / TileHeads * TileHeads;
        return ItemRows * padded * d + ItemRows * padded * stride + TileHeads * 64;
    }

    /// <summary>keysT[c·stride + j] = keys[j·d + c] for j &lt; t, zero for t ≤ j &lt; stride (16 × 16 transposes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposeKeys(float* keys, long t, long d, float* keysT, long stride)
    {
        float* stage = stackalloc float[256];
        for (long j0 = 0; j0 < stride; j0 += 16)
            for (long c0 = 0; c0 < d; c0 += 16)
            {
                long valid = Math.Clamp(t - j0, 0, 16);
                if (valid == 16) { CpuGemm.Transpose16(keys + j0 * d + c0, d, keysT + c0 * stride + j0, stride); continue; }
                new Span<float>(stage, 256).Clear();
                for (long j = 0; j < valid; j++) Avx512F.Store(stage + j * 16, Avx512F.LoadVector512(keys + (j0 + j) * d + c0));
                CpuGemm.Transpose16(stage, 16, keysT + c0 * stride + j0, stride);
            }
    }

    /// <summary>
    /// The register tile of both passes: out[h·ldo + j] = Σ_{i &lt; count} scalars[h·scalarStride + i] · vectors[i·stride + j]
    /// for 6 heads h and 64 lanes j, summed in order in fp32. Scores: scalars = the heads' queries, vectors = rows of Kᵀ
    /// (count = d). P·V: scalars = the heads' probabilities, vectors = rows of V (count = keys seen).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HeadTile(float* scalars, long scalarStride, float* vectors, long stride, long count, float* output, long ldo)
    {
        float* s0 = scalars, s1 = s0 + scalarStride, s2 = s1 + scalarStride, s3 = s2 + scalarStride, s4 = s3 + scalarStride, s5 = s4 + scalarStride;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default,
            c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default,
            e0 = default, e1 = default, e2 = default, e3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
        for (long i = 0; i < count; i++, vectors += stride)
        {
            var k0 = Avx512F.LoadVector512(vectors);
            var k1 = Avx512F.LoadVector512(vectors + 16);
            var k2 = Avx512F.LoadVector512(vectors + 32);
            var k3 = Avx512F.LoadVector512(vectors + 48);
            var x = Vector512.Create(s0[i]);
            a0 = Avx512F.FusedMultiplyAdd(k0, x, a0); a1 = Avx512F.FusedMultiplyAdd(k1, x, a1); a2 = Avx512F.FusedMultiplyAdd(k2, x, a2); a3 = Avx512F.FusedMultiplyAdd(k3, x, a3);
            x = Vector512.Create(s1[i]);
            b0 = Avx512F.FusedMultiplyAdd(k0, x, b0); b1 = Avx512F.FusedMultiplyAdd(k1, x, b1); b2 = Avx512F.FusedMultiplyAdd(k2, x, b2); b3 = Avx512F.FusedMultiplyAdd(k3, x, b3);
            x = Vector512.Create(s2[i]);
            c0 = Avx512F.FusedMultiplyAdd(k0, x, c0); c1 = Avx512F.FusedMultiplyAdd(k1, x, c1); c2 = Avx512F.FusedMultiplyAdd(k2, x, c2); c3 = Avx512F.FusedMultiplyAdd(k3, x, c3);
            x = Vector512.Create(s3[i]);
            d0 = Avx512F.FusedMultiplyAdd(k0, x, d0); d1 = Avx512F.FusedMultiplyAdd(k1, x, d1); d2 = Avx512F.FusedMultiplyAdd(k2, x, d2); d3 = Avx512F.FusedMultiplyAdd(k3, x, d3);
            x = Vector512.Create(s4[i]);
            e0 = Avx512F.FusedMultiplyAdd(k0, x, e0); e1 = Avx512F.FusedMultiplyAdd(k1, x, e1); e2 = Avx512F.FusedMultiplyAdd(k2, x, e2); e3 = Avx512F.FusedMultiplyAdd(k3, x, e3);
            x = Vector512.Create(s5[i]);
            f0 = Avx512F.FusedMultiplyAdd(k0, x, f0); f1 = Avx512F.FusedMultiplyAdd(k1, x, f1); f2 = Avx512F.FusedMultiplyAdd(k2, x, f2); f3 = Avx512F.FusedMultiplyAdd(k3, x, f3);
        }
        Store4(output, a0, a1, a2, a3); Store4(output + ldo, b0, b1, b2, b3); Store4(output + 2 * ldo, c0, c1, c2, c3);
        Store4(output + 3 * ldo, d0, d1, d2, d3); Store4(output + 4 * ldo, e0, e1, e2, e3); Store4(output + 5 * ldo, f0, f1, f2, f3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* p, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        Avx512F.Store(p, a); Avx512F.Store(p + 16, b); Avx512F.Store(p + 32, c); Avx512F.Store(p + 48, d);
    }
}
