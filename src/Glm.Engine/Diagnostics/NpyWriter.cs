using System.Text;

namespace Glm.Engine.Diagnostics;

/// <summary>Writes NumPy .npy files (format 1.0, little-endian float32, C order) so logits can be compared in any tool.</summary>
public static class NpyWriter
{
    /// <summary>Writes a 2-D float32 array.</summary>
    public static void Write(string path, float[,] values)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        // Magic (6) + version (2) + header length (2) + header, padded with spaces and ending in \n to a multiple of 64.
        int unpadded = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - unpadded % 64) % 64) + "\n";
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new BinaryWriter(f);
        w.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
        w.Write((ushort)header.Length);
        w.Write(Encoding.ASCII.GetBytes(header));
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        w.Write(bytes);
    }
}
