using System.Diagnostics;
using static TorchSharp.torch;

namespace Glm.Engine.Training;

/// <summary>Measures this machine's matrix-multiply rate at a training-relevant shape.</summary>
public static class GemmBenchmark
{
    /// <summary>
    /// GFLOP/s of a [512, H] · [H, H] matmul in <paramref name="dtype"/> on the CPU, repeated for about <paramref name="seconds"/>
    /// after three warm-up calls (2·512·H² floating-point operations per call). On a GPU a small model's matmuls leave most of
    /// the chip idle, so there the limit is an 8192³ matmul (the figure GPU peak tables quote).
    /// </summary>
    public static double MeasureGFlops(int hidden, ScalarType dtype, Device device, double seconds = 1.0)
    {
        if (seconds <= 0) return double.NaN;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Draw on the CPU and move: TorchSharp's Generator is a CPU generator, which CUDA randn rejects.
        var gen = new Generator(42);
        long m = 512, k = hidden;
        if (device.type == TorchSharp.DeviceType.CUDA) m = k = 8192;
        var a = randn(new long[] { m, k }, generator: gen).to(dtype, device);
        var b = randn(new long[] { k, k }, generator: gen).to(dtype, device);
        for (int i = 0; i < 3; i++) matmul(a, b).Dispose(); // warm-up: thread pool, oneDNN kernel selection
        Synchronize(device);
        var clock = Stopwatch.StartNew();
        long calls = 0;
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            // Dispose each product at once: piling up fresh allocations would measure page faults, not the GEMM.
            for (int i = 0; i < 4; i++) matmul(a, b).Dispose();
            calls += 4;
            Synchronize(device);
        }
        return 2.0 * m * k * (double)k * calls / clock.Elapsed.TotalSeconds / 1e9;
    }

    internal static void Synchronize(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
    }
}
