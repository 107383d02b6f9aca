using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// The register tile of <see cref="CpuGemm"/>'s fp32 path (fp32 and fp16 models): 32 input rows × 12 weight rows, 24 fp32
/// accumulators, each FMA fed by a packed vector of 16 input rows and one broadcast weight. libtorch's fp32 GEMM on these AMD
/// cores runs at ≈ 60 % of the FMA peak (136 GFLOP/s on two cores for glm4-bench's largest shape), and an fp16 model's prefill
/// went through it after widening every weight matrix per call. Here weights — fp32 or fp16 — are widened and interleaved
/// 12 rows at a time into a small [k][12] block (<see cref="Interleave"/>), so the tile's 12 broadcasts per input column are
/// consecutive floats.
/// </summary>
internal static unsafe class Fp32GemmTile
{
    /// <summary>Floats a block of <paramref name="k"/> interleaved columns needs (the last store runs 4 floats past the end).</summary>
    public static long BlockFloats(long k) => k * Bf16GemmKernel.TileColumns + 16;

    /// <summary>
    /// dst[i·12 + j] = row j's element i for the <paramref name="count"/> (≤ 12) rows at <paramref name="w"/> (fp32, or fp16
    /// when <paramref name="half"/>; row length k, a multiple of 16); rows past <paramref name="count"/> are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave(byte* w, bool half, long k, long count, float* dst)
    {
        const int Columns = Bf16GemmKernel.TileColumns;
        float* stage = stackalloc float[256];
        float* turned = stackalloc float[256];
        new Span<float>(stage, 256).Clear();
        for (long i0 = 0; i0 < k; i0 += 16)
        {
            for (long j = 0; j < count; j++)
                Avx512F.Store(stage + j * 16, half ? LoadHalf((ushort*)w + j * k + i0) : Avx512F.LoadVector512((float*)w + j * k + i0));
            CpuGemm.Transpose16(stage, 16, turned, 16);
            // Row i of the transpose holds element i0 + i of rows 0..15; its first 12 lanes are the block's. Stores in
            // ascending order, so each one's 4 spare lanes are overwritten by the next.
            for (int i = 0; i < 16; i++) Avx512F.Store(dst + (i0 + i) * Columns, Avx512F.LoadVector512(turned + i * 16));
        }
    }

    /// <summary>
    /// c[j·ldc + m] = Σ_i a[i][m] · b[i][j] for m &lt; 32, j &lt; 12: <paramref name="a"/> the packed input tile (per input
    /// column 32 floats), <paramref name="b"/> an interleaved weight block. One accumulator per output, columns in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(float* a, float* b, long k, float* c, long ldc)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default,
            c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default,
            c16 = default, c17 = default, c18 = default, c19 = default, c20 = default, c21 = default, c22 = default, c23 = default;
        for (long i = 0; i < k; i++, a += 32, b += Bf16GemmKernel.TileColumns)
        {
            var a0 = Avx512F.LoadVector512(a);
            var a1 = Avx512F.LoadVector512(a + 16);
            var w = Vector512.Create(b[0]); c0 = Avx512F.FusedMultiplyAdd(a0, w, c0); c1 = Avx512F.FusedMultiplyAdd(a1, w, c1);
            w = Vector512.Create(b[1]); c2 = Avx512F.FusedMultiplyAdd(a0, w, c2); c3 = Avx512F.FusedMultiplyAdd(a1, w, c3);
            w = Vector512.Create(b[2]); c4 = Avx512F.FusedMultiplyAdd(a0, w, c4); c5 = Avx512F.FusedMultiplyAdd(a1, w, c5);
            w = Vector512.Create(b[3]); c6 = Avx512F.FusedMultiplyAdd(a0, w, c6); c7 = Avx512F.FusedMultiplyAdd(a1, w, c7);
            w = Vector512.Create(b[4]); c8 = Avx512F.FusedMultiplyAdd(a0, w, c8); c9 = Avx512F.FusedMultiplyAdd(a1, w, c9);
            w = Vector512.Create(b[5]); c10 = Avx512F.FusedMultiplyAdd(a0, w, c10); c11 = Avx512F.FusedMultiplyAdd(a1, w, c11);
            w = Vector512.Create(b[6]); c12 = Avx512F.FusedMultiplyAdd(a0, w, c12); c13 = Avx512F.FusedMultiplyAdd(a1, w, c13);
            w = Vector512.Create(b[7]); c14 = Avx512F.FusedMultiplyAdd(a0, w, c14); c15 = Avx512F.FusedMultiplyAdd(a1, w, c15);
            w = Vector512.Create(b[8]); c16 = Avx512F.FusedMultiplyAdd(a0, w, c16); c17 = Avx512F.FusedMultiplyAdd(a1, w, c17);
            w = Vector512.Create(b[9]); c18 = Avx512F.FusedMultiplyAdd(a0, w, c18); c19 = Avx512F.FusedMultiplyAdd(a1, w, c19);
            w = Vector512.Create(b[10]); c20 = Avx512F.FusedMultiplyAdd(a0, w, c20); c21 = Avx512F.FusedMultiplyAdd(a1, w, c21);
            w = Vector512.Create(b[11]); c22 = Avx512F.FusedMultiplyAdd(a0, w, c22); c23 = Avx512F.FusedMultiplyAdd(a1, w, c23);
        }
        Avx512F.Store(c, c0); Avx512F.Store(c + 16, c1); c += ldc;
        Avx512F.Store(c, c2); Avx512F.Store(c + 16, c3); c += ldc;
        Avx512F.Store(c, c4); Avx512F.Store(c + 16, c5); c += ldc;
        Avx512F.Store(c, c6); Avx512F.Store(c + 16, c7); c += ldc;
        Avx512F.Store(c, c8); Avx512F.Store(c + 16, c9); c += ldc;
        Avx512F.Store(c, c10); Avx512F.Store(c + 16, c11); c += ldc;
        Avx512F.Store(c, c12); Avx512F.Store(c + 16, c13); c += ldc;
        Avx512F.Store(c, c14); Avx512F.Store(c + 16, c15); c += ldc;
        Avx512F.Store(c, c16); Avx512F.Store(c + 16, c17); c += ldc;
        Avx512F.Store(c, c18); Avx512F.Store(c + 16, c19); c += ldc;
        Avx512F.Store(c, c20); Avx512F.Store(c + 16, c21); c += ldc;
        Avx512F.Store(c, c22); Avx512F.Store(c + 16, c23);
    }
}
