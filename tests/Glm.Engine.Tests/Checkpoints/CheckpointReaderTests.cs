using Glm.Engine.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Checkpoints;

public class CheckpointReaderTests
{
    private static List<KeyValuePair<string, Tensor>> ThreeTensors() => new()
    {
        new("transformer.embedding.word_embeddings.weight", TensorSamples.Make(ScalarType.BFloat16, new long[] { 6, 4 }, 1)),
        new("transformer.encoder.layers.0.input_layernorm.weight", TensorSamples.Make(ScalarType.BFloat16, new long[] { 4 }, 2)),
        new("transformer.output_layer.weight", TensorSamples.Make(ScalarType.BFloat16, new long[] { 6, 4 }, 3)),
    };

    [Fact]
    public void SingleSafeTensorsDescribeRequireShapeAndConvert()
    {
        using var dir = new CheckpointTempDir();
        using var scope = torch.NewDisposeScope();
        var tensors = ThreeTensors();
        SafeTensorsWriter.Save(dir.File("model.safetensors"), tensors);
        using var reader = CheckpointReader.Open(dir.Path);
        Assert.Equal(CheckpointFormat.SafeTensors, reader.Format);
        Assert.True(reader.Contains("transformer.output_layer.weight"));
        Assert.False(reader.Contains("lm_head.weight"));
        var info = reader.RequireShape("transformer.output_layer.weight", new long[] { 6, 4 });
        Assert.Equal(ScalarType.BFloat16, info.DType);
        Assert.Equal(dir.File("model.safetensors"), info.File);

        var ex = Assert.Throws<GlmException>(() => reader.RequireShape("transformer.output_layer.weight", new long[] { 4, 6 }));
        Assert.Equal($"tensor transformer.output_layer.weight: expected shape [4,6], found [6,4] in file {dir.File("model.safetensors")}", ex.Message);
        Assert.Contains("no tensor named 'lm_head.weight'", Assert.Throws<GlmException>(() => reader.Describe("lm_head.weight")).Message);

        var f32 = reader.Load("transformer.encoder.layers.0.input_layernorm.weight", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, f32.dtype);
        TensorSamples.AssertSame(tensors[1].Value.to(ScalarType.Float32), f32);
    }

    [Fact]
    public void ShardedPyTorchBinWithIndexLoads()
    {
        using var dir = new CheckpointTempDir();
        using var scope = torch.NewDisposeScope();
        var tensors = ThreeTensors();
        PyTorchBinWriter.Save(dir.File("pytorch_model-00001-of-00002.bin"), tensors.Take(2));
        PyTorchBinWriter.Save(dir.File("pytorch_model-00002-of-00002.bin"), tensors.Skip(2));
        File.WriteAllText(dir.File("pytorch_model.bin.index.json"), """
            {"metadata": {"total_size": 112}, "weight_map": {
              "transformer.embedding.word_embeddings.weight": "pytorch_model-00001-of-00002.bin",
              "transformer.encoder.layers.0.input_layernorm.weight": "pytorch_model-00001-of-00002.bin",
              "transformer.output_layer.weight": "pytorch_model-00002-of-00002.bin"}}
            """);
        using var reader = CheckpointReader.Open(dir.Path);
        Assert.Equal(CheckpointFormat.ShardedPyTorchBin, reader.Format);
        Assert.Equal(2, reader.Files.Count);
        Assert.Equal(dir.File("pytorch_model-00002-of-00002.bin"), reader.Describe("transformer.output_layer.weight").File);
        foreach (var (name, expected) in tensors) TensorSamples.AssertSame(expected, reader.Load(name));
    }

    [Fact]
    public void IndexProblemsAreReportedWithTheIndexFile()
    {
        using var dir = new CheckpointTempDir();
        using var scope = torch.NewDisposeScope();
        SafeTensorsWriter.SaveSharded(dir.Path, ThreeTensors(), maxShardBytes: 50); // 48 B, 8 B, 48 B -> three shards
        string index = dir.File(SafeTensorsWriter.IndexFileName);
        string good = File.ReadAllText(index);

        File.WriteAllText(index, good.Replace("\"transformer.output_layer.weight\"", "\"lm_head.weight\""));
        var notInShard = Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.Path));
        Assert.Contains($"{index}: weight_map puts tensor 'lm_head.weight' in shard 'model-00003-of-00003.safetensors', but", notInShard.Message);
        Assert.Contains("has no such tensor", notInShard.Message);

        File.WriteAllText(index, good);
        File.Delete(dir.File("model-00002-of-00003.safetensors"));
        var missing = Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.Path));
        Assert.Contains("in shard 'model-00002-of-00003.safetensors', but", missing.Message);
        Assert.Contains("does not exist", missing.Message);

        File.WriteAllText(index, good[..^5]);
        Assert.Contains($"{index}: index is not valid JSON", Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.Path)).Message);

        File.WriteAllText(index, "{\"metadata\":{}}");
        Assert.Contains("no \"weight_map\" object", Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.Path)).Message);

        File.WriteAllText(index, "{\"weight_map\":{\"w\":\"../../etc/passwd\"}}");
        Assert.Contains("is not a file name in the index's folder", Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.Path)).Message);
    }

    [Fact]
    public void FolderWithoutCheckpointListsWhatWasExpected()
    {
        using var dir = new CheckpointTempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        var ex = Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.Path));
        Assert.Contains("no checkpoint found; expected model.safetensors", ex.Message);
        Assert.Contains("found: config.json", ex.Message);
        Assert.Contains("not found", Assert.Throws<GlmException>(() => CheckpointReader.Open(dir.File("nope"))).Message);
    }
}
