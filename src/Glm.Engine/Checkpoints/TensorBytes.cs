using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>
/// Copies raw little-endian bytes between streams and CPU tensors through the data pointer, in chunks, so tensors over
/// 2 GiB work (TorchSharp's <c>bytes</c> span is limited to 2 GiB).
/// </summary>
internal static class TensorBytes
{
    private const int ChunkBytes = 1 << 24;

    // TorchSharp 0.107 keeps the storage pointer internal; this is the same native entry point it uses.
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSStorage_data_ptr(IntPtr tensor);

    private static unsafe byte* DataPointer(Tensor t)
    {
        if (t.device_type != DeviceType.CPU || !t.is_contiguous())
            throw new InvalidOperationException("raw byte copy needs a contiguous CPU tensor");
        byte* storage = (byte*)THSStorage_data_ptr(t.Handle);
        return storage + t.storage_offset() * t.ElementSize;
    }

    /// <summary>Fills a contiguous CPU tensor from the stream; throws <see cref="EndOfStreamException"/> if it ends early.</summary>
    public static unsafe void ReadInto(Stream stream, Tensor target)
    {
        long total = target.NumberOfElements * target.ElementSize;
        if (total == 0) return;
        byte* basePtr = DataPointer(target);
        for (long done = 0; done < total;)
        {
            int chunk = (int)Math.Min(ChunkBytes, total - done);
            stream.ReadExactly(new Span<byte>(basePtr + done, chunk));
            done += chunk;
        }
    }

    /// <summary>Writes the bytes of a contiguous CPU tensor to the stream.</summary>
    public static unsafe void WriteFrom(Tensor source, Stream stream)
    {
        long total = source.NumberOfElements * source.ElementSize;
        if (total == 0) return;
        byte* basePtr = DataPointer(source);
        for (long done = 0; done < total;)
        {
            int chunk = (int)Math.Min(ChunkBytes, total - done);
            stream.Write(new ReadOnlySpan<byte>(basePtr + done, chunk));
            done += chunk;
        }
    }

    /// <summary>A CPU, contiguous tensor with the same values (the input itself when it already is one; check with ReferenceEquals).</summary>
    public static Tensor AsCpuContiguous(Tensor t)
    {
        if (t.device_type == DeviceType.CPU && t.is_contiguous()) return t;
        if (t.device_type == DeviceType.CPU) return t.contiguous();
        using var cpu = t.cpu();
        return cpu.contiguous();
    }
}
