using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>One checkpoint file of any supported format, as seen by <see cref="CheckpointReader"/>.</summary>
internal interface ICheckpointFile : IDisposable
{
    string FilePath { get; }
    IReadOnlyCollection<string> Names { get; }
    bool Contains(string name);
    TensorInfo Describe(string name);
    Tensor Load(string name);
}
