using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// y = x·(Q·diag(scale))ᵀ (+ b) for int8 weight-only layers at decode sizes (≤ <see cref="MaxRows"/> input rows). Decode is
/// bound by streaming the weights, and int8 halves (vs bf16) or quarters (vs fp32) the bytes. Each weight row is read once
/// for all input rows, and the row's scale multiplies the finished dot product. Rows of the weight are split over threads.
/// Two ways to form the dot products:
/// <list type="bullet">
/// <item><b>quantized activations</b> (<see cref="Int8Activations"/>, the default on CPUs with AVX512_VNNI or AVX-VNNI): where
/// the CPU has AVX512_VNNI and the row length is a multiple of 128, the input is quantized to int16 per 256-column block and
/// multiplied with <c>vpdpwssd</c> machine code (<see cref="Int8DotKernel"/>; rounding ≤ max|x_block|/65534 per element, no
/// measurable logit change); else, with AVX-VNNI, to int8 per 32-column block as llama.cpp's Q8_0 with <c>vpdpbusd</c>
/// (<see cref="CpuInt8VnniGemv"/>; rounding ≤ max|x_block|/254). Fewer instructions per weight than widening to fp32:
/// glm4-bench int8 decode on Zen 4 (no AVX-VNNI) went from 37–41 to 48–73 tok/s with the machine code.</item>
/// <item><b>exact fp32 activations</b>: 16 int8 lanes are sign-extended to int32 (vpmovsxbd), converted to fp32 and FMA'd with
/// the fp32 activations (AVX-512), or the same sums in a portable scalar loop. The result is the dot product with the
/// dequantized weights up to fp32 summation order.</item>
/// </list>
/// </summary>
internal static unsafe class CpuInt8Gemv
{
    /// <summary>Most input rows the exact path handles; beyond this (and beyond <see cref="CpuInt8VnniGemv.MaxRows"/> with int8
    /// activations) the caller dequantizes and runs a GEMM.</summary>
    public const int MaxRows = 4;

    /// <summary>Set to false to force the dequantize-then-GEMM path (tests, comparisons). GLM_NO_GEMV_KERNEL=1 clears it.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_GEMV_KERNEL") != "1";

    /// <summary>Use the AVX-512 loop when the CPU has it; tests set false to exercise the portable loop.</summary>
    public static bool UseAvx512 { get; set; } = Avx512F.IsSupported;

    /// <summary>
    /// Quantize activations and use the VNNI loops (see the class summary). Defaults to true where
    /// <see cref="HasInt8ActivationLoops"/>; GLM_INT8_EXACT_ACTIVATIONS=1 clears it. Ignored (exact path) on CPUs without
    /// either loop. The name is the mode's (W8A8 on AVX-VNNI); the AVX512_VNNI loops quantize to int16 (W8A16,
    /// <see cref="DecodeActivationsName"/>). Process-wide: flip it only between forwards.
    /// </summary>
    public static bool Int8Activations { get; set; } =
        HasInt8ActivationLoops && Environment.GetEnvironmentVariable("GLM_INT8_EXACT_ACTIVATIONS") != "1";

    /// <summary>True where this CPU has loops for <see cref="Int8Activations"/> (AVX512_VNNI machine code or AVX-VNNI).</summary>
    public static bool HasInt8ActivationLoops => Int8DotKernel.IsSupported || CpuInt8VnniGemv.IsSupported;

    /// <summary>How int8 layers treat their inputs at decode in the current mode, for reports: "int16 activations" (per
    /// 256-column block, AVX512_VNNI machine code, rows whose length is a multiple of 128), "int8 activations" (per 32-column
    /// block, AVX-VNNI) or "exact fp32 activations" (<see cref="Int8Activations"/> off, or neither loop on this CPU).</summary>
    public static string DecodeActivationsName =>
        !Int8Activations || !HasInt8ActivationLoops ? "exact fp32 activations"
        : UseInt8DotKernel && Int8DotKernel.IsSupported ? "int16 activations" : "int8 activations";

    /// <summary>Most input rows the int8-activation loops take (16 streams of continuous batching).</summary>
    public const int MaxInt8ActivationRows = CpuInt8VnniGemv.MaxRows;

    /// <summary>
    /// Use <see cref="Int8DotKernel"/>'s machine code for int8 activations where it takes the row length (else the AVX-VNNI
    /// loops, where the CPU has them). Tests and benchmarks clear it to compare; GLM_NO_INT8_DOT=1 starts it off. Process-wide:
    /// flip it only between forwards.
    /// </summary>
    public static bool UseInt8DotKernel { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_INT8_DOT") != "1";

    /// <summary>Most input rows <see cref="TryLinear"/> takes for rows of <paramref name="k"/> columns in the current mode.</summary>
    public static int MaxRowsFor(long k) => LoopsFor(k) == Loops.Exact ? MaxRows : MaxInt8ActivationRows;

    private enum Loops { Exact, ManagedVnni, MachineCode }

    // Which loops take rows of k columns in the current mode.
    private static Loops LoopsFor(long k) =>
        !Int8Activations ? Loops.Exact
        : UseInt8DotKernel && Int8DotKernel.Takes(k) ? Loops.MachineCode
        : CpuInt8VnniGemv.IsSupported ? Loops.ManagedVnni
        : Loops.Exact;

    /// <summary>Worker count; defaults to torch's intra-op thread count.</summary>
    public static int Threads { get; set; }

    /// <summary>
    /// The linear layer for <paramref name="x"/> [..., in] with int8 <paramref name="q"/> [out, in] and fp32
    /// <paramref name="scale"/> [out], in x's dtype; null when this kernel does not apply (caller falls back).
    /// </summary>
    public static Tensor? TryLinear(Tensor x, Tensor q, Tensor scale, Tensor? bias)
    {
        if (!Enabled || x.device_type != DeviceType.CPU || x.requires_grad || !IsFloatDType(x)) return null;
        long[] xs = x.shape; // each read is a native call
        long k = xs[^1], rows = k == 0 ? 0 : x.NumberOfElements / k;
        if (rows == 0 || rows > MaxInt8ActivationRows) return null;
        // Quantized inputs are written once per call (all input rows), then shared read-only by the threads' row ranges.
        byte* scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, KernelScratchBytes((int)rows, k)), 64);
        try
        {
            if (TryKernel(q, scale, (int)rows, scratch, out var prepare, out long n, out long inputs) is not { } kernel || inputs != k) return null;
            if (bias is not null && (!IsFloatDType(bias) || !bias.is_contiguous() || bias.NumberOfElements != n)) return null;
            return LinearThroughBuffers(x, xs, n, bias, ThreadCount(Threads), kernel, prepare);
        }
        finally { NativeMemory.AlignedFree(scratch); }
    }

    /// <summary>Bytes of scratch <see cref="TryKernel"/> needs for <paramref name="rows"/> inputs of length <paramref name="k"/>
    /// in the current mode (the quantized activations; 0 on the exact path).</summary>
    public static long KernelScratchBytes(int rows, long k) => LoopsFor(k) switch
    {
        Loops.MachineCode => Int8DotKernel.ActivationBytes(rows, k),
        Loops.ManagedVnni => CpuInt8VnniGemv.ChunkedScratchBytes(rows, k),
        _ => 0,
    };

    /// <summary>
    /// The row kernel for int8 <paramref name="q"/> [n, k] with fp32 <paramref name="scale"/> [n] and <paramref name="rows"/> fp32
    /// input rows in the current mode (<see cref="Int8Activations"/>, <see cref="UseAvx512"/>), and the step to run once per
    /// call on the widened input before it (quantizing it into <paramref name="scratch"/>, <see cref="KernelScratchBytes"/>
    /// long; null on the exact path). Null when this kernel does not take them. Holds the weights' addresses.
    /// </summary>
    public static RowKernel? TryKernel(Tensor q, Tensor scale, int rows, byte* scratch, out InputStep? prepare, out long n, out long k)
    {
        prepare = null;
        n = k = 0;
        if (!Enabled || q.device_type != DeviceType.CPU || q.dim() != 2 || rows < 1) return null;
        if (q.dtype != ScalarType.Int8 || scale.dtype != ScalarType.Float32 || !q.is_contiguous() || !scale.is_contiguous()) return null;
        long[] qs = q.shape;
        long inputs = qs[1], outputs = qs[0];
        if (scale.NumberOfElements != outputs) return null;
        var loops = LoopsFor(inputs);
        if (rows > MaxRowsFor(inputs)) return null;
        (n, k) = (outputs, inputs);
        sbyte* wp = (sbyte*)Data(q);
        float* sp = (float*)Data(scale);
        if (loops == Loops.MachineCode)
        {
            prepare = xp => Int8DotKernel.Quantize(xp, rows, inputs, scratch);
            return (_, yp, r0, r1) => Int8DotKernel.Rows(wp, sp, scratch, yp, rows, inputs, outputs, r0, r1);
        }
        if (loops == Loops.ManagedVnni)
        {
            prepare = xp => CpuInt8VnniGemv.QuantizeChunks(xp, rows, inputs, scratch);
            return (xp, yp, r0, r1) => CpuInt8VnniGemv.ChunkedRows(wp, sp, xp, scratch, yp, rows, inputs, outputs, r0, r1);
        }
        bool avx = UseAvx512 && Avx512F.IsSupported;
        return (xp, yp, r0, r1) => Run(avx, wp, sp, xp, yp, rows, inputs, outputs, r0, r1);
    }

    private static void Run(bool avx, sbyte* w, float* s, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        if (avx) Avx512Rows(w, s, x, y, rows, k, n, r0, r1);
        else PortableRows(w, s, x, y, rows, k, n, r0, r1);
    }

    private static Vector512<float> Widen(sbyte* p) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p)));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Avx512Rows(sbyte* w, float* s, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        float* x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k;
        long body = k & ~31L;
        for (long r = r0; r < r1; r++)
        {
            sbyte* row = w + r * k;
            Vector512<float> a0 = default, b0 = default, a1 = default, b1 = default,
                             a2 = default, b2 = default, a3 = default, b3 = default;
            for (long i = 0; i < body; i += 32)
            {
                var lo = Widen(row + i);
                var hi = Widen(row + i + 16);
                a0 = Avx512F.FusedMultiplyAdd(lo, Avx512F.LoadVector512(x0 + i), a0);
                b0 = Avx512F.FusedMultiplyAdd(hi, Avx512F.LoadVector512(x0 + i + 16), b0);
                if (rows > 1)
                {
                    a1 = Avx512F.FusedMultiplyAdd(lo, Avx512F.LoadVector512(x1 + i), a1);
                    b1 = Avx512F.FusedMultiplyAdd(hi, Avx512F.LoadVector512(x1 + i + 16), b1);
                    if (rows > 2)
                    {
                        a2 = Avx512F.FusedMultiplyAdd(lo, Avx512F.LoadVector512(x2 + i), a2);
                        b2 = Avx512F.FusedMultiplyAdd(hi, Avx512F.LoadVector512(x2 + i + 16), b2);
                        if (rows > 3)
                        {
                            a3 = Avx512F.FusedMultiplyAdd(lo, Avx512F.LoadVector512(x3 + i), a3);
                            b3 = Avx512F.FusedMultiplyAdd(hi, Avx512F.LoadVector512(x3 + i + 16), b3);
                        }
                    }
                }
            }
            float scale = s[r];
            y[r] = (Vector512.Sum(a0 + b0) + Tail(row, x0, body, k)) * scale;
            if (rows > 1) y[n + r] = (Vector512.Sum(a1 + b1) + Tail(row, x1, body, k)) * scale;
            if (rows > 2) y[2 * n + r] = (Vector512.Sum(a2 + b2) + Tail(row, x2, body, k)) * scale;
            if (rows > 3) y[3 * n + r] = (Vector512.Sum(a3 + b3) + Tail(row, x3, body, k)) * scale;
        }
    }

    /// <summary>Σ row[i]·x[i] for i in [from, k) in fp32: the columns after the last full 32-wide block.</summary>
    internal static float Tail(sbyte* row, float* x, long from, long k)
    {
        float sum = 0;
        for (long i = from; i < k; i++) sum += row[i] * x[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PortableRows(sbyte* w, float* s, float* x, float* y, int rows, long k, long n, long r0, long r1)
    {
        for (long r = r0; r < r1; r++)
        {
            sbyte* row = w + r * k;
            for (int m = 0; m < rows; m++)
            {
                float* xm = x + m * k;
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                long i = 0;
                for (; i + 4 <= k; i += 4)
                {
                    s0 += row[i] * xm[i];
                    s1 += row[i + 1] * xm[i + 1];
                    s2 += row[i + 2] * xm[i + 2];
                    s3 += row[i + 3] * xm[i + 3];
                }
                y[m * n + r] = ((s0 + s1) + (s2 + s3) + Tail(row, xm, i, k)) * s[r];
            }
        }
    }
}
