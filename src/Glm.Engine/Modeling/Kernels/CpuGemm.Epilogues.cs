using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static Glm.Engine.Modeling.Kernels.KernelSupport;
using static TorchSharp.torch;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// What <see cref="CpuGemm"/> does with a product before storing it, besides adding the bias: nothing (the default), add a
/// residual stream (<see cref="AddTo"/>), or apply SwiGLU to a fused gate/up product (<see cref="SwiGlu"/>). Fused, the
/// separate op's pass over the product disappears (on glm4-bench the prompt's 20 SwiGLUs took 5–8 ms and its 40 residual
/// adds 2–7 ms); the results are the bits the separate ops give, because every rounding they make is made here too.
/// </summary>
internal readonly record struct GemmEpilogue
{
    /// <summary>Added to the product (same shape and dtype as the output, contiguous): y = x + round(x·Wᵀ + b), the residual add
    /// of a pre-norm block.</summary>
    public Tensor? Residual { get; init; }

    /// <summary>When positive, the weight is SwiGLU's fused [2·ffn, in] gate/up matrix (gate rows first) and the output is
    /// silu(round(gate)) · round(up), [..., ffn], as <see cref="CpuDecodeOps.TrySwiGlu"/> computes it from the rounded product.</summary>
    public long SwiGluFfn { get; init; }

    /// <summary>y = <paramref name="residual"/> + the product.</summary>
    public static GemmEpilogue AddTo(Tensor residual) => new() { Residual = residual };

    /// <summary>y = silu(gate) · up of the fused gate/up product.</summary>
    public static GemmEpilogue SwiGlu(long ffn) => new() { SwiGluFfn = ffn };

    /// <summary>True when this epilogue does more than add the bias (the default does nothing else).</summary>
    public bool Fuses => Residual is not null || SwiGluFfn != 0;
}

internal static unsafe partial class CpuGemm
{
    /// <summary>Set to false (or GLM_NO_FUSED_EPILOGUE=1) to run the residual add and SwiGLU as separate ops (A/B, tests).</summary>
    public static bool FuseEpilogues { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_FUSED_EPILOGUE") != "1";

    /// <summary>
    /// The epilogue of one unit: c [columns][ldc] holds fp32 sums for weight rows n0 + j and the chunk's input rows m; writes
    /// y[(rowBase + m)·n + n0 + j] = round(c + bias) in the output type for m &lt; rows — plus the residual at the same place
    /// when there is one, added to the rounded value and rounded again (the separate add's two roundings) — transposing
    /// 16 × 16 blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Finish(float* c, long ldc, long columns, long rows, long n0, in Operands o, long rowBase)
    {
        float* block = stackalloc float[256];
        long n = o.N;
        ScalarType output = o.Input;
        byte* y = o.Y, residual = o.Residual;
        bool wide = output == ScalarType.Float32, bf16 = output == ScalarType.BFloat16;
        for (long j0 = 0; j0 < columns; j0 += 16)
        {
            long width = Math.Min(16, columns - j0);
            var b = BiasVector(o, n0 + j0, width);
            for (long m0 = 0; m0 < rows; m0 += 16)
            {
                // Rows of c past `columns` (the last unit) hold stale sums; their lanes are never stored.
                Transpose16(c + j0 * ldc + m0, ldc, block, 16);
                long count = Math.Min(16, rows - m0);
                for (int i = 0; i < count; i++)
                {
                    long at = (rowBase + m0 + i) * n + n0 + j0;
                    var v = Avx512F.LoadVector512(block + i * 16) + b;
                    if (width == 16)
                    {
                        if (wide)
                        {
                            if (residual != null) v += Avx512F.LoadVector512((float*)residual + at);
                            Avx512F.Store((float*)y + at, v);
                        }
                        else
                        {
                            if (residual != null) v = Round16(v, bf16) + Load16((ushort*)residual + at, bf16);
                            Store16((ushort*)y + at, v, bf16);
                        }
                        continue;
                    }
                    for (int j = 0; j < width; j++)
                    {
                        StoreAny(y, output, at + j, v.GetElement(j));
                        if (residual != null) StoreAny(y, output, at + j, LoadAny(y, output, at + j) + LoadAny(residual, output, at + j));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The SwiGLU epilogue of one unit: c holds the sums of gate rows g0 + j in columns j &lt; 24 and of the matching up rows
    /// ffn + g0 + j in columns 24 + j (<paramref name="columns"/> of each); writes y[(rowBase + m)·ffn + g0 + j] =
    /// round(silu(g) · u) with g and u the product's values rounded as a stored gate/up tensor holds them, silu rounded too —
    /// <see cref="CpuDecodeOps.TrySwiGlu"/>'s arithmetic, lane for lane. ffn is a multiple of 16, so only the last unit of a
    /// row can be narrower than 16 (8 columns); its lanes go through a staging row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FinishSwiGlu(float* c, long ldc, long columns, long rows, long g0, in Operands o, long rowBase)
    {
        const int UpColumn = UnitColumns / 2;
        float* gate = stackalloc float[256], up = stackalloc float[256];
        ushort* staged = stackalloc ushort[32];
        long ffn = o.SwiGluFfn;
        ScalarType output = o.Input;
        bool wide = output == ScalarType.Float32, bf16 = output == ScalarType.BFloat16;
        for (long j0 = 0; j0 < columns; j0 += 16)
        {
            long width = Math.Min(16, columns - j0);
            Vector512<float> gateBias = BiasVector(o, g0 + j0, width), upBias = BiasVector(o, ffn + g0 + j0, width);
            for (long m0 = 0; m0 < rows; m0 += 16)
            {
                Transpose16(c + j0 * ldc + m0, ldc, gate, 16);
                Transpose16(c + (UpColumn + j0) * ldc + m0, ldc, up, 16);
                long count = Math.Min(16, rows - m0);
                for (int i = 0; i < count; i++)
                {
                    var g = Avx512F.LoadVector512(gate + i * 16) + gateBias;
                    var u = Avx512F.LoadVector512(up + i * 16) + upBias;
                    if (!wide)
                    {
                        g = Round16(g, bf16);
                        u = Round16(u, bf16);
                    }
                    var activated = g / (Vector512<float>.One + Exp(-g));
                    var v = (wide ? activated : Round16(activated, bf16)) * u;
                    byte* at = o.Y + ((rowBase + m0 + i) * ffn + g0 + j0) * (wide ? 4 : 2);
                    byte* dst = width == 16 ? at : (byte*)staged; // a last 8-column group is staged, then its lanes copied
                    if (wide) Avx512F.Store((float*)dst, v);
                    else Store16((ushort*)dst, v, bf16);
                    if (width < 16) Buffer.MemoryCopy(staged, at, 64, width * (wide ? 4 : 2));
                }
            }
        }
    }

    /// <summary>The bias of outputs [from, from + width) as fp32 lanes (zero past width, and without a bias).</summary>
    private static Vector512<float> BiasVector(in Operands o, long from, long width)
    {
        if (o.Bias == null) return Vector512<float>.Zero;
        if (width == 16)
            return o.BiasType == ScalarType.Float32 ? Avx512F.LoadVector512((float*)o.Bias + from) : Load16((ushort*)o.Bias + from, o.BiasType == ScalarType.BFloat16);
        var lanes = Vector512<float>.Zero;
        for (int j = 0; j < width; j++) lanes = lanes.WithElement(j, LoadAny(o.Bias, o.BiasType, from + j));
        return lanes;
    }

    /// <summary>
    /// Writes the transpose of the 16 × 16 block of 32-bit lanes at <paramref name="src"/> (rows <paramref name="srcStride"/>
    /// floats apart) to <paramref name="dst"/> (rows <paramref name="dstStride"/> apart): dst[j][i] = src[i][j]. Straight-line
    /// code on locals, so the 16 rows stay in registers (a loop over a stack array kept them in memory: 3.4 µs per 48 × 128 epilogue).
    /// Stage 1 interleaves pairs of rows per 128-bit lane, stage 2 quads (q[4g + c] lane l = rows 4g..4g+3 of column 4l + c),
    /// stage 3 gathers each column's four lanes across the quads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Transpose16(float* src, long srcStride, float* dst, long dstStride)
    {
        var r0 = Avx512F.LoadVector512(src + 0 * srcStride);
        var r1 = Avx512F.LoadVector512(src + 1 * srcStride);
        var r2 = Avx512F.LoadVector512(src + 2 * srcStride);
        var r3 = Avx512F.LoadVector512(src + 3 * srcStride);
        var r4 = Avx512F.LoadVector512(src + 4 * srcStride);
        var r5 = Avx512F.LoadVector512(src + 5 * srcStride);
        var r6 = Avx512F.LoadVector512(src + 6 * srcStride);
        var r7 = Avx512F.LoadVector512(src + 7 * srcStride);
        var r8 = Avx512F.LoadVector512(src + 8 * srcStride);
        var r9 = Avx512F.LoadVector512(src + 9 * srcStride);
        var r10 = Avx512F.LoadVector512(src + 10 * srcStride);
        var r11 = Avx512F.LoadVector512(src + 11 * srcStride);
        var r12 = Avx512F.LoadVector512(src + 12 * srcStride);
        var r13 = Avx512F.LoadVector512(src + 13 * srcStride);
        var r14 = Avx512F.LoadVector512(src + 14 * srcStride);
        var r15 = Avx512F.LoadVector512(src + 15 * srcStride);
        var t0 = Avx512F.UnpackLow(r0, r1).AsDouble(); var t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx512F.UnpackLow(r2, r3).AsDouble(); var t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        var t4 = Avx512F.UnpackLow(r4, r5).AsDouble(); var t5 = Avx512F.UnpackHigh(r4, r5).AsDouble();
        var t6 = Avx512F.UnpackLow(r6, r7).AsDouble(); var t7 = Avx512F.UnpackHigh(r6, r7).AsDouble();
        var t8 = Avx512F.UnpackLow(r8, r9).AsDouble(); var t9 = Avx512F.UnpackHigh(r8, r9).AsDouble();
        var t10 = Avx512F.UnpackLow(r10, r11).AsDouble(); var t11 = Avx512F.UnpackHigh(r10, r11).AsDouble();
        var t12 = Avx512F.UnpackLow(r12, r13).AsDouble(); var t13 = Avx512F.UnpackHigh(r12, r13).AsDouble();
        var t14 = Avx512F.UnpackLow(r14, r15).AsDouble(); var t15 = Avx512F.UnpackHigh(r14, r15).AsDouble();
        var q0 = Avx512F.UnpackLow(t0, t2).AsSingle(); var q1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        var q2 = Avx512F.UnpackLow(t1, t3).AsSingle(); var q3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
        var q4 = Avx512F.UnpackLow(t4, t6).AsSingle(); var q5 = Avx512F.UnpackHigh(t4, t6).AsSingle();
        var q6 = Avx512F.UnpackLow(t5, t7).AsSingle(); var q7 = Avx512F.UnpackHigh(t5, t7).AsSingle();
        var q8 = Avx512F.UnpackLow(t8, t10).AsSingle(); var q9 = Avx512F.UnpackHigh(t8, t10).AsSingle();
        var q10 = Avx512F.UnpackLow(t9, t11).AsSingle(); var q11 = Avx512F.UnpackHigh(t9, t11).AsSingle();
        var q12 = Avx512F.UnpackLow(t12, t14).AsSingle(); var q13 = Avx512F.UnpackHigh(t12, t14).AsSingle();
        var q14 = Avx512F.UnpackLow(t13, t15).AsSingle(); var q15 = Avx512F.UnpackHigh(t13, t15).AsSingle();
        var low0 = Avx512F.Shuffle4x128(q0, q4, 0x44); var high0 = Avx512F.Shuffle4x128(q0, q4, 0xEE);
        var low0b = Avx512F.Shuffle4x128(q8, q12, 0x44); var high0b = Avx512F.Shuffle4x128(q8, q12, 0xEE);
        Avx512F.Store(dst + 0 * dstStride, Avx512F.Shuffle4x128(low0, low0b, 0x88));
        Avx512F.Store(dst + 4 * dstStride, Avx512F.Shuffle4x128(low0, low0b, 0xDD));
        Avx512F.Store(dst + 8 * dstStride, Avx512F.Shuffle4x128(high0, high0b, 0x88));
        Avx512F.Store(dst + 12 * dstStride, Avx512F.Shuffle4x128(high0, high0b, 0xDD));
        var low1 = Avx512F.Shuffle4x128(q1, q5, 0x44); var high1 = Avx512F.Shuffle4x128(q1, q5, 0xEE);
        var low1b = Avx512F.Shuffle4x128(q9, q13, 0x44); var high1b = Avx512F.Shuffle4x128(q9, q13, 0xEE);
        Avx512F.Store(dst + 1 * dstStride, Avx512F.Shuffle4x128(low1, low1b, 0x88));
        Avx512F.Store(dst + 5 * dstStride, Avx512F.Shuffle4x128(low1, low1b, 0xDD));
        Avx512F.Store(dst + 9 * dstStride, Avx512F.Shuffle4x128(high1, high1b, 0x88));
        Avx512F.Store(dst + 13 * dstStride, Avx512F.Shuffle4x128(high1, high1b, 0xDD));
        var low2 = Avx512F.Shuffle4x128(q2, q6, 0x44); var high2 = Avx512F.Shuffle4x128(q2, q6, 0xEE);
        var low2b = Avx512F.Shuffle4x128(q10, q14, 0x44); var high2b = Avx512F.Shuffle4x128(q10, q14, 0xEE);
        Avx512F.Store(dst + 2 * dstStride, Avx512F.Shuffle4x128(low2, low2b, 0x88));
        Avx512F.Store(dst + 6 * dstStride, Avx512F.Shuffle4x128(low2, low2b, 0xDD));
        Avx512F.Store(dst + 10 * dstStride, Avx512F.Shuffle4x128(high2, high2b, 0x88));
        Avx512F.Store(dst + 14 * dstStride, Avx512F.Shuffle4x128(high2, high2b, 0xDD));
        var low3 = Avx512F.Shuffle4x128(q3, q7, 0x44); var high3 = Avx512F.Shuffle4x128(q3, q7, 0xEE);
        var low3b = Avx512F.Shuffle4x128(q11, q15, 0x44); var high3b = Avx512F.Shuffle4x128(q11, q15, 0xEE);
        Avx512F.Store(dst + 3 * dstStride, Avx512F.Shuffle4x128(low3, low3b, 0x88));
        Avx512F.Store(dst + 7 * dstStride, Avx512F.Shuffle4x128(low3, low3b, 0xDD));
        Avx512F.Store(dst + 11 * dstStride, Avx512F.Shuffle4x128(high3, high3b, 0x88));
        Avx512F.Store(dst + 15 * dstStride, Avx512F.Shuffle4x128(high3, high3b, 0xDD));
    }
}
