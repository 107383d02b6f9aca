using System.Collections.Concurrent;
using Glm.Engine;

namespace Glm.Connector;

/// <summary>
/// Loads each model once per process and shares it: keyed by the full folder path (or <c>random:NAME</c>) plus the load
/// options. Concurrent callers asking for the same key wait for one load. Models live until <see cref="Clear"/>.
/// </summary>
public static class GlmModelCache
{
    private static readonly ConcurrentDictionary<string, Lazy<GlmModel>> Models = new();

    /// <summary>The shared model for <paramref name="modelPath"/> and <paramref name="options"/>, loading it on first use.</summary>
    public static GlmModel GetOrLoad(string modelPath, GlmLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        options ??= new GlmLoadOptions();
        bool random = modelPath.StartsWith("random:", StringComparison.Ordinal);
        string source = random ? modelPath : Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelPath));
        string key = $"{source}|{options.Device}|{options.DType}|{options.MaxContext}|{options.Seed}";
        var lazy = Models.GetOrAdd(key, _ => new Lazy<GlmModel>(() => random
            ? GlmModel.CreateRandom(modelPath["random:".Length..], options)
            : GlmModel.Load(source, options), LazyThreadSafetyMode.ExecutionAndPublication));
        try { return lazy.Value; }
        catch
        {
            Models.TryRemove(new KeyValuePair<string, Lazy<GlmModel>>(key, lazy)); // let a later call retry a failed load
            throw;
        }
    }

    /// <summary>Number of models held.</summary>
    public static int Count => Models.Count;

    /// <summary>Disposes and forgets every cached model (callers must no longer use them).</summary>
    public static void Clear()
    {
        foreach (var key in Models.Keys.ToList())
            if (Models.TryRemove(key, out var lazy) && lazy.IsValueCreated) lazy.Value.Dispose();
    }
}
