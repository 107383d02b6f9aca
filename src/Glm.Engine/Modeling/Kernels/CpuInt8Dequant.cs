using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// Q·diag(scale) → fp32 or bf16 [out, in] in one pass (the prefill path dequantizes each int8 layer per call): 16 int8 lanes
/// are widened to fp32, multiplied by the row scale and stored, or rounded to bf16 (round to nearest even, as
/// <c>tensor.to(bf16)</c>) and narrowed. Bit-identical to <c>(q.to(fp32) * scale).to(dtype)</c> and 3–4× fewer memory passes;
/// rows are split over torch's threads.
/// </summary>
internal static unsafe class CpuInt8Dequant
{
    /// <summary>The dequantized matrix, or null when this path does not apply (not CPU, no AVX-512, another dtype).</summary>
    public static Tensor? TryDequantize(Tensor q, Tensor scale, ScalarType dtype)
    {
        if (!CpuInt8Gemv.Enabled || !CpuInt8Gemv.UseAvx512 || !Avx512F.IsSupported) return null;
        if (dtype != ScalarType.Float32 && dtype != ScalarType.BFloat16) return null;
        if (q.device_type != DeviceType.CPU || q.dim() != 2 || q.dtype != ScalarType.Int8 || scale.dtype != ScalarType.Float32
            || !q.is_contiguous() || !scale.is_contiguous()) return null;
        long n = q.shape[0], k = q.shape[1];
        var w = torch.empty(new long[] { n, k }, dtype: dtype);
        sbyte* qp = (sbyte*)Data(q);
        float* sp = (float*)Data(scale);
        byte* wp = Data(w);
        bool bf16 = dtype == ScalarType.BFloat16;
        ForRowRanges(n, ThreadCount(), small: n * k < (1 << 16), (r0, r1) => Rows(qp, sp, wp, bf16, k, r0, r1));
        return w;
    }

    /// <summary>Rows [r0, r1) of q·diag(s) into <paramref name="w"/> (row r at w + r·k elements), as <see cref="TryDequantize"/>
    /// computes them (<see cref="CpuGemm"/> dequantizes 12 rows at a time into a small buffer this way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Rows(sbyte* q, float* s, byte* w, bool bf16, long k, long r0, long r1)
    {
        long body = k & ~15L;
        for (long r = r0; r < r1; r++)
        {
            sbyte* row = q + r * k;
            float sc = s[r];
            var scale = Vector512.Create(sc);
            if (bf16)
            {
                ushort* dst = (ushort*)w + r * k;
                for (long i = 0; i < body; i += 16)
                    StoreBf16(dst + i, Avx512F.Multiply(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(row + i))), scale));
                for (long i = body; i < k; i++) dst[i] = FloatToBf16(row[i] * sc);
            }
            else
            {
                float* dst = (float*)w + r * k;
                for (long i = body; i < k; i++) dst[i] = row[i] * sc;
                for (long i = 0; i < body; i += 16)
                    Avx512F.Store(dst + i, Avx512F.Multiply(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(row + i))), scale));
            }
        }
    }
}
