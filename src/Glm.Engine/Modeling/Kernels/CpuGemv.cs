using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// Matrix–vector products for decoding on the CPU. At batch 1 a decode step is a chain of GEMVs whose speed is set by how
/// fast the weights stream from memory; libtorch's bf16 GEMV reaches about half the machine's read bandwidth
/// (../shared/reference/torchsharp.md §3.2). This kernel widens bf16 weights to fp32 in registers (a 16-bit shift), multiplies
/// with AVX-512 FMAs and splits weight rows over threads, which streams the weights at close to the bandwidth limit.
/// Used for up to <see cref="MaxRows"/> input rows with bf16, fp16 or fp32 weights, and for 2–<see cref="MaxBatchRows"/> bf16
/// rows against bf16 weights through AVX512_BF16 tiles (<see cref="Bf16DotKernel.FourRows"/>); everything else goes to libtorch.
/// </summary>
internal static unsafe class CpuGemv
{
    /// <summary>Most input rows handled here; beyond this a GEMM (libtorch/oneDNN) is faster.</summary>
    /// <remarks>Measured (glm4-bench bf16, 16 streams): this kernel at 16 rows gave 51 tok/s against oneDNN's 157.</remarks>
    public const int MaxRows = 4;

    /// <summary>Set to false to compare against libtorch (benchmarks, tests).</summary>
    public static bool Enabled { get; set; } = Avx512F.IsSupported && Environment.GetEnvironmentVariable("GLM_NO_GEMV_KERNEL") != "1";

    /// <summary>Worker count; defaults to torch's intra-op thread count.</summary>
    public static int Threads { get; set; }

    /// <summary>y = x·Wᵀ (+ b) when this kernel applies; otherwise returns null so the caller uses libtorch.</summary>
    public static Tensor? TryLinear(Tensor x, Tensor weight, Tensor? bias)
    {
        if (!Enabled || x.device_type != DeviceType.CPU || x.requires_grad || !IsFloatDType(x)) return null;
        long[] xs = x.shape; // each read is a native call
        long k = xs[^1], rows = k == 0 ? 0 : x.NumberOfElements / k;
        // 2–16 bf16 rows: the 4 × 3 vdpbf16ps tiles (bit-identical per row to one row alone); else the loops below / libtorch.
        if (rows > 1 && TryBatchBf16(x, xs, rows, k, weight, bias) is { } batched) return batched;
        if (rows > MaxRows) return null;
        if (TryKernel(weight, (int)Math.Min(rows, MaxRows + 1), out long n, out long inputs) is not { } kernel || inputs != k) return null;
        if (bias is not null && (!IsFloatDType(bias) || !bias.is_contiguous() || bias.NumberOfElements != n)) return null;
        return LinearThroughBuffers(x, xs, n, bias, ThreadCount(Threads), kernel);
    }

    /// <summary>Most input rows the four-row <c>vdpbf16ps</c> kernel takes (four groups); beyond this oneDNN's GEMM.</summary>
    /// <remarks>Measured (glm4-bench bf16, 16 streams, 2 vCPU Zen 4): 153–200 tok/s against oneDNN's 96–128 in the same minutes
    /// (docs/benchmarks.md, session 10).</remarks>
    public const int MaxBatchRows = 16;

    /// <summary>Set to false (or GLM_NO_BF16_BATCH=1) to route 2–16 bf16 rows as before: 2–4 through the fp32 loops below,
    /// 5–16 to oneDNN (benchmarks).</summary>
    public static bool BatchKernelEnabled { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_BF16_BATCH") != "1";

    /// <summary>Weight rows per block: a block (≤ 48 × 9 KiB) stays in L2 while every group of four inputs passes over it.</summary>
    private const long BatchBlockRows = 48;

    /// <summary>
    /// 2 .. <see cref="MaxBatchRows"/> bf16 input rows against bf16 weights (continuous batching's decode
    /// step): the rows go in groups of four (zero rows pad the last group) through <see cref="Bf16DotKernel.FourRows"/>, block
    /// by block of weight rows, so each weight streams from memory once. Bit-identical, row by row, to the one-row kernel;
    /// null when the shapes or dtypes do not fit, so the caller uses libtorch.
    /// </summary>
    private static Tensor? TryBatchBf16(Tensor x, long[] xs, long rows, long k, Tensor weight, Tensor? bias)
    {
        if (!BatchKernelEnabled || rows > MaxBatchRows || x.dtype != ScalarType.BFloat16 || !Bf16DotKernel.TakesFourRows(k)) return null;
        if (weight.dim() != 2 || weight.dtype != ScalarType.BFloat16 || weight.requires_grad || weight.device_type != DeviceType.CPU
            || !weight.is_contiguous()) return null;
        long[] ws = weight.shape;
        long n = ws[0];
        if (ws[1] != k) return null;
        if (bias is not null && (!IsFloatDType(bias) || !bias.is_contiguous() || bias.NumberOfElements != n)) return null;
        long padded = (rows + 3) / 4 * 4;
        using var xc = x.contiguous();
        ushort* wp = (ushort*)Data(weight);
        ushort* xp = (ushort*)NativeMemory.AlignedAlloc((nuint)(padded * k * sizeof(ushort)), 64);
        float* yp = (float*)NativeMemory.Alloc((nuint)(padded * n), sizeof(float));
        try
        {
            new ReadOnlySpan<ushort>(Data(xc), (int)(rows * k)).CopyTo(new Span<ushort>(xp, (int)(rows * k)));
            new Span<ushort>(xp + rows * k, (int)((padded - rows) * k)).Clear();
            RunRowKernel(null, n, ThreadCount(Threads), (r0, r1) =>
            {
                // While the groups pass over one block, each group prefetches its share of the next block (a call covers 16
                // rows' worth, so with four groups the whole next block arrives; with fewer, its first part).
                long share = BatchBlockRows / (padded / 4) * k;
                for (long b0 = r0; b0 < r1; b0 += BatchBlockRows)
                    for (long g = 0; g < padded; g += 4)
                        Bf16DotKernel.FourRows(wp, xp + g * k, yp + g * n, k, n, b0, Math.Min(r1, b0 + BatchBlockRows),
                            wp + (b0 + BatchBlockRows) * k + g / 4 * share);
            }, null);
            var shape = (long[])xs.Clone();
            shape[^1] = n;
            return FinishRows(yp, rows, n, bias, x.dtype, shape);
        }
        finally
        {
            NativeMemory.AlignedFree(xp);
            NativeMemory.Free(yp);
        }
    }

    /// <summary>
    /// The row kernel for <paramref name="weight"/> [n, k] (bf16/fp16/fp32, contiguous, k a multiple of 32, no autograd) and
    /// <paramref name="rows"/> (1..<see cref="MaxRows"/>) fp32 input rows; null when this kernel does not take them. The kernel
    /// holds the weight's address: keep the weight alive while using it.
    /// </summary>
    public static RowKernel? TryKernel(Tensor weight, int rows, out long n, out long k)
    {
        n = k = 0;
        if (!Enabled || rows < 1 || rows > MaxRows || weight.dim() != 2 || weight.requires_grad || weight.device_type != DeviceType.CPU) return null;
        var wt = weight.dtype;
        if (wt != ScalarType.BFloat16 && wt != ScalarType.Float16 && wt != ScalarType.Float32) return null;
        long[] ws = weight.shape;
        long inputs = ws[1], outputs = ws[0];
        if (inputs % 32 != 0 || !weight.is_contiguous()) return null;
        (n, k) = (outputs, inputs);
        byte* wp = Data(weight);
        return (xp, yp, r0, r1) => Run(wt, wp, xp, yp, rows, inputs, outputs, r0, r1);
    }

    /// <summary>Weights ahead of the current position that the loops prefetch (4 KiB of bf16): the hardware prefetcher alone
    /// leaves one thread short of the memory bandwidth (the int8 loops gained ~12 % the same way). GLM_GEMV_PREFETCH=0 turns it off.</summary>
    private const int PrefetchElements = 2048;
    private static readonly bool Prefetch = Environment.GetEnvironmentVariable("GLM_GEMV_PREFETCH") != "0";

    private static void Run(ScalarType wt, byte* w, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        if (wt == ScalarType.Float32) F32((float*)w, x, y, rows, k, n, r0, r1);
        else if (rows == 1)
        {
            bool bf16 = wt == ScalarType.BFloat16;
            if (!(bf16 && Bf16DotKernel.Takes(k) && Bf16DotKernel.TryRows((ushort*)w, x, y, k, r0, r1)))
                HalfSingleRow(bf16, w, x, y, k, r0, r1);
        }
        else HalfMultiRow(wt == ScalarType.BFloat16, w, x, y, rows, k, n, r0, r1);
    }

    /// <summary>
    /// One input row with bf16 or fp16 weights: bf16 → fp32 is the 16 bits shifted into the high half of a 32-bit lane; fp16 is
    /// widened with integer ops (<see cref="KernelSupport.WidenHalf"/>; checkpoint weights are finite). Two accumulators over
    /// 32 weights per pass.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HalfSingleRow(bool bf16, byte* w, float* x, float* y, long k, long r0, long r1)
    {
        for (long r = r0; r < r1; r++)
        {
            ushort* row = (ushort*)w + r * k;
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (long i = 0; i < k; i += 32)
            {
                if (Prefetch) Sse.Prefetch0(row + i + PrefetchElements); // one 64-byte line per pass
                var lo = Load16(row + i, bf16);
                var hi = Load16(row + i + 16, bf16);
                acc0 = Avx512F.FusedMultiplyAdd(lo, Avx512F.LoadVector512(x + i), acc0);
                acc1 = Avx512F.FusedMultiplyAdd(hi, Avx512F.LoadVector512(x + i + 16), acc1);
            }
            y[r] = Vector512.Sum(acc0 + acc1);
        }
    }

    /// <summary>
    /// 2–4 input rows with bf16/fp16 weights: each 16-weight block is widened once and multiplied into every row's accumulator
    /// (widening per row made a 4-row step cost four single-row steps).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HalfMultiRow(bool bf16, byte* w, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        float* x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k;
        for (long r = r0; r < r1; r++)
        {
            ushort* row = (ushort*)w + r * k;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long i = 0; i < k; i += 16)
            {
                if (Prefetch) Sse.Prefetch0(row + i + PrefetchElements);
                var wv = Load16(row + i, bf16);
                a0 = Avx512F.FusedMultiplyAdd(wv, Avx512F.LoadVector512(x0 + i), a0);
                a1 = Avx512F.FusedMultiplyAdd(wv, Avx512F.LoadVector512(x1 + i), a1);
                if (rows > 2) a2 = Avx512F.FusedMultiplyAdd(wv, Avx512F.LoadVector512(x2 + i), a2);
                if (rows > 3) a3 = Avx512F.FusedMultiplyAdd(wv, Avx512F.LoadVector512(x3 + i), a3);
            }
            y[r] = Vector512.Sum(a0);
            y[n + r] = Vector512.Sum(a1);
            if (rows > 2) y[2 * n + r] = Vector512.Sum(a2);
            if (rows > 3) y[3 * n + r] = Vector512.Sum(a3);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void F32(float* w, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        for (long r = r0; r < r1; r++)
        {
            float* row = w + r * k;
            for (int m = 0; m < rows; m++)
            {
                float* xm = x + m * k;
                var acc0 = Vector512<float>.Zero;
                var acc1 = Vector512<float>.Zero;
                for (long i = 0; i < k; i += 32)
                {
                    if (Prefetch && m == 0) { Sse.Prefetch0(row + i + PrefetchElements); Sse.Prefetch0(row + i + 16 + PrefetchElements); }
                    acc0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(row + i), Avx512F.LoadVector512(xm + i), acc0);
                    acc1 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(row + i + 16), Avx512F.LoadVector512(xm + i + 16), acc1);
                }
                y[m * n + r] = Vector512.Sum(acc0 + acc1);
            }
        }
    }
}
