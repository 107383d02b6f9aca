using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    /// <summary>Number of transformer blocks (valid embedding layers are -1 and 0..LayerCount).</summary>
    public int LayerCount => Config.NumLayers;

    /// <summary>Width of the vectors <see cref="EmbedIds"/> returns.</summary>
    public int EmbeddingDimensions => Config.HiddenSize;

    /// <summary>
    /// A sentence embedding of <paramref name="ids"/>: the hidden states after <paramref name="layer"/> blocks
    /// (-1 = the last block plus the final norm, i.e. the input of the output head; 0 = the token embeddings), mean-pooled
    /// over the tokens and L2-normalised, as float32 of length <see cref="EmbeddingDimensions"/>.
    /// </summary>
    public float[] EmbedIds(IReadOnlyList<int> ids, int layer = -1)
    {
        if (ids.Count == 0) throw new GlmException("no input ids to embed; expected at least one token id.");
        if (ids.Count > MaxContext) throw new GlmException($"input of {ids.Count} tokens does not fit the context of {MaxContext} tokens.");
        if (Network is not IHiddenStateNetwork hidden)
            throw new GlmException($"{Source}: this network does not expose hidden states, so it cannot compute embeddings.");
        int layers = layer == -1 ? hidden.LayerCount : layer;
        if (layers < 0 || layers > hidden.LayerCount)
            throw new GlmException($"embedding layer {layer} is out of range; expected -1 (last, normed) or 0..{hidden.LayerCount}.");
        for (int i = 0; i < ids.Count; i++)
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new GlmException($"token id {ids[i]} at index {i} is out of range; expected 0..{Config.VocabSize - 1} for this model.");

        ForwardGate.Wait();
        try
        {
            using var inference = torch.inference_mode();
            using var scope = NewDisposeScope();
            var states = hidden.HiddenStates(IdsTensor(ids), Positions(0, ids.Count), layers).to(ScalarType.Float32);
            var pooled = states.mean(new long[] { 1 }).view(-1);
            var norm = pooled.norm().clamp_min(1e-12);
            return (pooled / norm).cpu().data<float>().ToArray();
        }
        finally { ForwardGate.Release(); }
    }
}
