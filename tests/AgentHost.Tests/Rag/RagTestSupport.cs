using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.AI;

namespace AgentHost.Tests.Rag;

/// <summary>Locates the project root (folder with GlmSK.sln) and ../shared.</summary>
internal static class RagPaths
{
    public static string ProjectRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "GlmSK.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"GlmSK.sln not found above {AppContext.BaseDirectory}");
    }

    public static string Shared(string relative) => Path.GetFullPath(Path.Combine(ProjectRoot(), "..", "shared", relative));
}

/// <summary>A fact that is skipped (not passed) when a file under ../shared is missing.</summary>
public sealed class SharedFileFactAttribute : FactAttribute
{
    public SharedFileFactAttribute(string relativePath)
    {
        string path = RagPaths.Shared(relativePath);
        if (!File.Exists(path)) Skip = $"shared data not found at {path} (expected ../shared next to the project root); skipping";
    }
}

/// <summary>A fact that runs only when an environment variable is set.</summary>
public sealed class EnvFactAttribute : FactAttribute
{
    public EnvFactAttribute(string variable, string why)
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(variable))) Skip = $"env {variable} not set; {why}";
    }
}

/// <summary>A temp folder deleted after the test.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("glm-rag-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public string Write(string name, string text) => WriteBytes(name, Encoding.UTF8.GetBytes(text));
    public string WriteBytes(string name, byte[] bytes)
    {
        string p = File(name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        System.IO.File.WriteAllBytes(p, bytes);
        return p;
    }
    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}

/// <summary>
/// Deterministic embedding for tests: character 1–3-gram hashing into 256 dims, L2-normalised.
/// Texts sharing many n-grams get high cosine similarity.
/// </summary>
public sealed class HashingEmbeddingGenerator(int dimensions = 256) : IEmbeddingGenerator<string, Embedding<float>>
{
    public int Calls { get; private set; }

    public static float[] Embed(string text, int dimensions = 256)
    {
        var v = new float[dimensions];
        var chars = text.Where(c => !char.IsWhiteSpace(c) && !char.IsPunctuation(c)).ToArray();
        for (int n = 1; n <= 3; n++)
            for (int i = 0; i + n <= chars.Length; i++)
            {
                var hash = MD5.HashData(Encoding.UTF8.GetBytes(new string(chars, i, n)));
                int slot = (int)(BitConverter.ToUInt32(hash, 0) % (uint)dimensions);
                v[slot] += (hash[4] & 1) == 0 ? 1f : -1f;
            }
        float norm = MathF.Sqrt(v.Sum(x => x * x));
        if (norm > 0) for (int i = 0; i < v.Length; i++) v[i] /= norm;
        return v;
    }

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values,
        EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        Calls++;
        return Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v, dimensions)))));
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;
    public void Dispose() { }
}
