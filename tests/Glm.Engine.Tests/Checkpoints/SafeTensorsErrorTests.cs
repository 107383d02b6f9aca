using Glm.Engine.Checkpoints;

namespace Glm.Engine.Tests.Checkpoints;

public class SafeTensorsErrorTests
{
    private static readonly byte[] TwelveBytes = new byte[12];

    private static GlmException OpenFails(CheckpointTempDir dir, string header, byte[] data, ulong? headerLength = null)
    {
        string path = dir.WriteRawSafeTensors("bad.safetensors", header, data, headerLength);
        var ex = Assert.Throws<GlmException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, ex.Message);
        return ex;
    }

    [Theory]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]", "not valid JSON")]
    [InlineData("[1,2]", "must be a JSON object, found Array")]
    [InlineData("{\"w\":{\"dtype\":\"Q4\",\"shape\":[3],\"data_offsets\":[0,12]}}", "tensor 'w': dtype 'Q4' is not supported, expected one of F64, F32")]
    [InlineData("{\"w\":{\"shape\":[3],\"data_offsets\":[0,12]}}", "tensor 'w': missing string field 'dtype'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3,-1],\"data_offsets\":[0,12]}}", "shape must hold non-negative integers, found -1")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0]}}", "data_offsets must have 2 entries, found 1")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,4]}}", "data_offsets [8,4] has begin after end")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", "data_offsets end 16 is beyond the data section of 12 bytes")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", "span 12 bytes, expected 8 for F32 [2]")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        "tensor 'b' data_offsets [4,12] overlap tensor 'a' [0,8]")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
        "tensor 'w' appears twice")]
    [InlineData("{\"__metadata__\":{\"format\":1}}", "__metadata__.format must be a string, found Number")]
    public void MalformedHeaderIsRejectedWithFileTensorAndValues(string header, string expected)
    {
        using var dir = new CheckpointTempDir();
        Assert.Contains(expected, OpenFails(dir, header, TwelveBytes).Message);
    }

    [Fact]
    public void HeaderLengthBeyondFileAndTinyFileAreRejected()
    {
        using var dir = new CheckpointTempDir();
        var ex = OpenFails(dir, "{}", TwelveBytes, headerLength: 1000);
        Assert.Contains("header length 1000 runs beyond the file (22 bytes, at most 14 available)", ex.Message);

        string tiny = dir.File("tiny.safetensors");
        File.WriteAllBytes(tiny, new byte[] { 1, 2, 3 });
        Assert.Contains("file is 3 bytes, expected at least 8", Assert.Throws<GlmException>(() => SafeTensorsFile.Open(tiny)).Message);
        Assert.Contains("not found", Assert.Throws<GlmException>(() => SafeTensorsFile.Open(dir.File("absent.safetensors"))).Message);
    }

    [Fact]
    public void TruncatedFileIsRejectedAtOpen()
    {
        using var dir = new CheckpointTempDir();
        string path = dir.File("t.safetensors");
        using (var t = TorchSharp.torch.ones(16))
            SafeTensorsWriter.Save(path, new Dictionary<string, TorchSharp.torch.Tensor> { ["w"] = t });
        byte[] all = File.ReadAllBytes(path);
        File.WriteAllBytes(path, all[..^10]);
        var ex = Assert.Throws<GlmException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("tensor 'w': data_offsets end 64 is beyond the data section of 54 bytes (file truncated", ex.Message);
    }

    [Fact]
    public void WriterRejectsDuplicateNamesAndReservedName()
    {
        using var dir = new CheckpointTempDir();
        using var t = TorchSharp.torch.ones(2);
        var dup = new[] { new KeyValuePair<string, TorchSharp.torch.Tensor>("a", t), new("a", t) };
        Assert.Contains("'a' given twice", Assert.Throws<GlmException>(() => SafeTensorsWriter.Save(dir.File("d.safetensors"), dup)).Message);
        var reserved = new[] { new KeyValuePair<string, TorchSharp.torch.Tensor>("__metadata__", t) };
        Assert.Contains("not allowed", Assert.Throws<GlmException>(() => SafeTensorsWriter.Save(dir.File("r.safetensors"), reserved)).Message);
        Assert.False(File.Exists(dir.File("d.safetensors")));
    }
}
