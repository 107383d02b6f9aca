using System.Runtime.InteropServices;
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
    /// or once for all rows when <paramref name="threads"/> is 1 or <paramref name="small"/> (not worth the hand-off).
    /// </summary>
    public static void ForRowRanges(long rows, int threads, bool small, Action<long, long> run)
    {
        if (threads == 1 || small) { run(0, rows); return; }
        long chunk = (rows + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            long r0 = t * chunk, r1 = Math.Min(rows, r0 + chunk);
            if (r0 < r1) run(r0, r1);
        });
    }
}
