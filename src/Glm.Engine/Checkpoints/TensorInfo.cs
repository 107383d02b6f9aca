using TorchSharp;

namespace Glm.Engine.Checkpoints;

/// <summary>What a checkpoint says about one tensor, without loading its data.</summary>
/// <param name="Name">Tensor name as stored in the checkpoint (after unwrapping a THUDM <c>module</c> wrapper).</param>
/// <param name="DType">Element type stored in the file.</param>
/// <param name="Shape">Shape stored in the file (empty for a scalar).</param>
/// <param name="File">Full path of the file that holds the tensor's data.</param>
public sealed record TensorInfo(string Name, torch.ScalarType DType, long[] Shape, string File)
{
    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount => ShapeText.ElementCount(Shape);

    /// <summary>Size of the tensor's data in bytes.</summary>
    public long ByteCount => ElementCount * DTypes.ElementSize(DType);

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {DType} {ShapeText.Format(Shape)} in {File}";
}

/// <summary>Formatting and arithmetic on shapes shared by the checkpoint readers.</summary>
internal static class ShapeText
{
    public static string Format(IEnumerable<long> shape) => "[" + string.Join(",", shape) + "]";

    public static long ElementCount(long[] shape)
    {
        long n = 1;
        foreach (long d in shape) n = checked(n * d);
        return n;
    }
}
