using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>What the managed CPU kernels share: raw element addresses of tensors and splitting output rows over threads.</summary>
internal static unsafe class KernelSupport
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSStorage_data_ptr(IntPtr tensor);

    /// <summary>Address of <paramref name="t"/>'s first element (its storage plus the view's offset).</summary>
    public static byte* Data(Tensor t) => (byte*)THSStorage_data_ptr(t.Handle) + t.storage_offset() * t.ElementSize;

    /// <summary>Workers for a kernel: <paramref name="configured"/> when positive, else torch's intra-op thread count.</summary>
    public static int ThreadCount(int configured = 0) => configured > 0 ? configured : Math.Max(1, torch.get_num_threads());

    /// <summary>
    /// Calls <paramref name="run"/>(r0, r1) on contiguous row ranges covering [0, <paramref name="rows"/>), one range per worker,
    /// or once for all rows when <paramref name="threads"/> is 1 or <paramref name="small"/> (not worth the hand-off). The
    /// ranges run on <see cref="KernelWorkers"/> (the caller takes the first).
    /// </summary>
    public static void ForRowRanges(long rows, int threads, bool small, Action<long, long> run)
    {
        if (threads == 1 || small) { run(0, rows); return; }
        long chunk = (rows + threads - 1) / threads;
        KernelWorkers.Run(threads, t =>
        {
            long r0 = t * chunk, r1 = Math.Min(rows, r0 + chunk);
            if (r0 < r1) run(r0, r1);
        });
    }

    /// <summary>Computes fp32 outputs y[m·n + r] for weight rows [r0, r1) from fp32 inputs x[m·k + i].</summary>
    public delegate void RowKernel(float* x, float* y, long r0, long r1);

    /// <summary>Work on the widened fp32 input x [rows, k] done once per call, before the row ranges (e.g. quantizing it).</summary>
    public delegate void InputStep(float* x);

    /// <summary>
    /// The shared shape of the decode GEMVs: <paramref name="x"/> [..., k] (bf16/fp16/fp32) is widened into a native fp32
    /// buffer, <paramref name="kernel"/> fills y [rows, n] over weight rows split across <paramref name="threads"/>, and the
    /// result comes back as [..., n] in x's dtype with <paramref name="bias"/> added — the casts, the bias add and the output
    /// rounding are one pass each instead of four libtorch ops per layer and token. The caller has checked x and bias with
    /// <see cref="IsFloatDType"/> and passes x's shape (<paramref name="xShape"/>, read once). <paramref name="prepare"/>, when given, runs once on the widened input before the kernels (it is
    /// timed with them).
    /// </summary>
    public static Tensor LinearThroughBuffers(Tensor x, long[] xShape, long n, Tensor? bias, int threads, RowKernel kernel, InputStep? prepare = null)
    {
        long k = xShape[^1], rows = x.NumberOfElements / k;
        using var xc = x.contiguous();
        float* xp = WidenToNative(xc);
        float* yp = (float*)NativeMemory.Alloc((nuint)(rows * n), sizeof(float));
        try
        {
            RunRowKernel(xp, n, threads, (r0, r1) => kernel(xp, yp, r0, r1), prepare);
            var shape = (long[])xShape.Clone();
            shape[^1] = n;
            return FinishRows(yp, rows, n, bias, x.dtype, shape);
        }
        finally
        {
            NativeMemory.Free(xp);
            NativeMemory.Free(yp);
        }
    }

    /// <summary>
    /// The kernel part of a decode GEMV over fp32 buffers the caller owns: <paramref name="prepare"/> once on the widened input
    /// <paramref name="x"/>, then <paramref name="rows"/> over the <paramref name="n"/> weight rows split across threads (on the
    /// calling thread below 256 rows), timed as <see cref="Diagnostics.DecodeSection.GemvInnerLoops"/>.
    /// </summary>
    public static void RunRowKernel(float* x, long n, int threads, Action<long, long> rows, InputStep? prepare)
    {
        long t = Diagnostics.DecodeProfiler.Start();
        prepare?.Invoke(x);
        ForRowRanges(n, threads, small: n < 256, rows);
        Diagnostics.DecodeProfiler.Stop(Diagnostics.DecodeSection.GemvInnerLoops, t);
    }

    /// <summary>bf16 bits → fp32 (the 16 bits are the high half of the fp32 pattern).</summary>
    public static float Bf16ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>fp32 → bf16 bits, rounding to nearest even as libtorch's <c>c10::BFloat16</c> does (NaN stays a quiet NaN).</summary>
    public static ushort FloatToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return 0x7FC0;
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary><paramref name="value"/> rounded to the nearest bf16, as an fp32.</summary>
    public static float RoundBf16(float value) => Bf16ToFloat(FloatToBf16(value));

    /// <summary>True for a tensor of a dtype <see cref="WidenToNative"/>/<see cref="FinishRows"/> read and write (bf16, fp16, fp32).</summary>
    public static bool IsFloatDType(Tensor? t) =>
        t is not null && (t.dtype == ScalarType.BFloat16 || t.dtype == ScalarType.Float16 || t.dtype == ScalarType.Float32);

    /// <summary>Element <paramref name="i"/> of a bf16, fp16 or fp32 buffer as fp32.</summary>
    public static float LoadAny(byte* p, ScalarType dtype, long i) => dtype switch
    {
        ScalarType.BFloat16 => Bf16ToFloat(((ushort*)p)[i]),
        ScalarType.Float16 => (float)BitConverter.UInt16BitsToHalf(((ushort*)p)[i]),
        _ => ((float*)p)[i],
    };

    /// <summary><paramref name="v"/> stored as element <paramref name="i"/> of a bf16, fp16 or fp32 buffer, rounded to nearest even.</summary>
    public static void StoreAny(byte* p, ScalarType dtype, long i, float v)
    {
        if (dtype == ScalarType.BFloat16) ((ushort*)p)[i] = FloatToBf16(v);
        else if (dtype == ScalarType.Float16) ((ushort*)p)[i] = BitConverter.HalfToUInt16Bits((Half)v);
        else ((float*)p)[i] = v;
    }

    /// <summary>The elements of contiguous bf16/fp16/fp32 <paramref name="x"/> widened to fp32 in native memory (free with
    /// <see cref="System.Runtime.InteropServices.NativeMemory.Free"/>): one managed pass instead of a libtorch cast op.</summary>
    public static float* WidenToNative(Tensor x)
    {
        long count = x.NumberOfElements;
        var buffer = (float*)NativeMemory.Alloc((nuint)Math.Max(1, count), sizeof(float));
        WidenInto(Data(x), x.dtype, count, buffer);
        return buffer;
    }

    /// <summary><paramref name="count"/> bf16/fp16/fp32 elements at <paramref name="src"/> widened into fp32 <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WidenInto(byte* src, ScalarType dtype, long count, float* dst)
    {
        if (dtype == ScalarType.Float32) { Buffer.MemoryCopy(src, dst, count * sizeof(float), count * sizeof(float)); return; }
        long i = 0;
        if (Avx512F.IsSupported)
            for (bool bf16 = dtype == ScalarType.BFloat16; i + 16 <= count; i += 16) Avx512F.Store(dst + i, Load16((ushort*)src + i, bf16));
        for (; i < count; i++) dst[i] = LoadAny(src, dtype, i);
    }

    /// <summary>
    /// A new tensor of <paramref name="shape"/> and <paramref name="dtype"/> (bf16/fp16/fp32) holding fp32 results
    /// <paramref name="y"/> [rows, n] plus <paramref name="bias"/> [n] (same dtypes, or null), summed in fp32 and rounded once —
    /// what F.linear's epilogue does, without the separate cast and add ops.
    /// </summary>
    public static Tensor FinishRows(float* y, long rows, long n, Tensor? bias, ScalarType dtype, long[] shape)
    {
        var result = torch.empty(shape, dtype: dtype);
        FinishRowsInto(y, rows, n, bias is null ? null : Data(bias), bias?.dtype ?? ScalarType.Float32, dtype, Data(result));
        return result;
    }

    /// <summary><see cref="FinishRows"/> into caller-owned memory <paramref name="output"/> [rows, n] of <paramref name="dtype"/>;
    /// <paramref name="bias"/> (of <paramref name="biasType"/>) may be null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FinishRowsInto(float* y, long rows, long n, byte* bias, ScalarType biasType, ScalarType dtype, byte* output)
    {
        bool vector = Avx512F.IsSupported && (dtype == ScalarType.BFloat16 || dtype == ScalarType.Float16);
        bool bf16 = dtype == ScalarType.BFloat16;
        for (long r = 0; r < rows; r++)
        {
            long j = 0;
            if (vector)
                for (; j + 16 <= n; j += 16)
                {
                    var v = Avx512F.LoadVector512(y + r * n + j);
                    if (bias != null)
                        v += biasType == ScalarType.Float32 ? Avx512F.LoadVector512((float*)bias + j) : Load16((ushort*)bias + j, biasType == ScalarType.BFloat16);
                    Store16((ushort*)output + r * n + j, v, bf16);
                }
            for (; j < n; j++)
            {
                float v = y[r * n + j];
                if (bias != null) v += LoadAny(bias, biasType, j);
                StoreAny(output, dtype, r * n + j, v);
            }
        }
    }

    /// <summary>
    /// 16 fp16 bit patterns (zero-extended to 32 bits) as fp32. .NET has no F16C intrinsics, so: the 15 magnitude bits shifted
    /// into an fp32 pattern and multiplied by 2¹¹² (exact for normal and subnormal halves), then the sign OR'd back. Finite
    /// values only: a half inf/NaN reads as ±65536·(1 + m).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WidenHalf(Vector512<uint> h) =>
        Avx512F.Or((Avx512F.ShiftLeftLogical(h & Vector512.Create(0x7FFFu), 13).AsSingle() * Vector512.Create(0x77800000u).AsSingle()).AsUInt32(),
            Avx512F.ShiftLeftLogical(h & Vector512.Create(0x8000u), 16)).AsSingle();

    /// <summary>16 bf16 values at <paramref name="p"/> as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WidenBf16(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(p)), 16).AsSingle();

    /// <summary>
    /// <paramref name="v"/> rounded to bf16 (nearest even, as <see cref="FloatToBf16"/>) and stored at <paramref name="p"/>. Finite
    /// values and quiet NaNs round as libtorch does; a signalling-NaN pattern may come out as infinity.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreBf16(ushort* p, Vector512<float> v) => Avx.Store(p, Avx512F.ConvertToVector256UInt16(Bf16Bits(v)));

    /// <summary><paramref name="v"/> rounded to bf16 and widened back: what storing an fp32 result into a bf16 tensor keeps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundBf16(Vector512<float> v) => Avx512F.ShiftLeftLogical(Bf16Bits(v), 16).AsSingle();

    /// <summary>16 fp32 values as bf16 bit patterns (low 16 bits of each lane), rounded to nearest even (add 0x7FFF plus the
    /// lowest kept bit, then drop the low half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> Bf16Bits(Vector512<float> v)
    {
        var bits = v.AsUInt32();
        return Avx512F.ShiftRightLogical(bits + Vector512.Create(0x7FFFu) + (Avx512F.ShiftRightLogical(bits, 16) & Vector512<uint>.One), 16);
    }

    /// <summary>
    /// 16 fp32 values as fp16 bit patterns (low 16 bits of each lane), rounded to nearest even exactly as <c>(Half)v</c>:
    /// normal results drop 13 mantissa bits with the add-and-carry rounding and rebias the exponent (overflow saturates to
    /// ±inf); results below 2⁻¹⁴ are |v|·2²⁴ converted to an integer (round-to-nearest-even, exact scaling), which is the
    /// subnormal mantissa; NaN becomes the quiet NaN 0x7E00. .NET has no F16C intrinsics, hence the integer route.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> HalfBits(Vector512<float> v)
    {
        var bits = v.AsUInt32();
        var sign = Avx512F.ShiftRightLogical(bits, 16) & Vector512.Create(0x8000u);
        var abs = bits & Vector512.Create(0x7FFFFFFFu);
        var carry = Avx512F.ShiftRightLogical(abs, 13) & Vector512<uint>.One;
        var normal = Avx512F.ShiftRightLogical(abs + Vector512.Create(0xFFFu) + carry, 13) - Vector512.Create(0x1C000u);
        normal = Vector512.Min(normal, Vector512.Create(0x7C00u));
        var subnormal = Avx512F.ConvertToVector512Int32(abs.AsSingle() * Vector512.Create(16777216f)).AsUInt32();
        var h = Vector512.ConditionalSelect(Vector512.LessThan(abs, Vector512.Create(0x38800000u)), subnormal, normal);
        h = Vector512.ConditionalSelect(Vector512.GreaterThan(abs, Vector512.Create(0x7F800000u)), Vector512.Create(0x7E00u), h);
        return h | sign;
    }

    /// <summary><paramref name="v"/> rounded to fp16 (<see cref="HalfBits"/>) and stored at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreHalf(ushort* p, Vector512<float> v) => Avx.Store(p, Avx512F.ConvertToVector256UInt16(HalfBits(v)));

    /// <summary><paramref name="v"/> rounded to fp16 and widened back (finite results; see <see cref="WidenHalf"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundHalf(Vector512<float> v) => WidenHalf(HalfBits(v));

    /// <summary>16 fp16 values at <paramref name="p"/> as fp32 (finite values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadHalf(ushort* p) => WidenHalf(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(p)));

    /// <summary>16 bf16 (<paramref name="bf16"/>) or fp16 values at <paramref name="p"/> as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ushort* p, bool bf16) => bf16 ? WidenBf16(p) : LoadHalf(p);

    /// <summary><paramref name="v"/> rounded to bf16 (<paramref name="bf16"/>) or fp16 and stored at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store16(ushort* p, Vector512<float> v, bool bf16)
    {
        if (bf16) StoreBf16(p, v);
        else StoreHalf(p, v);
    }

    /// <summary><paramref name="v"/> rounded to bf16 (<paramref name="bf16"/>) or fp16 and widened back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round16(Vector512<float> v, bool bf16) => bf16 ? RoundBf16(v) : RoundHalf(v);

    /// <summary>
    /// e^x for 16 lanes, within 2 ulp of <see cref="MathF.Exp(float)"/> for x in [−87.3, 88.3] (Cephes expf: x = n·ln2 + r,
    /// a degree-7 polynomial in r, 2ⁿ put into the exponent bits). Outside that range x is clamped, so tiny results come out as
    /// ≈ 1.2·10⁻³⁸ instead of underflowing to 0 — immaterial for softmax and SiLU, where this is used. .NET's
    /// <c>Vector512.Exp</c> took ≈ 2.8 ns per element here (glm4-bench SwiGLU: 12.9 µs per 4,608 elements).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87.33654f)), Vector512.Create(88.37626f));
        var n = Avx512F.RoundScale(x * Vector512.Create(1.44269504088896341f), 0); // round to nearest even
        var r = Avx512F.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Avx512F.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        var y = Avx512F.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        var scale = Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(n) + Vector512.Create(127), 23).AsSingle();
        return y * scale;
    }
}
