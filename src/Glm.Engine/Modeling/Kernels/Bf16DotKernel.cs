using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// bf16 weight rows · bf16 input row with AVX512_BF16's <c>vdpbf16ps</c> (32 bf16 products per instruction, exact products,
/// fp32 sums). .NET 10 has no intrinsic for it, so the loop below is machine code placed in an executable page at first use:
/// the widen-to-fp32 + FMA loop of <see cref="CpuGemv"/> needs three instructions where this needs one, which on a two-core
/// VM leaves one thread short of the read bandwidth (single thread, 200 MB of weights: 19.8 against 15.0 GB/s). Used by
/// <see cref="CpuGemv"/> for one input row whose values are exactly bf16 (any bf16 model's activations); the products are
/// then the same as the fp32 loop's, only the order of the fp32 sums differs. Linux x64 with AVX512_BF16 only;
/// <c>GLM_NO_BF16_DOT=1</c> turns it off.
/// </summary>
internal static unsafe class Bf16DotKernel
{
    /// <summary>
    /// rows(w, rowStrideBytes, x, k/64, y, rowCount): for each of rowCount rows, y[r] = Σ w[r, i]·x[i] over k bf16 values, two
    /// 512-bit accumulators, 4 KiB prefetch ahead (as the managed loops), horizontal sum in registers. System V arguments:
    /// rdi, rsi, rdx, rcx (≥ 1), r8, r9. Assembled with GNU as from:
    /// <code>
    ///   test r9,r9; jz done
    /// row: vpxord zmm0,zmm0,zmm0; vpxord zmm1,zmm1,zmm1; xor eax,eax; mov r11,rcx
    /// loop: prefetcht0 [rdi+rax+4096]; prefetcht0 [rdi+rax+4160]
    ///   vmovups zmm4,[rdx+rax]; vmovups zmm5,[rdx+rax+64]
    ///   vdpbf16ps zmm0,zmm4,[rdi+rax]; vdpbf16ps zmm1,zmm5,[rdi+rax+64]
    ///   add rax,128; dec r11; jnz loop
    ///   vaddps zmm0,zmm0,zmm1; vextractf64x4 ymm1,zmm0,1; vaddps ymm0,ymm0,ymm1; vextractf128 xmm1,ymm0,1
    ///   vaddps xmm0,xmm0,xmm1; vmovhlps xmm1,xmm0,xmm0; vaddps xmm0,xmm0,xmm1; vmovshdup xmm1,xmm0; vaddss xmm0,xmm0,xmm1
    ///   vmovss [r8],xmm0; add r8,4; add rdi,rsi; dec r9; jnz row
    /// done: vzeroupper; ret
    /// </code>
    /// </summary>
    private static ReadOnlySpan<byte> RowsCode =>
    [
        0x4D, 0x85, 0xC9, 0x0F, 0x84, 0x8A, 0x00, 0x00, 0x00, 0x62, 0xF1, 0x7D, 0x48, 0xEF, 0xC0, 0x62, 0xF1, 0x75, 0x48, 0xEF,
        0xC9, 0x31, 0xC0, 0x49, 0x89, 0xCB, 0x0F, 0x18, 0x8C, 0x07, 0x00, 0x10, 0x00, 0x00, 0x0F, 0x18, 0x8C, 0x07, 0x40, 0x10,
        0x00, 0x00, 0x62, 0xF1, 0x7C, 0x48, 0x10, 0x24, 0x02, 0x62, 0xF1, 0x7C, 0x48, 0x10, 0x6C, 0x02, 0x01, 0x62, 0xF2, 0x5E,
        0x48, 0x52, 0x04, 0x07, 0x62, 0xF2, 0x56, 0x48, 0x52, 0x4C, 0x07, 0x01, 0x48, 0x05, 0x80, 0x00, 0x00, 0x00, 0x49, 0xFF,
        0xCB, 0x75, 0xC7, 0x62, 0xF1, 0x7C, 0x48, 0x58, 0xC1, 0x62, 0xF3, 0xFD, 0x48, 0x1B, 0xC1, 0x01, 0xC5, 0xFC, 0x58, 0xC1,
        0xC4, 0xE3, 0x7D, 0x19, 0xC1, 0x01, 0xC5, 0xF8, 0x58, 0xC1, 0xC5, 0xF8, 0x12, 0xC8, 0xC5, 0xF8, 0x58, 0xC1, 0xC5, 0xFA,
        0x16, 0xC8, 0xC5, 0xFA, 0x58, 0xC1, 0xC4, 0xC1, 0x7A, 0x11, 0x00, 0x49, 0x83, 0xC0, 0x04, 0x48, 0x01, 0xF7, 0x49, 0xFF,
        0xC9, 0x0F, 0x85, 0x76, 0xFF, 0xFF, 0xFF, 0xC5, 0xF8, 0x77, 0xC3,
    ];

    private static readonly delegate* unmanaged<ushort*, long, ushort*, long, float*, long, void> Rows = Load();

    /// <summary>True where the CPU has AVX512_BF16 and the code page could be made executable.</summary>
    public static bool IsSupported => Rows != null;

    /// <summary>Set to false to use the managed loops instead (benchmarks, tests); starts off under GLM_NO_BF16_DOT=1.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_BF16_DOT") != "1";

    /// <summary>Most input elements handled (the packed input lives on the stack).</summary>
    public const int MaxInputs = 16384;

    /// <summary>Whether this kernel takes rows of <paramref name="k"/> elements.</summary>
    public static bool Takes(long k) => Enabled && IsSupported && k >= 64 && k % 64 == 0 && k <= MaxInputs;

    /// <summary>
    /// y[r] = Σ_i w[r·k + i]·x[i] for rows [r0, r1) when every x[i] is exactly a bf16 value (packed into a stack buffer on the
    /// way); false, with nothing written, when one is not — the caller then runs its fp32 loop, so no input is ever rounded.
    /// The caller has checked <see cref="Takes"/>.
    /// </summary>
    public static bool TryRows(ushort* w, float* x, float* y, long k, long r0, long r1)
    {
        ushort* packed = stackalloc ushort[(int)k];
        if (!TryPack(x, packed, k)) return false;
        Rows(w + r0 * k, k * sizeof(ushort), packed, k / 64, y + r0, r1 - r0);
        return true;
    }

    /// <summary>fp32 → bf16 bits when all of <paramref name="x"/>'s low 16 bits are zero (the values are bf16); else false.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool TryPack(float* x, ushort* packed, long k)
    {
        var lowBits = Vector512<uint>.Zero;
        for (long i = 0; i < k; i += 16)
        {
            var bits = Avx512F.LoadVector512((uint*)(x + i));
            lowBits |= bits;
            Avx2.Store(packed + i, Avx512F.ConvertToVector256UInt16(Avx512F.ShiftRightLogical(bits, 16)));
        }
        return (lowBits & Vector512.Create(0xFFFFu)) == Vector512<uint>.Zero;
    }

    private static delegate* unmanaged<ushort*, long, ushort*, long, float*, long, void> Load()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !Avx512F.IsSupported) return null;
        if (((X86Base.CpuId(7, 1).Eax >> 5) & 1) == 0) return null; // CPUID.(EAX=7, ECX=1):EAX[5] = AVX512_BF16
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        const nuint PageSize = 4096;
        nint page = mmap(0, PageSize, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == -1) return null;
        RowsCode.CopyTo(new Span<byte>((void*)page, RowsCode.Length));
        if (mprotect(page, PageSize, ProtRead | ProtExec) != 0) { munmap(page, PageSize); return null; }
        return (delegate* unmanaged<ushort*, long, ushort*, long, float*, long, void>)page; // kept for the process's life
    }

    [DllImport("libc", SetLastError = true)] private static extern nint mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int mprotect(nint address, nuint length, int protection);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(nint address, nuint length);
}
