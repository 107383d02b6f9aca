using System.Runtime.InteropServices;
using TorchSharp;

namespace Glm.Engine.Runtime;

/// <summary>
/// One place that decides how libtorch is loaded and which device the engine uses.
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _initialized;

    /// <summary>
    /// Folder with a libtorch build (libc10.so, libtorch_cpu.so, libtorch.so, libLibTorchSharp.so) to load instead of the
    /// copies next to the application. Read from <c>GLM_LIBTORCH_DIR</c>; must be set before the first tensor is made.
    /// </summary>
    public static string? NativeFolder { get; set; } = Environment.GetEnvironmentVariable("GLM_LIBTORCH_DIR");

    /// <summary>
    /// Keep libgomp's default spin-waiting (set before the first tensor). Training is a stream of back-to-back libtorch ops
    /// that gains from it (6,190 vs 5,140 tokens/s on the 5.5M-parameter model, 2 vCPU); decoding, whose managed kernels run
    /// between libtorch ops, loses (see <see cref="StopOpenMpSpinning"/>). False (no spinning) by default.
    /// </summary>
    public static bool KeepOpenMpSpinning { get; set; }

    /// <summary>Loads libtorch (once). Throws <see cref="GlmException"/> with the cause when it cannot be loaded.</summary>
    public static void EnsureInitialized()
    {
        if (_initialized) return;
        lock (Gate)
        {
            if (_initialized) return;
            try
            {
                StopOpenMpSpinning();
                if (!string.IsNullOrEmpty(NativeFolder)) LoadFromFolder(NativeFolder);
                // Touch the native backend so a load failure surfaces here, not at an arbitrary first op.
                using var probe = torch.zeros(1);
            }
            catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException or NotSupportedException)
            {
                throw new GlmException(
                    "libtorch could not be loaded: " + (ex.InnerException?.Message ?? ex.Message) +
                    ". On Debian 12 the build patches libLibTorchSharp.so (build/TorchSharpDebianFix.targets); " +
                    "run from the build output or set GLM_LIBTORCH_DIR to a folder with a matching libtorch.", ex);
            }
            _initialized = true;
        }
    }

    /// <summary>
    /// libtorch's OpenMP (libgomp) workers spin for a while after each parallel region. On a machine with few cores they then
    /// hold the CPUs that our managed decode kernels and the .NET thread pool need between libtorch ops; measured on
    /// glm4-bench (2 vCPU, bf16): decode 14.8 tok/s with libgomp's default, 22.3 with GOMP_SPINCOUNT=0, prefill unchanged.
    /// libgomp reads its settings once, when it is loaded, so they must be in the C environment before the first tensor —
    /// <see cref="Environment.SetEnvironmentVariable(string, string)"/> only changes .NET's copy on Linux, hence setenv.
    /// A value the user set (GOMP_SPINCOUNT, OMP_WAIT_POLICY) is left alone.
    /// </summary>
    private static void StopOpenMpSpinning()
    {
        if (KeepOpenMpSpinning || !OperatingSystem.IsLinux()) return;
        if (Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        try { _ = setenv("GOMP_SPINCOUNT", "0", 0); }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { /* not glibc: keep the default */ }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv([MarshalAs(UnmanagedType.LPStr)] string name, [MarshalAs(UnmanagedType.LPStr)] string value, int overwrite);

    private static void LoadFromFolder(string folder)
    {
        foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so", "libLibTorchSharp.so" })
        {
            string path = Path.Combine(folder, lib);
            if (File.Exists(path)) NativeLibrary.Load(path);
        }
    }

    /// <summary>True when TorchSharp's CUDA backend is present and a GPU is visible.</summary>
    public static bool CudaAvailable
    {
        get
        {
            EnsureInitialized();
            try { return torch.cuda.is_available(); }
            catch (Exception) { return false; }
        }
    }

    /// <summary>
    /// Resolves a device name: <c>null</c>/"auto" picks CUDA when available, else CPU; "cpu", "cuda", "cuda:1" are explicit.
    /// </summary>
    public static torch.Device ResolveDevice(string? name)
    {
        EnsureInitialized();
        if (string.IsNullOrWhiteSpace(name) || name.Equals("auto", StringComparison.OrdinalIgnoreCase))
            return CudaAvailable ? torch.CUDA : torch.CPU;
        if (name.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            if (!CudaAvailable)
                throw new GlmException($"--device {name}: CUDA is not available (this build uses the CPU libtorch, or no GPU is visible). Build with -p:GlmTorchBackend=cuda on a machine with a GPU, or use --device cpu.");
            return new torch.Device(name.ToLowerInvariant());
        }
        if (name.Equals("cpu", StringComparison.OrdinalIgnoreCase)) return torch.CPU;
        throw new GlmException($"--device '{name}' is not a device: expected auto, cpu, cuda or cuda:N.");
    }
}
