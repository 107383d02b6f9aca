using System.IO.Compression;
using System.Text;
using Glm.Engine.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Checkpoints;

public class PyTorchBinTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Checkpoints", "Fixtures", name);

    [Fact]
    public void ReadsTorch113StateDictWithViewsStridesAndDtypes()
    {
        using var scope = torch.NewDisposeScope();
        using var file = PyTorchBinFile.Open(Fixture("torch113_state_dict.bin"));
        Assert.Equal(new[] { "weight", "bias", "shared.base", "shared.slice", "transposed", "half", "bf16", "long", "flags", "scalar" }, file.Names);

        var f32 = torch.arange(12, dtype: ScalarType.Float32);
        TensorSamples.AssertSame((f32 * 0.25f).reshape(3, 4), file.Load("weight"));
        TensorSamples.AssertSame(torch.tensor(new[] { -1f, 0f, 1f }), file.Load("bias"));
        TensorSamples.AssertSame(torch.arange(10, dtype: ScalarType.Float32), file.Load("shared.base"));
        var slice = file.Load("shared.slice");
        TensorSamples.AssertSame(torch.arange(3, 7, dtype: ScalarType.Float32), slice);
        Assert.Equal(4, slice.storage<float>().Count); // owns only its elements, not the shared 10-element storage
        var transposed = file.Load("transposed");
        TensorSamples.AssertSame(torch.arange(6, dtype: ScalarType.Float32).reshape(2, 3).t().contiguous(), transposed);
        Assert.True(transposed.is_contiguous());
        TensorSamples.AssertSame(torch.arange(6, dtype: ScalarType.Float16) * 0.5, file.Load("half"));
        TensorSamples.AssertSame((torch.arange(8, dtype: ScalarType.Float32) - 4).to(ScalarType.BFloat16).reshape(2, 4), file.Load("bf16"));
        TensorSamples.AssertSame(torch.arange(5, dtype: ScalarType.Int64) * 1000000007L, file.Load("long"));
        TensorSamples.AssertSame(torch.tensor(new[] { true, false, true }), file.Load("flags"));
        var scalar = file.Load("scalar");
        Assert.Empty(scalar.shape);
        Assert.Equal(2.5, scalar.item<double>());
        Assert.Equal(new TensorInfo("bf16", ScalarType.BFloat16, new long[] { 2, 4 }, file.FilePath).ToString(), file.Describe("bf16").ToString());
    }

    [Fact]
    public void UnwrapsThudmModuleDictAndParameters()
    {
        using var scope = torch.NewDisposeScope();
        using var reader = CheckpointReader.Open(Fixture("torch113_thudm_module.bin"));
        Assert.Equal(CheckpointFormat.PyTorchBin, reader.Format);
        Assert.Equal(new[] { "word_embeddings.weight", "transformer.final_layernorm.weight" }, reader.Names);
        TensorSamples.AssertSame(torch.arange(12, dtype: ScalarType.Float16).reshape(4, 3), reader.Load("word_embeddings.weight"));
        var asFloat = reader.Load("word_embeddings.weight", ScalarType.Float32);
        TensorSamples.AssertSame(torch.arange(12, dtype: ScalarType.Float32).reshape(4, 3), asFloat);
    }

    [Fact]
    public void MaliciousOsSystemPickleIsRejectedNamingTheGlobal()
    {
        string marker = "/tmp/glm_pwned";
        if (File.Exists(marker)) File.Delete(marker);
        var ex = Assert.Throws<GlmException>(() => PyTorchBinFile.Open(Fixture("malicious_os_system.bin")));
        Assert.Contains("malicious_os_system.bin", ex.Message);
        Assert.Contains("'posix.system' is not allowed", ex.Message);
        Assert.False(File.Exists(marker));
    }

    private static string ZipWithPickle(CheckpointTempDir dir, string name, byte[] pickle, string? byteOrder = null)
    {
        string path = dir.File(name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("archive/data.pkl").Open()) s.Write(pickle);
        if (byteOrder is not null) using (var s = zip.CreateEntry("archive/byteorder").Open()) s.Write(Encoding.ASCII.GetBytes(byteOrder));
        return path;
    }

    private static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    [Theory]
    [InlineData("\u0080\u0002cbuiltins\neval\nX\u0004\u0000\u0000\u00001+1\u0085R.", "'builtins.eval' is not allowed")]
    [InlineData("\u0080\u0004\u008c\u0002os\u008c\u0006system\u0093X\u0002\u0000\u0000\u0000ls\u0085R.", "'os.system' is not allowed")]
    [InlineData("\u0080\u0002ctorch\nFloatStorage\n)R.", "REDUCE of 'torch.FloatStorage'")]
    [InlineData("\u0080\u0002ctorch.storage\n_load_from_bytes\n.", "'torch.storage._load_from_bytes' is not allowed")]
    [InlineData("\u0080\u0002(ios\nsystem\n.", "opcode 0x69 ('i')")]
    [InlineData("\u0080\u0002}X\u0001\u0000\u0000\u0000a", "pickle ends without a STOP")]
    [InlineData("\u0080\u0002]q\u0000.", "expected a dict of tensors")]
    public void HostileOrMalformedPicklesAreRejected(string pickle, string expected)
    {
        using var dir = new CheckpointTempDir();
        string path = ZipWithPickle(dir, "bad.bin", Bytes(pickle));
        var ex = Assert.Throws<GlmException>(() => PyTorchBinFile.Open(path));
        Assert.Contains(expected, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void BigEndianNotZipAndMissingStorageAreRejected()
    {
        using var dir = new CheckpointTempDir();
        var big = Assert.Throws<GlmException>(() => PyTorchBinFile.Open(ZipWithPickle(dir, "big.bin", Bytes("\u0080\u0002}."), "big")));
        Assert.Contains("byteorder is 'big'", big.Message);

        string legacy = dir.File("legacy.bin");
        File.WriteAllBytes(legacy, Bytes("\u0080\u0002\u008a\u000alegacy-torch-save"));
        Assert.Contains("not a zip archive", Assert.Throws<GlmException>(() => PyTorchBinFile.Open(legacy)).Message);

        // A valid pickle whose storage entry archive/data/0 is absent.
        using (var t = torch.ones(2))
            PyTorchBinWriter.Save(dir.File("ok.bin"), new Dictionary<string, Tensor> { ["w"] = t });
        string broken = dir.File("broken.bin");
        using (var src = ZipFile.OpenRead(dir.File("ok.bin")))
        using (var dst = ZipFile.Open(broken, ZipArchiveMode.Create))
            foreach (var e in src.Entries.Where(e => e.FullName != "archive/data/0"))
                using (var from = e.Open()) using (var to = dst.CreateEntry(e.FullName).Open()) from.CopyTo(to);
        var missing = Assert.Throws<GlmException>(() => PyTorchBinFile.Open(broken));
        Assert.Contains("tensor 'w': storage entry 'archive/data/0' is missing", missing.Message);
    }

    /// <summary>{'w': _rebuild_tensor_v2(FloatStorage(numel), 0, (size,), (1,), False, {})} with an 8-byte storage entry.</summary>
    private static byte[] OneTensorPickle(byte numel, byte size) => Bytes(
        "\u0080\u0002}X\u0001\u0000\u0000\u0000wctorch._utils\n_rebuild_tensor_v2\n(" +
        "(X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK" + (char)numel + "tQ" +
        "K\u0000(K" + (char)size + "t(K\u0001t\u0089}tRs.");

    [Theory]
    [InlineData(2, 2, null)]
    [InlineData(4, 2, "storage '0' has 8 bytes, expected 16 (4 × Float32)")]
    [InlineData(2, 5, "reaches element 4, beyond storage '0' of 2 elements")]
    public void StorageSizeAndViewBoundsAreChecked(byte numel, byte size, string? expected)
    {
        using var dir = new CheckpointTempDir();
        string path = ZipWithPickle(dir, "v.bin", OneTensorPickle(numel, size));
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
        using (var s = zip.CreateEntry("archive/data/0").Open())
            s.Write(BitConverter.GetBytes(1.5f).Concat(BitConverter.GetBytes(-2f)).ToArray());
        if (expected is null)
        {
            using var file = PyTorchBinFile.Open(path);
            using var w = file.Load("w");
            Assert.Equal(new[] { 1.5f, -2f }, w.data<float>().ToArray());
            return;
        }
        var ex = Assert.Throws<GlmException>(() => PyTorchBinFile.Open(path));
        Assert.Contains($"{path}: tensor 'w'", ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void WriterRoundTripsAllDtypesAndNonContiguousInputs()
    {
        using var dir = new CheckpointTempDir();
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["a.f32"] = TensorSamples.Make(ScalarType.Float32, new long[] { 3, 4 }, 1).t(), // non-contiguous input
            ["b.f16"] = TensorSamples.Make(ScalarType.Float16, new long[] { 5 }, 2),
            ["c.bf16"] = TensorSamples.Make(ScalarType.BFloat16, new long[] { 2, 2, 2 }, 3),
            ["d.i64"] = TensorSamples.Make(ScalarType.Int64, new long[] { 4 }, 4),
            ["e.i32"] = TensorSamples.Make(ScalarType.Int32, new long[] { 2 }, 5),
            ["f.i8"] = TensorSamples.Make(ScalarType.Int8, new long[] { 3 }, 6),
            ["g.u8"] = TensorSamples.Make(ScalarType.Byte, new long[] { 3 }, 7),
            ["h.bool"] = TensorSamples.Make(ScalarType.Bool, new long[] { 4 }, 8),
            ["i.f64"] = torch.tensor(3.75),
            ["j.empty"] = torch.empty(0, 3),
        };
        string path = dir.File("pytorch_model.bin");
        PyTorchBinWriter.Save(path, tensors);
        using var reader = CheckpointReader.Open(dir.Path);
        Assert.Equal(CheckpointFormat.PyTorchBin, reader.Format);
        Assert.Equal(tensors.Keys, reader.Names);
        foreach (var (name, expected) in tensors) TensorSamples.AssertSame(expected, reader.Load(name));
    }
}
