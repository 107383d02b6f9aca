using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// int8 weight rows · int16-quantized input rows with AVX512_VNNI's 512-bit <c>vpdpwssd</c> (32 products per instruction): the
/// quantized-activation decode loops of <see cref="CpuInt8Gemv"/> on CPUs with AVX-512 but without the VEX-encoded AVX-VNNI
/// that <see cref="CpuInt8VnniGemv"/> needs (AMD Zen 4). .NET 10 has no AVX512_VNNI intrinsics, so the loops are machine code
/// placed in an executable page at first use (<see cref="CodePage"/>).
/// <para>Activations are quantized to int16 per block of <see cref="BlockColumns"/> columns (256, or 128 where the row length
/// is not a multiple of 256): d_b = max|x_b| / 32767, xq = round-to-even(x · 32767 / max|x_b|), so each value moves by at most
/// d_b/2 (AVX-VNNI's int8 blocks of 32 move by up to max|x_b|/254, 129 times more). The weights are sign-extended to int16
/// (<c>vpmovsxbw</c>, −128 included) and each 32-column group costs that and one <c>vpdpwssd</c>; a block's lanes hold exact
/// integer sums (at most 16 products of |xq|·|w| ≤ 32767·128 each, below 2³¹) and then cost one conversion and one FMA.</para>
/// <para>Why these and not int8 activations in blocks of 32 (llama.cpp's Q8_0, what CpuInt8VnniGemv does): on this VM a core
/// streams weights only as fast as its out-of-order window reaches ahead, and the per-block conversion and FMA every 32–64
/// columns held one thread to 18–20 GB/s from memory (the bf16 loop: 25–27). These loops stream 24–27 GB/s on one thread at
/// k ≤ 2048 (16–18 at 4,608, where a row's 9 KiB of int16 activations keeps less well in L1; docs/benchmarks.md) —
/// as fast as int8 activations in blocks of 256, which were measured too and cost 2.5 times the mean logit error of exact
/// activations on the bundled model (these cost nothing measurable; docs/quantization.md).</para>
/// <para>Each output: blocks alternate between two 16-lane accumulators (an unpaired last block goes to the first), each
/// block's integer lanes converted to fp32 and FMA'd with d_b; the accumulators are added, the 16 lanes summed as
/// <see cref="Bf16DotKernel"/> does and the row's scale multiplied. Lane j of a 32-column group holds columns 2j and 2j + 1.
/// The four-row loop does exactly that per input row, so a stream's logits do not depend on which streams share its step.</para>
/// </summary>
internal static unsafe partial class Int8DotKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private struct FourRowsArgs
    {
        public sbyte* W;
        public long K, Rows;
        public short* Q0, Q1, Q2, Q3;
        public float* D0, D1, D2, D3;
        public float* Y0, Y1, Y2, Y3;
        public float* S;
        public long Count;
        public long C0, C1;      // the columns this call takes
        public float* State;     // 512 bytes per weight row: the accumulators between K-blocks
        public long Flags;       // 1: first K-block; 2: last K-block
    }

    /// <summary>Most columns the four-row loop takes in one K-block: four int16 rows of 3,072 columns are 24 KiB, inside L1
    /// (one thread, weights in L2: 167–173 GOP/s up to k = 3072, 100 at 4,608 unblocked).</summary>
    private const long MaxKBlock = 3072;

    // Columns per K-block of the four-row loop for rows of k columns: k itself up to MaxKBlock, else equal K-blocks of an even
    // number of activation blocks (so the accumulators' even/odd alternation carries over unchanged), the last one shorter.
    private static long KBlock(long k)
    {
        if (k <= MaxKBlock) return k;
        long pair = 2L * BlockColumns(k), blocks = (k + MaxKBlock - 1) / MaxKBlock;
        return (k / blocks + pair - 1) / pair * pair;
    }

    private readonly record struct Loops(nint One4, nint One8, nint Four4, nint Four8);

    private static readonly Loops Code = Load();

    /// <summary>True where the CPU has AVX512_VNNI (CPUID.(EAX=7, ECX=0):ECX[11]) with AVX-512F/BW and the code page could be
    /// made executable.</summary>
    public static bool IsSupported => Code.One4 != 0;

    /// <summary>Whether the loops take rows of <paramref name="k"/> columns (a positive multiple of 128).</summary>
    public static bool Takes(long k) => IsSupported && k >= 128 && k % 128 == 0;

    /// <summary>Columns per activation block for rows of <paramref name="k"/> columns: 256 where k is a multiple of 256, else 128.</summary>
    public static int BlockColumns(long k) => k % 256 == 0 ? 256 : 128;

    /// <summary>Weight rows per L2 block when there are more than four input rows: 64 rows of k = 4608 are 288 KiB, so the groups
    /// of four input rows after the first read the block from L2 instead of memory.</summary>
    private const long RowBlock = 64;

    private static long _calls;

    /// <summary>Calls of <see cref="Rows"/> so far in this process (one per thread's row range); tests use it to prove the loops ran.</summary>
    public static long Calls => Interlocked.Read(ref _calls);

    // Bytes one input row takes in the activation buffer: its k int16 values, then its block scales (padded to 64 bytes).
    private static long RowBytes(long k) => 2 * k + (k / BlockColumns(k) * sizeof(float) + 63) / 64 * 64;

    /// <summary>Bytes of the quantized activations of <paramref name="rows"/> input rows of <paramref name="k"/> columns.</summary>
    public static long ActivationBytes(int rows, long k) => rows * RowBytes(k);

    /// <summary>Quantized values of input row <paramref name="m"/> in an activation buffer.</summary>
    public static short* Values(byte* buffer, long k, int m) => (short*)(buffer + m * RowBytes(k));

    /// <summary>Block scales d_b of input row <paramref name="m"/> in an activation buffer.</summary>
    public static float* Scales(byte* buffer, long k, int m) => (float*)(buffer + m * RowBytes(k) + 2 * k);

    /// <summary>
    /// Quantizes each of the <paramref name="rows"/> rows of <paramref name="x"/> [rows, k] into <paramref name="buffer"/>
    /// (<see cref="ActivationBytes"/> long, 64-byte aligned; laid out as <see cref="Values"/> and <see cref="Scales"/> read it).
    /// The caller has checked <see cref="Takes"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Quantize(float* x, int rows, long k, byte* buffer)
    {
        int block = BlockColumns(k);
        for (int m = 0; m < rows; m++)
        {
            float* xm = x + m * k;
            short* q = Values(buffer, k, m);
            float* d = Scales(buffer, k, m);
            for (long b = 0; b < k / block; b++)
            {
                float* p = xm + b * block;
                var amax16 = Vector512<float>.Zero;
                for (int i = 0; i < block; i += 16) amax16 = Vector512.Max(amax16, Vector512.Abs(Avx512F.LoadVector512(p + i)));
                var amax8 = Vector256.Max(amax16.GetLower(), amax16.GetUpper());
                var amax4 = Vector128.Max(amax8.GetLower(), amax8.GetUpper());
                float amax = MathF.Max(MathF.Max(amax4[0], amax4[1]), MathF.Max(amax4[2], amax4[3]));
                var inv = Vector512.Create(amax > 0 ? 32767f / amax : 0f);
                // vcvtps2dq rounds to nearest even (the default MXCSR mode); |x·inv| ≤ 32767, so vpmovdw's truncation is exact.
                for (int i = 0; i < block; i += 16)
                    Avx.Store(q + b * block + i, Avx512F.ConvertToVector256Int16(Avx512F.ConvertToVector512Int32(Avx512F.LoadVector512(p + i) * inv)));
                d[b] = amax / 32767f;
            }
        }
    }

    /// <summary>
    /// y[m·n + r] = (Σ_b d_b·Σ_{i∈b} w[r, i]·xq[m, i]) · s[r] for the <paramref name="rows"/> (≤ <see cref="CpuInt8Gemv.MaxInt8ActivationRows"/>) input rows
    /// quantized in <paramref name="buffer"/> and weight rows [r0, r1) of int8 <paramref name="w"/> [n, k] with fp32 row scales
    /// <paramref name="s"/>. One input row: one pass over the rows. More: weight rows in L2-sized blocks, each block taken with
    /// every group of up to four input rows before the next is read (the groups after the first find it in L2), and rows longer
    /// than 3,072 columns in K-blocks within each block (the four-row loop carries its accumulators between them).
    /// </summary>
    public static void Rows(sbyte* w, float* s, byte* buffer, float* y, int rows, long k, long n, long r0, long r1)
    {
        Interlocked.Increment(ref _calls);
        bool long256 = BlockColumns(k) == 256;
        var one = (delegate* unmanaged<sbyte*, long, short*, float*, float*, long, float*, void>)(long256 ? Code.One8 : Code.One4);
        var four = (delegate* unmanaged<FourRowsArgs*, void>)(long256 ? Code.Four8 : Code.Four4);
        if (rows == 1)
        {
            one(w + r0 * k, k, Values(buffer, k, 0), Scales(buffer, k, 0), y + r0, r1 - r0, s + r0);
            return;
        }
        long kb = KBlock(k);
        // The accumulators between K-blocks: 512 bytes per weight row of a block, per group of four input rows.
        float* state = kb < k ? (float*)NativeMemory.AlignedAlloc((nuint)((rows + 3) / 4 * RowBlock * 512), 64) : null;
        try { FourRowGroups(one, four, w, s, buffer, y, rows, k, n, r0, r1, kb, state); }
        finally { if (state != null) NativeMemory.AlignedFree(state); }
    }

    private static void FourRowGroups(delegate* unmanaged<sbyte*, long, short*, float*, float*, long, float*, void> one,
        delegate* unmanaged<FourRowsArgs*, void> four, sbyte* w, float* s, byte* buffer, float* y, int rows, long k, long n,
        long r0, long r1, long kb, float* state)
    {
        for (long b0 = r0; b0 < r1; b0 += RowBlock)
        {
            long b1 = Math.Min(r1, b0 + RowBlock);
            for (long c0 = 0; c0 < k; c0 += kb)
            {
                long c1 = Math.Min(k, c0 + kb);
                for (int m0 = 0; m0 < rows; m0 += 4)
                {
                    int count = Math.Min(4, rows - m0);
                    if (count == 1)
                    {
                        if (c0 == 0)
                            one(w + b0 * k, k, Values(buffer, k, m0), Scales(buffer, k, m0), y + m0 * n + b0, b1 - b0, s + b0);
                        continue;
                    }
                    int Row(int i) => m0 + Math.Min(i, count - 1);
                    var args = new FourRowsArgs
                    {
                        W = w + b0 * k, K = k, Rows = b1 - b0, S = s + b0, Count = count,
                        Q0 = Values(buffer, k, Row(0)), Q1 = Values(buffer, k, Row(1)), Q2 = Values(buffer, k, Row(2)), Q3 = Values(buffer, k, Row(3)),
                        D0 = Scales(buffer, k, Row(0)), D1 = Scales(buffer, k, Row(1)), D2 = Scales(buffer, k, Row(2)), D3 = Scales(buffer, k, Row(3)),
                        Y0 = y + Row(0) * n + b0, Y1 = y + Row(1) * n + b0, Y2 = y + Row(2) * n + b0, Y3 = y + Row(3) * n + b0,
                        C0 = c0, C1 = c1, State = state + m0 / 4 * RowBlock * 128, Flags = (c0 == 0 ? 1 : 0) | (c1 == k ? 2 : 0),
                    };
                    four(&args);
                }
            }
        }
    }

    private static Loops Load()
    {
        bool vnni512 = Avx512F.IsSupported && Avx512BW.IsSupported && ((X86Base.CpuId(7, 0).Ecx >> 11) & 1) != 0;
        if (!vnni512) return default;
        const int One8At = 512, Four4At = 1152, Four8At = 2560;
        if (OneRow4Code.Length > One8At || One8At + OneRow8Code.Length > Four4At || Four4At + FourRows4Code.Length > Four8At)
            return default; // layout guard
        var image = new byte[Four8At + FourRows8Code.Length];
        OneRow4Code.CopyTo(image);
        OneRow8Code.CopyTo(image.AsSpan(One8At));
        FourRows4Code.CopyTo(image.AsSpan(Four4At));
        FourRows8Code.CopyTo(image.AsSpan(Four8At));
        nint page = CodePage.Map(image);
        return page == 0 ? default : new Loops(page, page + One8At, page + Four4At, page + Four8At);
    }
}
