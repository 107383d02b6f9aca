using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>A decoder network that can return its hidden states (for embeddings), besides logits.</summary>
internal interface IHiddenStateNetwork
{
    /// <summary>Number of transformer blocks.</summary>
    int LayerCount { get; }

    /// <summary>
    /// Hidden states [b, s, H] of <paramref name="inputIds"/> [b, s] (causal attention, no cache): after
    /// <paramref name="layers"/> blocks (0 = the token embeddings); <paramref name="layers"/> = <see cref="LayerCount"/>
    /// also applies the final norm, i.e. returns what the output head sees.
    /// </summary>
    Tensor HiddenStates(Tensor inputIds, Tensor positionIds, int layers);
}
