using Glm.Engine;
using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Llm;

/// <summary>
/// The connector's chat client over a model this host loaded itself: disposing the client frees the model's weights.
/// </summary>
public sealed class OwnedModelChatClient(IChatClient inner, GlmModel model) : DelegatingChatClient(inner)
{
    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(GlmModel) ? model : base.GetService(serviceType, serviceKey);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) model.Dispose();
        base.Dispose(disposing);
    }
}
