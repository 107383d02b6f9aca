using System.Text;
using Glm.Engine.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Checkpoints;

public class SafeTensorsRoundTripTests
{
    private static readonly (string Name, ScalarType Type, long[] Shape)[] AllDTypes =
    {
        ("f32", ScalarType.Float32, new long[] { 3, 5 }),
        ("f16", ScalarType.Float16, new long[] { 7 }),
        ("bf16", ScalarType.BFloat16, new long[] { 2, 3, 3 }),
        ("f64", ScalarType.Float64, new long[] { 3 }),
        ("i64", ScalarType.Int64, new long[] { 4, 1 }),
        ("i32", ScalarType.Int32, new long[] { 5 }),
        ("i8", ScalarType.Int8, new long[] { 9 }),
        ("u8", ScalarType.Byte, new long[] { 3, 3 }),
        ("flag", ScalarType.Bool, new long[] { 5 }),
        ("scalar", ScalarType.Float32, Array.Empty<long>()),
        ("empty", ScalarType.BFloat16, new long[] { 0, 4 }),
    };

    private static Dictionary<string, Tensor> Samples() =>
        AllDTypes.Select((d, i) => (d.Name, T: TensorSamples.Make(d.Type, d.Shape, i)))
            .ToDictionary(x => x.Name, x => x.T);

    [Theory]
    [InlineData(SafeTensorsLoadMode.MemoryMap)]
    [InlineData(SafeTensorsLoadMode.Stream)]
    public void SaveThenLoadKeepsDtypeShapeValuesAndMetadata(SafeTensorsLoadMode mode)
    {
        using var dir = new CheckpointTempDir();
        using var scope = torch.NewDisposeScope();
        var tensors = Samples();
        string path = dir.File("model.safetensors");
        SafeTensorsWriter.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        using var file = SafeTensorsFile.Open(path, mode);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(tensors.Keys.OrderBy(k => k), file.Names.OrderBy(k => k));
        Assert.Equal(0, (file.DataStart - 8) % 8);
        foreach (var (name, expected) in tensors)
        {
            var info = file.Describe(name);
            Assert.Equal(expected.dtype, info.DType);
            Assert.Equal(expected.shape, info.Shape);
            using var loaded = file.Load(name);
            TensorSamples.AssertSame(expected, loaded);
        }
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void MappedTensorOutlivesTheFileObjectAndNeverWritesBack()
    {
        using var dir = new CheckpointTempDir();
        using var expected = TensorSamples.Make(ScalarType.BFloat16, new long[] { 4, 4 }, 3);
        string path = dir.File("m.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, Tensor> { ["w"] = expected });
        byte[] before = File.ReadAllBytes(path);
        Tensor loaded;
        using (var file = SafeTensorsFile.Open(path)) loaded = file.Load("w");
        using (loaded)
        {
            TensorSamples.AssertSame(expected, loaded);
            loaded.add_(1); // private mapping: copy-on-write, the file must not change
        }
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void MisalignedTensorFallsBackToStreamAndOddFileLengthMaps()
    {
        using var dir = new CheckpointTempDir();
        // Header of 5 bytes of JSON padding + unpadded => data starts at an odd offset; the f32 tensor is misaligned.
        float[] values = { 1.5f, -2f, 3.25f };
        var data = new List<byte>();
        foreach (var v in values) data.AddRange(BitConverter.GetBytes(v));
        data.Add(7); // a trailing u8 tensor makes the file length odd
        string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[12,13]}}";
        for (int pad = 0; pad < 4; pad++)
        {
            string path = dir.WriteRawSafeTensors($"odd{pad}.safetensors", header + new string(' ', pad), data.ToArray());
            using var file = SafeTensorsFile.Open(path, SafeTensorsLoadMode.MemoryMap);
            using var a = file.Load("a");
            using var b = file.Load("b");
            Assert.Equal(values, a.data<float>().ToArray());
            Assert.Equal((byte)7, b.item<byte>());
        }
    }

    [Fact]
    public void ShardedSaveWritesIndexAndSplitsBySize()
    {
        using var dir = new CheckpointTempDir();
        using var scope = torch.NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        for (int i = 0; i < 5; i++)
            tensors.Add(new($"layers.{i}.weight", TensorSamples.Make(ScalarType.Float32, new long[] { 10, 10 }, i))); // 400 B each
        var shards = SafeTensorsWriter.SaveSharded(dir.Path, tensors, maxShardBytes: 900);

        Assert.Equal(new[] { "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors" },
            shards.Select(Path.GetFileName));
        var index = System.Text.Json.JsonDocument.Parse(File.ReadAllText(dir.File("model.safetensors.index.json")));
        Assert.Equal(2000, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        Assert.Equal("model-00003-of-00003.safetensors",
            index.RootElement.GetProperty("weight_map").GetProperty("layers.4.weight").GetString());

        using var reader = CheckpointReader.Open(dir.Path);
        Assert.Equal(5, reader.Names.Count);
        foreach (var (name, expected) in tensors)
        {
            using var loaded = reader.Load(name);
            TensorSamples.AssertSame(expected, loaded);
        }
    }
}
