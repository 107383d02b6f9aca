using System.Diagnostics;
using static TorchSharp.torch;

namespace Glm.Engine.Training;

/// <summary>Measures this machine's matrix-multiply rate at a training-relevant shape.</summary>
public static class GemmBenchmark
{
    /// <summary>
    /// GFLOP/s of a [512, H] · [H, H] matmul in <paramref name="dtype"/>, repeated for about <paramref name="seconds"/>
    /// after one warm-up call (2·512·H² floating-point operations per call).
    /// </summary>
    public static double MeasureGFlops(int hidden, ScalarType dtype, Device device, double seconds = 1.0)
    {
        if (seconds <= 0) return double.NaN;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var gen = new Generator(42, device);
        var a = randn(new long[] { 512, hidden }, generator: gen, device: device).to(dtype);
        var b = randn(new long[] { hidden, hidden }, generator: gen, device: device).to(dtype);
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
        return 2.0 * 512 * hidden * (double)hidden * calls / clock.Elapsed.TotalSeconds / 1e9;
    }

    internal static void Synchronize(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
    }
}
