using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// The small element-wise steps of a ChatGLM/GLM-4 decode step (RMSNorm, rotary embedding, SwiGLU) as single managed loops.
/// At one token per step each of them is a few thousand elements, so their cost in libtorch is the dispatch of the ~30
/// tensor ops they are made of (≈ 2–5 µs each through TorchSharp), not arithmetic; a layer spent more time there than in its
/// matrix products' arithmetic. Every loop computes what the reference's op sequence computes, rounding to bf16/fp16 after each op
/// where libtorch does (half-precision ops compute in fp32 and round their result), so outputs match the libtorch path to the last bit
/// except where a reduction's summation order differs (RMSNorm's mean) or a transcendental is evaluated by another library
/// (SwiGLU's exp) — both are fp32-ulp differences before the bf16 rounding. Applies to CPU bf16/fp16/fp32 tensors (decode
/// steps and prompts alike) of rows of at most <see cref="MaxRowLength"/> elements with no autograd; otherwise the Try
/// methods return null/false and callers use libtorch.
/// </summary>
internal static unsafe partial class CpuDecodeOps
{
    /// <summary>Most rows handled: any number by default (GLM_DECODE_OPS_ROWS sets a limit, for comparisons). At 16 glm4-bench
    /// bf16 streams these loops beat libtorch's op sequences (whole-sweep profile: norms 0.80 → 0.47 s, rotary 0.65 → 0.48 s,
    /// attention 1.66 → 1.43 s, SwiGLU 0.46 → 0.37 s; 16-stream aggregate 174 → 208 tok/s back to back), and on a 128-token
    /// prompt 41 norms take 2.7 ms against libtorch's 27–38 ms and the 20 rotaries 6 ms against 21–26 (session 11).</summary>
    public static long MaxRows { get; set; } = long.TryParse(Environment.GetEnvironmentVariable("GLM_DECODE_OPS_ROWS"), out long rows) ? rows : long.MaxValue;

    /// <summary>Below this many elements a loop runs on the calling thread: handing work to the thread pool costs more than
    /// it saves, and far more when another process holds the other cores. 2¹⁶ (2¹⁸ before session 13) splits a prompt's norms
    /// and residual adds (128 × 1,536 elements on glm4-bench: norms 2.4 → 1.5–2.1 ms, adds 3.8–4.8 → 2.5–4.7 ms per prompt)
    /// while single decode rows stay on one thread.</summary>
    private const long ParallelElements = 1L << 16;

    /// <summary>Longest row handled (hidden or FFN size).</summary>
    public const long MaxRowLength = 65536;

    /// <summary>Set to false (or GLM_NO_DECODE_KERNELS=1) to run the libtorch op sequences instead (tests, comparisons).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_DECODE_KERNELS") != "1";

    /// <summary>Whether the loops take <paramref name="t"/>; <paramref name="shape"/> is its shape (fetched once: each
    /// <c>Tensor.shape</c> read is a native call, ≈ 0.7 µs, and a decode step makes hundreds of these checks).</summary>
    private static bool Applies(Tensor t, out long[] shape)
    {
        shape = [];
        if (!Enabled || t.device_type != DeviceType.CPU || t.requires_grad || !t.is_contiguous()) return false;
        shape = t.shape;
        return shape.Length > 0 && shape[^1] > 0 && shape[^1] <= MaxRowLength && t.NumberOfElements / shape[^1] <= MaxRows &&
            (t.dtype == ScalarType.BFloat16 || t.dtype == ScalarType.Float16 || t.dtype == ScalarType.Float32);
    }

    /// <summary>
    /// RMSNorm over the last dim with fp32 statistics, as <c>ChatGlmModel.RmsNorm</c>: ChatGLM multiplies by the weight in fp32
    /// and rounds once; HF (<paramref name="castBeforeWeight"/>) rounds the normalised value first, then multiplies in the
    /// activation dtype. Null when not applicable.
    /// </summary>
    public static Tensor? TryRmsNorm(Tensor x, Tensor weight, double eps, bool castBeforeWeight)
    {
        if (!Applies(x, out var shape) || weight.dtype != x.dtype || !weight.is_contiguous() || weight.dim() != 1 || weight.NumberOfElements != shape[^1]) return null;
        long h = shape[^1], rows = x.NumberOfElements / h;
        var y = empty(shape, dtype: x.dtype);
        var e = KindOf(x.dtype);
        byte* xp = Data(x), wp = Data(weight), yp = Data(y);
        float epsilon = (float)eps;
        long size = x.ElementSize;
        ForRowRanges(rows, ThreadCount(), small: rows * h < ParallelElements, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++) RmsNormRow(e, xp + r * h * size, wp, yp + r * h * size, h, epsilon, castBeforeWeight);
        });
        return y;
    }

    /// <summary>One row of <see cref="TryRmsNorm"/> on raw memory of <paramref name="dtype"/> (the fused decode step calls it too).</summary>
    public static void RmsNormRow(ScalarType dtype, byte* x, byte* weight, byte* y, long h, float epsilon, bool castBeforeWeight) =>
        RmsNormRow(KindOf(dtype), x, weight, y, h, epsilon, castBeforeWeight);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RmsNormRow(Kind e, byte* xp, byte* wp, byte* yp, long h, float epsilon, bool castBeforeWeight)
    {
        if (Avx512F.IsSupported && e != Kind.Fp32 && h % 16 == 0)
        {
            HalfRmsRow(e == Kind.Bf16, (ushort*)xp, (ushort*)wp, (ushort*)yp, h, epsilon, castBeforeWeight);
            return;
        }
        float sum = 0;
        for (long i = 0; i < h; i++) { float v = Load(xp, e, i); sum += v * v; }
        float inv = 1f / MathF.Sqrt(sum / h + epsilon);
        for (long i = 0; i < h; i++)
        {
            float normed = Load(xp, e, i) * inv;
            float w = Load(wp, e, i);
            Store(yp, e, i, castBeforeWeight ? w * Round(e, normed) : w * normed);
        }
    }

    /// <summary>One bf16 or fp16 row of <see cref="TryRmsNorm"/> in 16-wide vectors (h a multiple of 16); same roundings.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HalfRmsRow(bool bf16, ushort* x, ushort* w, ushort* y, long h, float epsilon, bool castBeforeWeight)
    {
        var squares = Vector512<float>.Zero;
        for (long i = 0; i < h; i += 16)
        {
            var v = Load16(x + i, bf16);
            squares = Avx512F.FusedMultiplyAdd(v, v, squares);
        }
        var inv = Vector512.Create(1f / MathF.Sqrt(Vector512.Sum(squares) / h + epsilon));
        for (long i = 0; i < h; i += 16)
        {
            var normed = Load16(x + i, bf16) * inv;
            var weight = Load16(w + i, bf16);
            Store16(y + i, castBeforeWeight ? weight * Round16(normed, bf16) : weight * normed, bf16);
        }
    }

    /// <summary>
    /// Rotates, in place, the first <paramref name="rotaryDim"/> dims of heads [0, <paramref name="rotatedHeads"/>) of
    /// <paramref name="qkv"/> [b, s, heads·d] (GLM's interleaved pairs (2i, 2i+1)): (x0·c − x1·s, x1·c + x0·s) with each
    /// product and sum rounded as the reference's bf16 ops round them. <paramref name="cos"/>/<paramref name="sin"/> are the
    /// [maxPositions, rotaryDim/2] tables in qkv's dtype; <paramref name="positionIds"/> is int64 [b, s]. False (nothing
    /// changed) when not applicable.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryRotateInPlace(Tensor qkv, int rotatedHeads, int headDim, int rotaryDim, Tensor cos, Tensor sin, Tensor positionIds)
    {
        if (!Applies(qkv, out var shape) || shape.Length != 3 || cos.dtype != qkv.dtype || sin.dtype != qkv.dtype ||
            !cos.is_contiguous() || !sin.is_contiguous() || positionIds.dtype != ScalarType.Int64 || positionIds.device_type != DeviceType.CPU ||
            positionIds.NumberOfElements != shape[0] * shape[1] || (long)rotatedHeads * headDim > shape[2])
            return false;
        long rows = shape[0] * shape[1], width = shape[2], half = rotaryDim / 2, maxPositions = cos.shape[0];
        // A prompt's [b, s] ids may be an expanded view; a decode step's are contiguous and need no copy (nor a new handle).
        using var copied = positionIds.is_contiguous() ? null : positionIds.contiguous();
        var positions = copied ?? positionIds;
        var e = KindOf(qkv.dtype);
        byte* p = Data(qkv), cp = Data(cos), sp = Data(sin);
        long* pos = (long*)Data(positions);
        for (long r = 0; r < rows; r++)
        {
            long position = pos[r];
            if (position < 0 || position >= maxPositions) return false; // libtorch raises the index error
        }
        long size = qkv.ElementSize;
        ForRowRanges(rows, ThreadCount(), small: rows * width < ParallelElements, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++) RotateRow(e, p + r * width * size, rotatedHeads, headDim, half, cp, sp, pos[r]);
        });
        return true;
    }

    /// <summary>Rotates heads [0, <paramref name="rotatedHeads"/>) of one fused-QKV row at <paramref name="row"/> for
    /// <paramref name="position"/> (checked by the caller against the tables), as <see cref="TryRotateInPlace"/>.</summary>
    public static void RotateRow(ScalarType dtype, byte* row, long rotatedHeads, long headDim, long half, byte* cos, byte* sin, long position) =>
        RotateRow(KindOf(dtype), row, rotatedHeads, headDim, half, cos, sin, position);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RotateRow(Kind e, byte* p, long rotatedHeads, long headDim, long half, byte* cp, byte* sp, long position)
    {
        long table = position * half;
        if (Avx512F.IsSupported && e != Kind.Fp32 && half % 8 == 0 && half <= 512)
        {
            // 8 pairs per vector: cos duplicated over each pair, sin as (−s, s), and the pair-swapped input give
            // (x0·c + x1·(−s), x1·c + x0·s) with the same two product roundings and one sum rounding as the scalar loop
            // (bf16/fp16 products are exact in fp32, and rounding commutes with negation).
            float* cosPairs = stackalloc float[(int)(2 * half)], sinPairs = stackalloc float[(int)(2 * half)];
            for (long i = 0; i < half; i++)
            {
                float c = Load(cp, e, table + i), s = Load(sp, e, table + i);
                cosPairs[2 * i] = cosPairs[2 * i + 1] = c;
                sinPairs[2 * i] = -s;
                sinPairs[2 * i + 1] = s;
            }
            bool bf16 = e == Kind.Bf16;
            var swapPairs = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
            for (long head = 0; head < rotatedHeads; head++)
            {
                ushort* row = (ushort*)p + head * headDim;
                for (long j = 0; j < 2 * half; j += 16)
                {
                    var v = Load16(row + j, bf16);
                    var swapped = Avx512F.PermuteVar16x32(v, swapPairs);
                    var sum = Round16(v * Avx512F.LoadVector512(cosPairs + j), bf16) + Round16(swapped * Avx512F.LoadVector512(sinPairs + j), bf16);
                    Store16(row + j, sum, bf16);
                }
            }
            return;
        }
        for (long head = 0; head < rotatedHeads; head++)
        {
            long baseIndex = head * headDim;
            for (long i = 0; i < half; i++)
            {
                float c = Load(cp, e, table + i), s = Load(sp, e, table + i);
                float x0 = Load(p, e, baseIndex + 2 * i), x1 = Load(p, e, baseIndex + 2 * i + 1);
                Store(p, e, baseIndex + 2 * i, Round(e, x0 * c) - Round(e, x1 * s));
                Store(p, e, baseIndex + 2 * i + 1, Round(e, x1 * c) + Round(e, x0 * s));
            }
        }
    }

    /// <summary>silu(gate) · up for <paramref name="gateUp"/> [..., 2·<paramref name="ffn"/>] (gate first), as F.silu then a
    /// product, each rounded to the activation dtype. Null when not applicable.</summary>
    public static Tensor? TrySwiGlu(Tensor gateUp, long ffn)
    {
        if (!Applies(gateUp, out var shape) || shape[^1] != 2 * ffn) return null;
        long rows = gateUp.NumberOfElements / (2 * ffn);
        shape = (long[])shape.Clone();
        shape[^1] = ffn;
        var y = empty(shape, dtype: gateUp.dtype);
        var e = KindOf(gateUp.dtype);
        byte* gp = Data(gateUp), yp = Data(y);
        long size = gateUp.ElementSize;
        ForRowRanges(rows, ThreadCount(), small: rows * ffn < ParallelElements, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++) SwiGluRow(e, gp + r * 2 * ffn * size, yp + r * ffn * size, ffn);
        });
        return y;
    }

    /// <summary>One row of <see cref="TrySwiGlu"/>: <paramref name="gateUp"/> [2·ffn] → <paramref name="y"/> [ffn].</summary>
    public static void SwiGluRow(ScalarType dtype, byte* gateUp, byte* y, long ffn) => SwiGluRow(KindOf(dtype), gateUp, y, ffn);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SwiGluRow(Kind e, byte* gp, byte* yp, long ffn)
    {
        float* silu = stackalloc float[16];
        long i = 0;
        if (Avx512F.IsSupported)
            for (; i + 16 <= ffn; i += 16)
            {
                // silu in fp32 vectors (exp dominates), then the two roundings per element as libtorch does them.
                var g = Wide(gp, e, i);
                var activated = g / (Vector512<float>.One + KernelSupport.Exp(-g));
                if (e != Kind.Fp32)
                {
                    bool bf16 = e == Kind.Bf16;
                    Store16((ushort*)yp + i, Round16(activated, bf16) * Wide(gp, e, ffn + i), bf16);
                    continue;
                }
                Avx512F.Store(silu, activated);
                for (int j = 0; j < 16; j++) Store(yp, e, i + j, Round(e, silu[j]) * Load(gp, e, ffn + i + j));
            }
        for (; i < ffn; i++)
        {
            float g = Load(gp, e, i), u = Load(gp, e, ffn + i);
            Store(yp, e, i, Round(e, g / (1f + MathF.Exp(-g))) * u);
        }
    }

    /// <summary>
    /// x + y for two tensors of the same shape and dtype (bf16/fp16/fp32, contiguous, CPU, no autograd) as a new tensor, summed
    /// in fp32 and rounded once — libtorch's add, without its dispatch and thread wake-up (a prompt's 40 residual adds took 5.5 ms
    /// on glm4-bench). Null when not applicable.
    /// </summary>
    public static Tensor? TryAdd(Tensor x, Tensor y)
    {
        if (!Enabled || !Avx512F.IsSupported || x.dtype != y.dtype || !IsFloatDType(x) || x.device_type != DeviceType.CPU ||
            y.device_type != DeviceType.CPU || x.requires_grad || y.requires_grad || !x.is_contiguous() || !y.is_contiguous()) return null;
        long[] shape = x.shape;
        if (!shape.SequenceEqual(y.shape)) return null;
        var sum = empty(shape, dtype: x.dtype);
        long count = x.NumberOfElements, size = x.ElementSize;
        byte* xp = Data(x), yp = Data(y), sp = Data(sum);
        var dtype = x.dtype;
        const long Chunk = 4096; // elements per work item (multiple of 16)
        ForRowRanges((count + Chunk - 1) / Chunk, ThreadCount(), small: count < ParallelElements, (c0, c1) =>
        {
            long from = c0 * Chunk, to = Math.Min(count, c1 * Chunk);
            Add(dtype, xp + from * size, yp + from * size, sp + from * size, to - from);
        });
        return sum;
    }

    /// <summary><paramref name="x"/> = <paramref name="x"/> + <paramref name="y"/> over <paramref name="n"/> elements of
    /// <paramref name="dtype"/>, summed in fp32 and rounded once (what libtorch's half-precision add stores).</summary>
    public static void AddInPlace(ScalarType dtype, byte* x, byte* y, long n) => Add(dtype, x, y, x, n);

    /// <summary><paramref name="sum"/> = <paramref name="x"/> + <paramref name="y"/> over <paramref name="n"/> elements of
    /// <paramref name="dtype"/>, summed in fp32 and rounded once (<paramref name="sum"/> may be <paramref name="x"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Add(ScalarType dtype, byte* x, byte* y, byte* sum, long n)
    {
        var e = KindOf(dtype);
        long i = 0;
        if (Avx512F.IsSupported)
        {
            if (e == Kind.Fp32)
                for (; i + 16 <= n; i += 16) Avx512F.Store((float*)sum + i, Avx512F.LoadVector512((float*)x + i) + Avx512F.LoadVector512((float*)y + i));
            else
                for (bool bf16 = e == Kind.Bf16; i + 16 <= n; i += 16) Store16((ushort*)sum + i, Load16((ushort*)x + i, bf16) + Load16((ushort*)y + i, bf16), bf16);
        }
        for (; i < n; i++) Store(sum, e, i, Load(x, e, i) + Load(y, e, i));
    }

    /// <summary>
    /// Writes one token per row into a KV cache: <paramref name="cache"/> [B, g, capacity, d] (contiguous) at
    /// cache[r, :, positions[r], :] ← <paramref name="source"/>[r, :, 0, :] for r &lt; rows; <paramref name="source"/> [rows, g, 1, d]
    /// may be a strided view (last dim contiguous). What <c>scatter_</c> along the position dim does, as row copies without
    /// building an index tensor. False when not applicable.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryWriteTokenRows(Tensor cache, Tensor source, Tensor positions, int rows)
    {
        if (!Enabled || cache.device_type != DeviceType.CPU || !cache.is_contiguous()) return false;
        long[] cs = cache.shape, ss = source.shape;
        if (cs.Length != 4 || ss.Length != 4 || source.dtype != cache.dtype || ss[0] != rows || ss[1] != cs[1] || ss[2] != 1 ||
            ss[3] != cs[3] || source.stride(3) != 1 || rows > cs[0] ||
            positions.dtype != ScalarType.Int64 || positions.device_type != DeviceType.CPU || !positions.is_contiguous() || positions.NumberOfElements < rows)
            return false;
        long groups = cs[1], capacity = cs[2], d = cs[3], size = cache.ElementSize;
        long* pos = (long*)Data(positions);
        for (int r = 0; r < rows; r++)
            if (pos[r] < 0 || pos[r] >= capacity) return false;
        byte* dst = Data(cache), src = Data(source);
        long s0 = source.stride(0), s1 = source.stride(1);
        for (int r = 0; r < rows; r++)
            WriteTokenRow(dst + r * groups * capacity * d * size, src + r * s0 * size, s1, groups, capacity, d, size, pos[r]);
        return true;
    }

    /// <summary>
    /// One token's keys or values for every KV group into one cache row [groups, capacity, d] at <paramref name="position"/>:
    /// <paramref name="source"/> holds the groups' d-element rows <paramref name="groupStride"/> elements apart.
    /// </summary>
    public static void WriteTokenRow(byte* cacheRow, byte* source, long groupStride, long groups, long capacity, long d, long elementSize, long position)
    {
        long bytes = d * elementSize;
        for (long g = 0; g < groups; g++)
            Buffer.MemoryCopy(source + g * groupStride * elementSize, cacheRow + (g * capacity + position) * bytes, bytes, bytes);
    }

    /// <summary>16 elements from element index <paramref name="i"/> of a bf16, fp16 or fp32 buffer, as fp32 (fp16: finite
    /// values only, see <see cref="KernelSupport.WidenHalf"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Wide(byte* p, Kind e, long i) =>
        e == Kind.Fp32 ? Avx512F.LoadVector512((float*)p + i) : Load16((ushort*)p + i, e == Kind.Bf16);

    /// <summary>16 fp32 values stored at element <paramref name="i"/> in the element type (rounded to nearest even, as <see cref="Store"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWide(byte* p, Kind e, long i, Vector512<float> v)
    {
        if (e == Kind.Fp32) Avx512F.Store((float*)p + i, v);
        else Store16((ushort*)p + i, v, e == Kind.Bf16);
    }

    /// <summary>Element type of a tensor these loops read and write.</summary>
    private enum Kind { Fp32, Bf16, Fp16 }

    private static Kind KindOf(ScalarType dtype) =>
        dtype == ScalarType.BFloat16 ? Kind.Bf16 : dtype == ScalarType.Float16 ? Kind.Fp16 : Kind.Fp32;

    private static float Load(byte* p, Kind e, long i) => e switch
    {
        Kind.Bf16 => Bf16ToFloat(((ushort*)p)[i]),
        Kind.Fp16 => (float)BitConverter.UInt16BitsToHalf(((ushort*)p)[i]),
        _ => ((float*)p)[i],
    };

    private static void Store(byte* p, Kind e, long i, float v)
    {
        if (e == Kind.Bf16) ((ushort*)p)[i] = FloatToBf16(v);
        else if (e == Kind.Fp16) ((ushort*)p)[i] = BitConverter.HalfToUInt16Bits((Half)v);
        else ((float*)p)[i] = v;
    }

    /// <summary><paramref name="v"/> rounded to the element type (what storing a libtorch op's result does).</summary>
    private static float Round(Kind e, float v) => e switch
    {
        Kind.Bf16 => RoundBf16(v),
        Kind.Fp16 => (float)(Half)v,
        _ => v,
    };
}
