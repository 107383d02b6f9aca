using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Glm.Engine.Runtime;
using static TorchSharp.torch;

namespace Glm.Engine.Checkpoints;

/// <summary>
/// Writes a state dict in the zip format of <c>torch.save</c> (protocol 2 pickle of an OrderedDict of
/// <c>_rebuild_tensor_v2</c> calls; entries <c>archive/data.pkl</c>, <c>archive/byteorder</c>, <c>archive/data/N</c>,
/// <c>archive/version</c>), loadable by <c>torch.load</c> and by <see cref="PyTorchBinFile"/>.
/// </summary>
public static class PyTorchBinWriter
{
    /// <summary>Writes the tensors (CPU copies, contiguous, one storage each) to <paramref name="path"/> atomically.</summary>
    /// <exception cref="GlmException">Duplicate or empty name, or an unsupported dtype.</exception>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        TorchRuntime.EnsureInitialized();
        path = Path.GetFullPath(path);
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (string.IsNullOrEmpty(name) || !seen.Add(name)) throw new GlmException($"{path}: tensor name '{name}' is empty or given twice.");
            DTypes.ToStorageClass(t.dtype);
        }
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            WriteEntry(zip, "archive/data.pkl", s => s.Write(BuildPickle(list)));
            WriteEntry(zip, "archive/byteorder", s => s.Write(Encoding.ASCII.GetBytes("little")));
            for (int i = 0; i < list.Count; i++)
            {
                var t = list[i].Value;
                WriteEntry(zip, $"archive/data/{i}", s =>
                {
                    var data = TensorBytes.AsCpuContiguous(t);
                    try { TensorBytes.WriteFrom(data, s); }
                    finally { if (!ReferenceEquals(data, t)) data.Dispose(); }
                });
            }
            WriteEntry(zip, "archive/version", s => s.Write(Encoding.ASCII.GetBytes("3\n")));
        });
    }

    private static void WriteEntry(ZipArchive zip, string name, Action<Stream> write)
    {
        // Stored (uncompressed) like torch.save, so storages can be read (or mapped) without inflating.
        var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
        using var s = entry.Open();
        write(s);
    }

    private static byte[] BuildPickle(List<KeyValuePair<string, Tensor>> list)
    {
        var p = new PickleBuilder();
        p.Op(0x80).Byte(2);                              // PROTO 2
        p.Global("collections", "OrderedDict").Op(')').Op('R'); // OrderedDict()
        p.Op('(');                                       // MARK for SETITEMS
        for (int i = 0; i < list.Count; i++)
        {
            var (name, t) = list[i];
            long[] shape = t.shape;
            p.Unicode(name);
            p.Global("torch._utils", "_rebuild_tensor_v2");
            p.Op('(');                                   // args tuple
            p.Op('(').Unicode("storage").Global("torch", DTypes.ToStorageClass(t.dtype)).Unicode(i.ToString())
             .Unicode("cpu").Int(t.NumberOfElements).Op('t').Op('Q'); // persistent id -> storage
            p.Int(0);                                    // storage offset
            p.IntTuple(shape);
            p.IntTuple(ContiguousStrides(shape));
            p.Op(0x89);                                  // requires_grad False
            p.Global("collections", "OrderedDict").Op(')').Op('R'); // backward hooks
            p.Op('t').Op('R');
        }
        p.Op('u').Op('.');                               // SETITEMS, STOP
        return p.ToArray();
    }

    private static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { strides[i] = s; s *= Math.Max(shape[i], 1); }
        return strides;
    }

    /// <summary>Emits protocol 2 pickle opcodes.</summary>
    private sealed class PickleBuilder
    {
        private readonly MemoryStream _ms = new();

        public PickleBuilder Op(char op) => Byte((byte)op);
        public PickleBuilder Op(byte op) => Byte(op);
        public PickleBuilder Byte(byte b) { _ms.WriteByte(b); return this; }

        public PickleBuilder Global(string module, string name)
        {
            Op('c');
            _ms.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
            return this;
        }

        public PickleBuilder Unicode(string s)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(s);
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)bytes.Length);
            Op('X'); _ms.Write(len); _ms.Write(bytes);
            return this;
        }

        public PickleBuilder Int(long v)
        {
            if (v >= int.MinValue && v <= int.MaxValue)
            {
                Span<byte> b4 = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(b4, (int)v);
                Op('J'); _ms.Write(b4);
            }
            else
            {
                Span<byte> b8 = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(b8, v);
                Op(0x8a).Byte(8); _ms.Write(b8);         // LONG1, 8 bytes two's complement
            }
            return this;
        }

        public PickleBuilder IntTuple(long[] values)
        {
            if (values.Length == 0) return Op(')');
            Op('(');
            foreach (long v in values) Int(v);
            return Op('t');
        }

        public byte[] ToArray() => _ms.ToArray();
    }
}
