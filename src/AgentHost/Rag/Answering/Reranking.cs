using Glm.Engine;
using Glm.Engine.Encoders;

namespace AgentHost.Rag.Answering;

/// <summary>Scores retrieved passages against a query jointly (a cross-encoder), to reorder the fused candidates.</summary>
public interface IPassageReranker
{
    /// <summary>A label for reports, e.g. the model folder's name.</summary>
    string Name { get; }

    /// <summary>Relevance of each passage to <paramref name="query"/>, in passage order; higher is more relevant.</summary>
    Task<IReadOnlyList<float>> ScoreAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken = default);
}

/// <summary><see cref="IPassageReranker"/> over the engine's <see cref="CrossEncoderReranker"/> (bge-reranker-*, BERT cross-encoders).</summary>
public sealed class CrossEncoderPassageReranker : IPassageReranker, IDisposable
{
    private readonly CrossEncoderReranker _reranker;
    private readonly bool _ownsModel;

    /// <summary>Wraps <paramref name="reranker"/>; with <paramref name="ownsModel"/> disposing this frees the weights.</summary>
    public CrossEncoderPassageReranker(CrossEncoderReranker reranker, string name, bool ownsModel = false)
    {
        _reranker = reranker ?? throw new ArgumentNullException(nameof(reranker));
        Name = name;
        _ownsModel = ownsModel;
    }

    /// <summary>Loads the cross-encoder in <paramref name="folder"/> (the setting Rag:Reranker:ModelDir).</summary>
    /// <exception cref="GlmException">The folder is missing or not a cross-encoder checkpoint.</exception>
    public static CrossEncoderPassageReranker Load(string folder, string? device = null)
    {
        if (!Directory.Exists(folder))
            throw new GlmException($"Rag:Reranker:ModelDir = '{folder}': folder not found; expected a cross-encoder such as bge-reranker-base (config.json, weights, tokenizer)");
        var model = CrossEncoderReranker.Load(folder, new RerankerOptions { Device = device });
        return new CrossEncoderPassageReranker(model, Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)), ownsModel: true);
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public Task<IReadOnlyList<float>> ScoreAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken = default) =>
        passages.Count == 0
            ? Task.FromResult<IReadOnlyList<float>>([])
            : Task.Run<IReadOnlyList<float>>(() => _reranker.Score(query, passages), cancellationToken);

    /// <summary>Frees the model when owned.</summary>
    public void Dispose()
    {
        if (_ownsModel) _reranker.Dispose();
    }
}
