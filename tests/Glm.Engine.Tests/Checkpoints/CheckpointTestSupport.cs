using System.Text;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Checkpoints;

/// <summary>A temporary folder deleted at dispose, plus helpers that build raw checkpoint bytes for error-case tests.</summary>
internal sealed class CheckpointTempDir : IDisposable
{
    public CheckpointTempDir()
    {
        TorchRuntime.EnsureInitialized();
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "glm-ckpt-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes a safetensors file by hand: u64 LE header length, the header text (unpadded), then data.</summary>
    public string WriteRawSafeTensors(string name, string headerJson, byte[] data, ulong? headerLengthOverride = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        using var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes(headerLengthOverride ?? (ulong)header.Length));
        ms.Write(header);
        ms.Write(data);
        string path = File(name);
        System.IO.File.WriteAllBytes(path, ms.ToArray());
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class TensorSamples
{
    /// <summary>Distinct deterministic values per tensor, in the given dtype.</summary>
    public static Tensor Make(ScalarType dtype, long[] shape, int seed)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        using var baseValues = torch.arange(n, dtype: ScalarType.Float32).reshape(shape);
        using var mixed = (baseValues * 0.5f + seed) % 97f;
        if (dtype == ScalarType.Bool) return mixed.to(ScalarType.Int64).remainder(2).to(ScalarType.Bool);
        return mixed.to(dtype);
    }

    public static void AssertSame(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        using var same = expected.eq(actual).all();
        Assert.True(same.item<bool>(), $"values differ for {expected.dtype} {string.Join(",", expected.shape)}");
    }
}
