using static TorchSharp.torch;

namespace Glm.Engine.Modeling;

/// <summary>A loaded decoder network of any GLM layout, as the generator and the trainers see it.</summary>
internal interface IDecoderNetwork : IDisposable
{
    GlmConfig Config { get; }
    ScalarType DType { get; }
    Device Device { get; }
    int MaxPositions { get; }

    /// <summary>A preallocated KV cache for <paramref name="batch"/> rows of up to <paramref name="capacity"/> tokens.</summary>
    KvCache CreateCache(int batch, int capacity);

    /// <summary>
    /// Logits for <paramref name="inputIds"/> [b, s]. <paramref name="positionIds"/> is [b, s] (rotary models) or [b, 2, s]
    /// (original GLM: positions and block positions). <paramref name="mask"/>: optional bool [b, 1, s, past+s], true = attend.
    /// </summary>
    Tensor Forward(Tensor inputIds, Tensor positionIds, KvCache? cache, Tensor? mask, bool lastOnly);

    /// <summary>Parameters under their canonical checkpoint names.</summary>
    IEnumerable<(string Name, Tensor Tensor)> NamedWeights();
}
