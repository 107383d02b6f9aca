using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// The int8-activation inner loops of <see cref="CpuInt8Gemv"/> (W8A8 at decode, as llama.cpp's Q8_0 × Q8_0 dot product).
/// Each input row is quantized once per call in blocks of <see cref="BlockSize"/> columns: d_b = max|x_b| / 127 and
/// xq = round-to-even(x · (127 / max|x_b|)) (an all-zero block gets d_b = 0 and xq = 0). A weight row's dot product is then
/// Σ_b d_b · (Σ_{i∈b} w_i·xq_i) — one 256-bit <c>vpdpbusd</c> (AVX-VNNI) per 32-column block gives the integer sums, which
/// are converted to fp32 and FMA'd with d_b — plus the columns after the last full block in exact fp32, all times the row's
/// weight scale. Why: fewer instructions per weight byte. The fp32-activation loop widens every 16 weights with a load-extend
/// and a conversion and spends an FMA per input row on them; here 32 weights cost one abs, and per input row one sign, one
/// vpdpbusd, one conversion and one FMA. Measured (Int8GemvBenchmark, one thread, 426 MB of matrices): 1 input row 30–32 GB/s
/// against 26–27, 4 rows ≈ 19 against 13–15. The price is activation rounding: |x − d_b·xq| ≤ d_b/2 per element.
/// </summary>
internal static unsafe class CpuInt8VnniGemv
{
    /// <summary>Columns per activation block: one scale each, and exactly one 256-bit vpdpbusd of int8 pairs.</summary>
    public const int BlockSize = 32;
    /// <summary>
    /// Bytes ahead of the current weight block that the loops prefetch (a few rows at k = 1536). The hardware prefetcher alone
    /// left one thread at 26–28 GB/s; with 4–16 KiB ahead it streamed 30–32 (1,024 B or less: no gain).
    /// </summary>
    private const int PrefetchDistance = 4096;

    /// <summary>True when the CPU has what these loops use (AVX-VNNI, AVX2, FMA).</summary>
    public static bool IsSupported => AvxVnni.IsSupported && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Bytes of scratch <see cref="QuantizeActivations"/> needs for <paramref name="rows"/> rows of <paramref name="k"/>:
    /// the int8 blocks [rows, k/32·32] followed by the fp32 block scales [rows, k/32].</summary>
    public static long ScratchBytes(int rows, long k) => rows * (k / BlockSize) * (BlockSize + sizeof(float));

    /// <summary>
    /// Quantizes the full 32-column blocks of each row of <paramref name="x"/> [rows, k] into <paramref name="scratch"/> (laid out
    /// as <see cref="ScratchBytes"/> says). Columns after the last full block are left to the fp32 tail.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeActivations(float* x, int rows, long k, byte* scratch)
    {
        long nb = k / BlockSize;
        sbyte* xq = (sbyte*)scratch;
        float* d = (float*)(scratch + rows * nb * BlockSize);
        // vpackssdw/vpacksswb interleave the two 128-bit lanes; this dword permutation restores column order.
        var order = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        for (int m = 0; m < rows; m++)
        {
            float* xm = x + m * k;
            sbyte* qm = xq + m * nb * BlockSize;
            for (long b = 0; b < nb; b++)
            {
                float* p = xm + b * BlockSize;
                var v0 = Avx.LoadVector256(p);
                var v1 = Avx.LoadVector256(p + 8);
                var v2 = Avx.LoadVector256(p + 16);
                var v3 = Avx.LoadVector256(p + 24);
                var amax8 = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                var amax4 = Vector128.Max(amax8.GetLower(), amax8.GetUpper());
                float amax = MathF.Max(MathF.Max(amax4[0], amax4[1]), MathF.Max(amax4[2], amax4[3]));
                d[m * nb + b] = amax / 127f;
                var inv = Vector256.Create(amax > 0 ? 127f / amax : 0f);
                // vcvtps2dq rounds to nearest even (the default MXCSR mode), as MathF.Round does.
                var i01 = Avx2.PackSignedSaturate(Avx.ConvertToVector256Int32(v0 * inv), Avx.ConvertToVector256Int32(v1 * inv));
                var i23 = Avx2.PackSignedSaturate(Avx.ConvertToVector256Int32(v2 * inv), Avx.ConvertToVector256Int32(v3 * inv));
                var bytes = Avx2.PackSignedSaturate(i01, i23);
                Avx.Store(qm + b * BlockSize, Avx2.PermuteVar8x32(bytes.AsInt32(), order).AsSByte());
            }
        }
    }

    /// <summary>
    /// y[m·n + r] for weight rows [r0, r1) of int8 <paramref name="w"/> [n, k] with row scales <paramref name="s"/>, from the
    /// quantized blocks in <paramref name="scratch"/> and the fp32 input <paramref name="x"/> (read only for the column tail).
    /// The block loops store unscaled sums and <see cref="Finish"/> adds the tail and the scale, and each multi-row count gets
    /// its own compiled loop: with the tail call and the row-count branches inside, the JIT spilled the accumulators to the
    /// stack every block, and 4 rows on one thread streamed 8–9 GB/s in some processes and 18 in others (now 18 in all).
    /// </summary>
    public static void Rows(sbyte* w, float* s, float* x, byte* scratch, float* y, int rows, long k, long n, long r0, long r1)
    {
        switch (rows)
        {
            case 1: OneRow(w, scratch, y, k, r0, r1); break;
            case 2: MultiRow<Two>(w, scratch, y, k, n, r0, r1); break;
            case 3: MultiRow<Three>(w, scratch, y, k, n, r0, r1); break;
            default: MultiRow<Four>(w, scratch, y, k, n, r0, r1); break;
        }
        Finish(w, s, x, y, rows, k, n, r0, r1);
    }

    /// <summary>Input rows one pass of <see cref="Rows"/> takes; more rows are done in chunks of this many.</summary>
    public const int ChunkRows = 4;

    /// <summary>Most input rows <see cref="ChunkedRows"/> takes (16 streams of continuous batching).</summary>
    public const int MaxRows = 16;

    /// <summary>Weight rows per L2 block in <see cref="ChunkedRows"/>: 64 rows of k = 4608 are 288 KiB, so the chunks after the
    /// first read the block from L2 instead of memory.</summary>
    private const long RowBlock = 64;

    /// <summary>Scratch for <paramref name="rows"/> input rows quantized chunk by chunk (<see cref="QuantizeChunks"/>).</summary>
    public static long ChunkedScratchBytes(int rows, long k) => (rows + ChunkRows - 1) / ChunkRows * ScratchBytes(ChunkRows, k);

    /// <summary><see cref="QuantizeActivations"/> for each chunk of <see cref="ChunkRows"/> rows into its own scratch region.</summary>
    public static void QuantizeChunks(float* x, int rows, long k, byte* scratch)
    {
        long chunkBytes = ScratchBytes(ChunkRows, k);
        for (int m0 = 0, c = 0; m0 < rows; m0 += ChunkRows, c++)
            QuantizeActivations(x + m0 * k, Math.Min(ChunkRows, rows - m0), k, scratch + c * chunkBytes);
    }

    /// <summary>
    /// <see cref="Rows"/> for up to <see cref="MaxRows"/> input rows: weight rows go in L2-sized blocks, and each block is
    /// multiplied with every chunk of <see cref="ChunkRows"/> input rows before the next block is read, so the weights stream
    /// from memory once whatever the row count (the chunks after the first find them in L2).
    /// </summary>
    public static void ChunkedRows(sbyte* w, float* s, float* x, byte* scratch, float* y, int rows, long k, long n, long r0, long r1)
    {
        long chunkBytes = ScratchBytes(ChunkRows, k);
        for (long b0 = r0; b0 < r1; b0 += RowBlock)
        {
            long b1 = Math.Min(r1, b0 + RowBlock);
            for (int m0 = 0, c = 0; m0 < rows; m0 += ChunkRows, c++)
                Rows(w, s, x + m0 * k, scratch + c * chunkBytes, y + m0 * n, Math.Min(ChunkRows, rows - m0), k, n, b0, b1);
        }
    }

    /// <summary>y = (y + the fp32 dot product over the columns after the last full block) · the row's scale.</summary>
    private static void Finish(sbyte* w, float* s, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        long body = k / BlockSize * BlockSize;
        for (int m = 0; m < rows; m++)
            for (long r = r0; r < r1; r++)
                y[m * n + r] = (y[m * n + r] + CpuInt8Gemv.Tail(w + r * k, x + m * k, body, k)) * s[r];
    }

    /// <summary>
    /// d · Σ w·xq over one 32-column block, added to <paramref name="acc"/>. vpdpbusd multiplies unsigned by signed bytes, so
    /// (llama.cpp's trick) the weights' magnitudes are the unsigned operand and the activations take the weights' signs:
    /// |w|·sign(xq, w) = w·xq. |w| ≤ 128 fits a byte even for −128 (a checkpoint from elsewhere may hold it) and sign(xq, w)
    /// stays in [−127, 127]; four products per int32 lane sum to at most 4·128·127, far from overflow.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block(Vector256<byte> absW, Vector256<sbyte> w, sbyte* xq, float d, Vector256<float> acc)
    {
        var dot = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, absW, Avx2.Sign(Avx.LoadVector256(xq), w));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(d), acc);
    }

    /// <summary>One input row: two accumulators over alternating blocks so consecutive FMAs do not wait on each other.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneRow(sbyte* w, byte* scratch, float* y, long k, long r0, long r1)
    {
        long nb = k / BlockSize, body = nb * BlockSize;
        sbyte* xq = (sbyte*)scratch;
        float* d = (float*)(scratch + body);
        for (long r = r0; r < r1; r++)
        {
            sbyte* row = w + r * k;
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            long b = 0;
            for (; b + 2 <= nb; b += 2)
            {
                long i = b * BlockSize;
                Sse.Prefetch0(row + i + PrefetchDistance); // one per 64-byte line; prefetches never fault, past the matrix included
                var w0 = Avx.LoadVector256(row + i);
                var w1 = Avx.LoadVector256(row + i + BlockSize);
                acc0 = Block(Avx2.Abs(w0), w0, xq + i, d[b], acc0);
                acc1 = Block(Avx2.Abs(w1), w1, xq + i + BlockSize, d[b + 1], acc1);
            }
            if (b < nb)
            {
                var w0 = Avx.LoadVector256(row + b * BlockSize);
                acc0 = Block(Avx2.Abs(w0), w0, xq + b * BlockSize, d[b], acc0);
            }
            y[r] = Vector256.Sum(acc0 + acc1);
        }
    }

    /// <summary>A row count fixed at JIT time, so each multi-row loop is compiled without branches on it.</summary>
    private interface IRowCount { static abstract int Count { get; } }
    private struct Two : IRowCount { public static int Count => 2; }
    private struct Three : IRowCount { public static int Count => 3; }
    private struct Four : IRowCount { public static int Count => 4; }

    /// <summary>
    /// 2–4 input rows: each weight block is loaded and its magnitudes taken once for all rows. Every row accumulates exactly as
    /// <see cref="OneRow"/> does (even blocks, odd blocks, the unpaired last block with the even ones), so a row's result does
    /// not depend on which other rows share the step (continuous batching gives each stream the tokens it would get alone).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiRow<TRows>(sbyte* w, byte* scratch, float* y, long k, long n, long r0, long r1) where TRows : struct, IRowCount
    {
        int rows = TRows.Count;
        long nb = k / BlockSize, body = nb * BlockSize;
        sbyte* q0 = (sbyte*)scratch, q1 = q0 + body, q2 = q1 + body, q3 = q2 + body;
        float* d0 = (float*)(scratch + rows * body), d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        for (long r = r0; r < r1; r++)
        {
            sbyte* row = w + r * k;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default; // even blocks
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default; // odd blocks
            long b = 0;
            for (; b + 2 <= nb; b += 2)
            {
                long i = b * BlockSize, j = i + BlockSize;
                Sse.Prefetch0(row + i + PrefetchDistance);
                var we = Avx.LoadVector256(row + i);
                var wo = Avx.LoadVector256(row + j);
                var absE = Avx2.Abs(we);
                var absO = Avx2.Abs(wo);
                a0 = Block(absE, we, q0 + i, d0[b], a0);
                b0 = Block(absO, wo, q0 + j, d0[b + 1], b0);
                a1 = Block(absE, we, q1 + i, d1[b], a1);
                b1 = Block(absO, wo, q1 + j, d1[b + 1], b1);
                if (rows > 2)
                {
                    a2 = Block(absE, we, q2 + i, d2[b], a2);
                    b2 = Block(absO, wo, q2 + j, d2[b + 1], b2);
                }
                if (rows > 3)
                {
                    a3 = Block(absE, we, q3 + i, d3[b], a3);
                    b3 = Block(absO, wo, q3 + j, d3[b + 1], b3);
                }
            }
            if (b < nb)
            {
                long i = b * BlockSize;
                var we = Avx.LoadVector256(row + i);
                var absE = Avx2.Abs(we);
                a0 = Block(absE, we, q0 + i, d0[b], a0);
                a1 = Block(absE, we, q1 + i, d1[b], a1);
                if (rows > 2) a2 = Block(absE, we, q2 + i, d2[b], a2);
                if (rows > 3) a3 = Block(absE, we, q3 + i, d3[b], a3);
            }
            y[r] = Vector256.Sum(a0 + b0);
            y[n + r] = Vector256.Sum(a1 + b1);
            if (rows > 2) y[2 * n + r] = Vector256.Sum(a2 + b2);
            if (rows > 3) y[3 * n + r] = Vector256.Sum(a3 + b3);
        }
    }
}
