using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Llm;

/// <summary>An embedding generator over a model this host loaded itself: disposing the generator frees the model.</summary>
public sealed class OwnedEmbeddingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner, IDisposable model)
    : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
{
    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) model.Dispose();
        base.Dispose(disposing);
    }
}
