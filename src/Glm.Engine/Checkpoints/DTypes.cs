using TorchSharp;

namespace Glm.Engine.Checkpoints;

/// <summary>Maps between safetensors dtype names, PyTorch storage class names and TorchSharp scalar types.</summary>
public static class DTypes
{
    private static readonly (string SafeTensors, string Storage, torch.ScalarType Type, int Size)[] Table =
    {
        ("F64", "DoubleStorage", torch.ScalarType.Float64, 8),
        ("F32", "FloatStorage", torch.ScalarType.Float32, 4),
        ("F16", "HalfStorage", torch.ScalarType.Float16, 2),
        ("BF16", "BFloat16Storage", torch.ScalarType.BFloat16, 2),
        ("I64", "LongStorage", torch.ScalarType.Int64, 8),
        ("I32", "IntStorage", torch.ScalarType.Int32, 4),
        ("I16", "ShortStorage", torch.ScalarType.Int16, 2),
        ("I8", "CharStorage", torch.ScalarType.Int8, 1),
        ("U8", "ByteStorage", torch.ScalarType.Byte, 1),
        ("BOOL", "BoolStorage", torch.ScalarType.Bool, 1),
    };

    /// <summary>The safetensors dtype names this reader accepts, for error messages.</summary>
    public static string SupportedSafeTensorsNames => string.Join(", ", Table.Select(t => t.SafeTensors));

    /// <summary>Scalar type for a safetensors dtype name (case-sensitive, as the format defines), or null if unsupported.</summary>
    public static torch.ScalarType? FromSafeTensors(string name)
    {
        foreach (var t in Table) if (t.SafeTensors == name) return t.Type;
        return null;
    }

    /// <summary>Safetensors dtype name of a scalar type; throws <see cref="GlmException"/> for types the format cannot hold here.</summary>
    public static string ToSafeTensors(torch.ScalarType type)
    {
        foreach (var t in Table) if (t.Type == type) return t.SafeTensors;
        throw new GlmException($"dtype {type} cannot be saved: expected one of {SupportedSafeTensorsNames}.");
    }

    /// <summary>Scalar type for a PyTorch storage class name such as <c>HalfStorage</c>, or null if unsupported.</summary>
    public static torch.ScalarType? FromStorageClass(string className)
    {
        foreach (var t in Table) if (t.Storage == className) return t.Type;
        return null;
    }

    /// <summary>PyTorch storage class name (e.g. <c>BFloat16Storage</c>) of a scalar type.</summary>
    public static string ToStorageClass(torch.ScalarType type)
    {
        foreach (var t in Table) if (t.Type == type) return t.Storage;
        throw new GlmException($"dtype {type} cannot be saved in a PyTorch checkpoint: expected one of {SupportedSafeTensorsNames}.");
    }

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(torch.ScalarType type)
    {
        foreach (var t in Table) if (t.Type == type) return t.Size;
        throw new GlmException($"dtype {type} is not supported by the checkpoint readers: expected one of {SupportedSafeTensorsNames}.");
    }
}
