using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// Machine code for the kernels .NET has no intrinsics for (AVX512_BF16's <c>vdpbf16ps</c>): the bytes are written into a
/// fresh private mapping, which is then made read + execute (never writable and executable at once) and kept for the
/// process's life. Linux x64 only.
/// </summary>
internal static unsafe class CodePage
{
    /// <summary>True where the CPU has AVX512_BF16 (CPUID.(EAX=7, ECX=1):EAX[5]) and AVX-512F.</summary>
    public static bool HasAvx512Bf16 => Avx512F.IsSupported && ((X86Base.CpuId(7, 1).Eax >> 5) & 1) != 0;

    /// <summary>The address of <paramref name="image"/> copied into executable memory, or 0 where that is not possible.</summary>
    public static nint Map(ReadOnlySpan<byte> image)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || image.IsEmpty) return 0;
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        nuint size = (nuint)((image.Length + 4095) / 4096 * 4096);
        nint page = mmap(0, size, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == -1) return 0;
        image.CopyTo(new Span<byte>((void*)page, image.Length));
        if (mprotect(page, size, ProtRead | ProtExec) != 0) { munmap(page, size); return 0; }
        return page;
    }

    [DllImport("libc", SetLastError = true)] private static extern nint mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int mprotect(nint address, nuint length, int protection);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(nint address, nuint length);
}
