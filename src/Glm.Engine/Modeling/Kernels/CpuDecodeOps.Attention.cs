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
    /// <summary>Keys per block of the p·V pass: the block's V rows are widened once into fp32 (32 KiB at d = 128), which stays
    /// in L1 while every query head of the group reads it.</summary>
    private const long ValueBlock = 64;

    /// <summary>Keys whose scores are reduced together (<see cref="Dot16"/>).</summary>
    private const long KeyBlock = 16;

    /// <summary>
    /// Attention of one new token over the cache with grouped KV heads (query head h reads KV head h / (heads / kvHeads)), as
    /// <c>ChatGlmBlock.Attention</c>'s decode branch computes it: scores q·k rounded, scaled and rounded (bf16/fp16), softmax in fp32,
    /// probabilities rounded, then Σ p·v accumulated in fp32 and rounded once. <paramref name="q"/> [b, heads, 1, d] and
    /// <paramref name="k"/>/<paramref name="v"/> [b, kvHeads, t, d] may be strided views (last dim contiguous). An optional prefix
    /// <paramref name="mask"/> [b, 1, 1, t] limits each row to its own first keys (ragged rows of the batch scheduler). Null when
    /// not applicable (another mask shape, non-CPU, no AVX-512, d not a multiple of 16).
    /// Long contexts are bound by reading the cache, so each work item is one KV group with all the query heads that share it
    /// (6 for GLM-4): a K row is widened once for all of them and V is walked in L1-sized blocks that every head reads; softmax
    /// runs 16 scores at a time. The fp32 summation order differs from libtorch's (ulps before the final rounding).
    /// </summary>
    public static Tensor? TryAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? mask = null)
    {
        if (!Enabled || !Avx512F.IsSupported || q.device_type != DeviceType.CPU || q.requires_grad || q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return null;
        if (q.dtype != k.dtype || q.dtype != v.dtype || (q.dtype != ScalarType.BFloat16 && q.dtype != ScalarType.Float16 && q.dtype != ScalarType.Float32)) return null;
        long[] qs = q.shape, ks = k.shape, vs = v.shape; // one native call each
        long b = qs[0], heads = qs[1], d = qs[3], groups = ks[1], t = ks[2];
        if (qs[2] != 1 || d % 16 != 0 || groups == 0 || heads % groups != 0 || ks[0] != b || vs[0] != b || vs[1] != groups ||
            vs[2] != t || ks[3] != d || vs[3] != d || q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1 || t == 0)
            return null;
        if (b > MaxRows) return null;
        var lengths = new long[b];
        if (!PrefixLengths(mask, b, t, lengths)) return null;
        var y = empty(new long[] { b, heads, 1, d }, dtype: q.dtype);
        var s = new Strides(Data(q), Data(k), Data(v), Data(y), q.stride(0), q.stride(1), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), d, heads);
        Attend(s, KindOf(q.dtype), b, groups, t, lengths, scale);
        return y;
    }

    /// <summary>
    /// <see cref="TryAttention"/> for one row on raw memory (the fused decode step): <paramref name="q"/> [heads, d] and the
    /// output <paramref name="y"/> [heads, d] contiguous; <paramref name="keys"/>/<paramref name="values"/> a cache row
    /// [groups, capacity, d] of which the first <paramref name="seen"/> positions are attended.
    /// </summary>
    public static void AttendCacheRow(ScalarType dtype, byte* q, byte* keys, byte* values, byte* y, long heads, long groups, long d,
        long capacity, long seen, float scale)
    {
        var s = new Strides(q, keys, values, y, heads * d, d, groups * capacity * d, capacity * d, d, groups * capacity * d, capacity * d, d, d, heads);
        Attend(s, KindOf(dtype), 1, groups, seen, [seen], scale);
    }

    private static void Attend(in Strides s, Kind e, long b, long groups, long t, long[] lengths, float scale)
    {
        long heads = s.Heads, d = s.D;
        int threads = ThreadCount();
        long perGroup = heads / groups, slices = GroupSlices(b * groups, perGroup, threads), headsPerItem = perGroup / slices;
        long itemsPerRow = groups * slices;
        var strides = s;
        ForRowRanges(b * itemsPerRow, threads, small: b * heads * t * d < (1L << 17), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            float* buffer = (float*)NativeMemory.Alloc((nuint)(headsPerItem * (2 * d + t) + (1 + KeyBlock + ValueBlock) * d), sizeof(float));
            try
            {
                for (long item = first; item < end; item++)
                {
                    long r = item / itemsPerRow, g = item % itemsPerRow / slices;
                    long firstHead = g * perGroup + item % slices * headsPerItem;
                    AttendGroup(strides, e, r, g, firstHead, headsPerItem, lengths[r], scale, buffer);
                }
            }
            finally { NativeMemory.Free(buffer); }
        });
    }

    /// <summary>Base pointers and element strides of q, k, v and the output.</summary>
    private readonly struct Strides(byte* q, byte* k, byte* v, byte* y, long q0, long q1, long k0, long k1, long k2,
        long v0, long v1, long v2, long d, long heads)
    {
        public readonly byte* Q = q, K = k, V = v, Y = y;
        public readonly long Q0 = q0, Q1 = q1, K0 = k0, K1 = k1, K2 = k2, V0 = v0, V1 = v1, V2 = v2, D = d, Heads = heads;
    }

    /// <summary>How many parts each group's query heads are split into: 1 unless there are fewer groups than threads (then
    /// the smallest divisor of <paramref name="perGroup"/> that gives every thread an item, so K/V are shared as much as possible).</summary>
    private static long GroupSlices(long groupItems, long perGroup, int threads)
    {
        for (long slices = 1; slices < perGroup; slices++)
            if (perGroup % slices == 0 && groupItems * slices >= threads) return slices;
        return perGroup;
    }

    /// <summary>Attention of query heads [firstHead, firstHead + count) of row r over the first <paramref name="seen"/> keys of KV group g.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendGroup(in Strides s, Kind e, long r, long g, long firstHead, long count, long seen, float scale, float* buffer,
        float* wideKeys = null, float* wideValues = null)
    {
        // Locals, not struct fields: stores through the float pointers below could alias the struct, so the JIT would reload
        // every field inside the loops.
        long d = s.D, k2 = s.K2, v2 = s.V2;
        byte* keys = s.K, values = s.V;
        float* qf = buffer, acc = qf + count * d, kf = acc + count * d, kb = kf + d, vb = kb + KeyBlock * d, scores = vb + ValueBlock * d;
        for (long h = 0; h < count; h++)
            for (long i = 0; i < d; i += 16) Avx512F.Store(qf + h * d + i, Wide(s.Q, e, r * s.Q0 + (firstHead + h) * s.Q1 + i));

        // Scores, 16 keys at a time: the K rows are widened once for all heads, and each head's 16 dot products are reduced
        // together (one shuffle tree instead of 16 horizontal sums).
        long kBase = r * s.K0 + g * s.K1, j = 0;
        for (; j + KeyBlock <= seen; j += KeyBlock)
        {
            float* block = kb;
            if (wideKeys != null) block = wideKeys + j * d;
            else
                for (long jj = 0; jj < KeyBlock; jj++)
                    for (long i = 0; i < d; i += 16) Avx512F.Store(kb + jj * d + i, Wide(keys, e, kBase + (j + jj) * k2 + i));
            for (long h = 0; h < count; h++) Avx512F.Store(scores + h * seen + j, Dot16(qf + h * d, block, d));
        }
        for (; j < seen; j++)
        {
            long row = kBase + j * k2;
            if (wideKeys != null) kf = wideKeys + j * d;
            else
                for (long i = 0; i < d; i += 16) Avx512F.Store(kf + i, Wide(keys, e, row + i));
            for (long h = 0; h < count; h++)
            {
                float* qh = qf + h * d;
                var a = Vector512<float>.Zero;
                for (long i = 0; i < d; i += 16) a = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(kf + i), Avx512F.LoadVector512(qh + i), a);
                scores[h * seen + j] = Vector512.Sum(a);
            }
        }
        for (long h = 0; h < count; h++) Softmax(scores + h * seen, seen, scale, e);

        // Σ p·v: blocks of V rows widened once, then read by every head while they are in L1.
        for (long i = 0; i < count * d; i++) acc[i] = 0;
        long vBase = r * s.V0 + g * s.V1;
        for (long j0 = 0; j0 < seen; j0 += ValueBlock)
        {
            long j1 = Math.Min(seen, j0 + ValueBlock);
            if (wideValues != null) vb = wideValues + j0 * d;
            else
                for (long jj = j0; jj < j1; jj++)
                    for (long i = 0; i < d; i += 16) Avx512F.Store(vb + (jj - j0) * d + i, Wide(values, e, vBase + jj * v2 + i));
            for (long h = 0; h < count; h++)
            {
                float* p = scores + h * seen, ah = acc + h * d;
                for (long i = 0; i < d; i += 16)
                {
                    Vector512<float> a0 = Avx512F.LoadVector512(ah + i), a1 = Vector512<float>.Zero;
                    long jj = j0;
                    for (; jj + 2 <= j1; jj += 2)
                    {
                        float* vr = vb + (jj - j0) * d + i;
                        a0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(vr), Vector512.Create(p[jj]), a0);
                        a1 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(vr + d), Vector512.Create(p[jj + 1]), a1);
                    }
                    if (jj < j1) a0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(vb + (jj - j0) * d + i), Vector512.Create(p[jj]), a0);
                    Avx512F.Store(ah + i, a0 + a1);
                }
            }
        }
        for (long h = 0; h < count; h++)
        {
            long outBase = (r * s.Heads + firstHead + h) * d;
            for (long i = 0; i < d; i += 16) StoreWide(s.Y, e, outBase + i, Avx512F.LoadVector512(acc + h * d + i));
        }
    }

    /// <summary>The dot products of query <paramref name="q"/> [d] with the 16 fp32 key rows at <paramref name="kb"/> [16, d], as one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector512<float> Dot16(float* q, float* kb, long d)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default,
                         a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        for (long i = 0; i < d; i += 16)
        {
            var qv = Avx512F.LoadVector512(q + i);
            float* k = kb + i;
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k), qv, a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + d), qv, a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 2 * d), qv, a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 3 * d), qv, a3);
            a4 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 4 * d), qv, a4);
            a5 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 5 * d), qv, a5);
            a6 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 6 * d), qv, a6);
            a7 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 7 * d), qv, a7);
            a8 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 8 * d), qv, a8);
            a9 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 9 * d), qv, a9);
            a10 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 10 * d), qv, a10);
            a11 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 11 * d), qv, a11);
            a12 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 12 * d), qv, a12);
            a13 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 13 * d), qv, a13);
            a14 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 14 * d), qv, a14);
            a15 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(k + 15 * d), qv, a15);
        }
        // Lane sums of 4 vectors per 128-bit lane, then the four 128-bit lanes folded: lane j of the result is Σ aj.
        var u0 = SumsOfFour(a0, a1, a2, a3);
        var u1 = SumsOfFour(a4, a5, a6, a7);
        var u2 = SumsOfFour(a8, a9, a10, a11);
        var u3 = SumsOfFour(a12, a13, a14, a15);
        var v = Avx512F.Shuffle4x128(u0, u1, 0x88) + Avx512F.Shuffle4x128(u0, u1, 0xDD);
        var w = Avx512F.Shuffle4x128(u2, u3, 0x88) + Avx512F.Shuffle4x128(u2, u3, 0xDD);
        return Avx512F.Shuffle4x128(v, w, 0x88) + Avx512F.Shuffle4x128(v, w, 0xDD);
    }

    /// <summary>In each 128-bit lane L: [Σ a.L, Σ b.L, Σ c.L, Σ d.L] (sums of that lane's four elements).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SumsOfFour(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        var ab = Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b);
        var cd = Avx512F.UnpackLow(c, d) + Avx512F.UnpackHigh(c, d);
        return Avx512F.Shuffle(ab, cd, 0x44) + Avx512F.Shuffle(ab, cd, 0xEE);
    }

    /// <summary>
    /// Raw dot products → probabilities in place, with the reference's roundings: score rounded, scaled and rounded again, softmax
    /// in fp32 (max-subtracted exp, sum, divide), probability rounded. bf16 and fp32 go 16 scores at a time, fp16 element-wise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Softmax(float* x, long n, float scale, Kind e)
    {
        var vScale = Vector512.Create(scale);
        var vMax = Vector512.Create(float.NegativeInfinity);
        long body = e == Kind.Fp16 ? 0 : n & ~15L;
        for (long j = 0; j < body; j += 16)
        {
            var v = Avx512F.LoadVector512(x + j);
            v = e == Kind.Bf16 ? RoundBf16(RoundBf16(v) * vScale) : v * vScale;
            Avx512F.Store(x + j, v);
            vMax = Avx512F.Max(vMax, v);
        }
        float max = float.NegativeInfinity;
        if (body > 0) for (int lane = 0; lane < 16; lane++) max = Math.Max(max, vMax.GetElement(lane));
        for (long j = body; j < n; j++) { x[j] = Round(e, Round(e, x[j]) * scale); max = Math.Max(max, x[j]); }

        var vTop = Vector512.Create(max);
        var vTotal = Vector512<float>.Zero;
        for (long j = 0; j < body; j += 16)
        {
            var p = KernelSupport.Exp(Avx512F.LoadVector512(x + j) - vTop);
            Avx512F.Store(x + j, p);
            vTotal += p;
        }
        float total = Vector512.Sum(vTotal);
        for (long j = body; j < n; j++) { x[j] = MathF.Exp(x[j] - max); total += x[j]; }

        var vSum = Vector512.Create(total);
        for (long j = 0; j < body; j += 16)
        {
            var p = Avx512F.Divide(Avx512F.LoadVector512(x + j), vSum);
            Avx512F.Store(x + j, e == Kind.Bf16 ? RoundBf16(p) : p);
        }
        for (long j = body; j < n; j++) x[j] = Round(e, x[j] / total);
    }

    /// <summary>
    /// Keys each row may see: all <paramref name="t"/> without a mask; with a bool mask [b, 1, 1, t] it must be a prefix
    /// (true…true false…false, at least one true — what the batch scheduler builds for ragged rows); false otherwise.
    /// </summary>
    private static bool PrefixLengths(Tensor? mask, long b, long t, long[] lengths)
    {
        if (mask is null) { Array.Fill(lengths, t); return true; }
        if (mask.dtype != ScalarType.Bool || mask.device_type != DeviceType.CPU || !mask.is_contiguous() || mask.dim() != 4 ||
            mask.shape[0] != b || mask.shape[1] != 1 || mask.shape[2] != 1 || mask.shape[3] != t)
            return false;
        byte* m = Data(mask);
        for (long r = 0; r < b; r++)
        {
            long n = 0;
            while (n < t && m[r * t + n] != 0) n++;
            for (long j = n; j < t; j++) if (m[r * t + j] != 0) return false;
            if (n == 0) return false;
            lengths[r] = n;
        }
        return true;
    }
}
