using System.Diagnostics;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Diagnostics;

/// <summary>Measures the machine's limits in the same process as a benchmark, so results can be stated as fractions of them.</summary>
public static class MachineProbe
{
    /// <summary>
    /// Read bandwidth in GB/s: the best of several full reductions (<c>sum</c>) over a buffer much larger than the caches.
    /// </summary>
    public static double MeasureReadBandwidth(long bytes = 1L << 30, int repeats = 5, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        using var inference = torch.inference_mode();
        using var buffer = torch.ones(bytes / sizeof(float), dtype: ScalarType.Float32, device: device ?? torch.CPU);
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            using var s = buffer.sum();
            _ = s.item<float>();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return bytes / best / 1e9;
    }

    /// <summary>Matrix-multiply throughput in GFLOP/s for an [m, k] × [k, n] product in <paramref name="dtype"/> (best of a few).</summary>
    public static double MeasureGemm(int m, int k, int n, ScalarType dtype, double seconds = 1.0, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        using var inference = torch.inference_mode();
        using var a = torch.randn(m, k, dtype: ScalarType.Float32, device: device ?? torch.CPU).to(dtype);
        using var w = torch.randn(n, k, dtype: ScalarType.Float32, device: device ?? torch.CPU).to(dtype);
        using (var warm = nn.functional.linear(a, w)) { }
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            using var y = nn.functional.linear(a, w);
            _ = y[0, 0].item<float>();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        } while (total.Elapsed.TotalSeconds < seconds);
        return 2.0 * m * k * n / best / 1e9;
    }
}
