using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Runtime;

/// <summary>
/// Moves the memory of large CPU tensors onto 2 MiB pages (Linux transparent huge pages, <c>madvise(MADV_COLLAPSE)</c>,
/// kernel 6.1 or later). Why: decoding streams every weight once per token, and on 4 KiB pages the hardware prefetchers stop
/// at every page boundary; on this project's Zen 4 VM glm4-bench bf16 decode went from 26.4–26.8 to 28.5–29.7 tok/s in the
/// slow-bandwidth state and from 31–39 to 47.4 in the fast one (docs/benchmarks.md, "Session 15"). The kernel copies each
/// region into fresh huge pages and remaps it at the same addresses, so tensors, views and raw pointers stay valid and the
/// values unchanged; it costs ≈ 2.5 s per GB, once. Best effort: a region the kernel cannot collapse (no free huge page,
/// THP off, an older kernel) stays as it is.
/// </summary>
public static class HugePages
{
    private const int MadviseCollapse = 25;
    private const long PageBytes = 2L << 20;
    private static volatile bool _unsupported = !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64
        || ThpMode() == "never" || Environment.GetEnvironmentVariable("GLM_NO_HUGE_PAGES") == "1";

    /// <summary>False where collapsing cannot work here or is turned off: not Linux x64, transparent huge pages set to
    /// <c>never</c>, a kernel that refused <c>MADV_COLLAPSE</c> as unknown, or <c>GLM_NO_HUGE_PAGES=1</c>.</summary>
    public static bool Supported => !_unsupported;

    /// <summary>
    /// Collapses the whole 2 MiB pages inside <paramref name="tensor"/>'s memory (a CPU tensor of at least one such page; others
    /// are skipped) and returns the bytes now on huge pages (0 when nothing was collapsed).
    /// </summary>
    public static unsafe long Collapse(Tensor tensor)
    {
        if (_unsupported || tensor.device_type != DeviceType.CPU || tensor.NumberOfElements == 0) return 0;
        long start = (long)Modeling.Kernels.KernelSupport.Data(tensor);
        long end = start + tensor.NumberOfElements * tensor.ElementSize;
        long first = (start + PageBytes - 1) / PageBytes * PageBytes, last = end / PageBytes * PageBytes;
        if (last <= first) return 0;
        if (madvise((nint)first, (nuint)(last - first), MadviseCollapse) == 0) return last - first;
        if (Marshal.GetLastPInvokeError() == 22) _unsupported = true; // EINVAL: the kernel does not know MADV_COLLAPSE
        return 0;
    }

    /// <summary><see cref="Collapse(Tensor)"/> for each tensor, stopping early on <paramref name="ct"/>; the bytes collapsed.</summary>
    public static long Collapse(IEnumerable<Tensor> tensors, CancellationToken ct = default)
    {
        long bytes = 0;
        foreach (var t in tensors)
        {
            if (ct.IsCancellationRequested || _unsupported) break;
            bytes += Collapse(t);
        }
        return bytes;
    }

    /// <summary>Anonymous memory of this process on huge pages (AnonHugePages of /proc/self/smaps_rollup), or 0 where unknown.</summary>
    public static long ProcessBytes()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/smaps_rollup"))
                if (line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    // The bracketed word of /sys/kernel/mm/transparent_hugepage/enabled ("always [madvise] never"), or "" where unreadable.
    private static string ThpMode()
    {
        try
        {
            string s = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
            int open = s.IndexOf('['), close = s.IndexOf(']');
            return open >= 0 && close > open ? s[(open + 1)..close] : "";
        }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }

    [DllImport("libc", SetLastError = true)] private static extern int madvise(nint address, nuint length, int advice);
}
