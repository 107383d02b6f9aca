using Glm.Engine.Training.Data;

namespace Glm.Engine.Tests.Training;

public class SequenceLengthWarmupTests
{
    private const int Cls = 5;

    [Fact]
    public void ChunkLengthGrowsGeometricallyFromTheStartToTheFullLength()
    {
        var warmup = new SequenceLengthWarmup(steps: 400, startLength: 32);
        Assert.Equal(32, warmup.ChunkLength(0, 512));
        Assert.Equal(64, warmup.ChunkLength(100, 512));   // one doubling per quarter of the warm-up
        Assert.Equal(128, warmup.ChunkLength(200, 512));
        Assert.Equal(512, warmup.ChunkLength(400, 512));
        Assert.Equal(512, warmup.ChunkLength(10_000, 512));
        var lengths = Enumerable.Range(0, 401).Select(s => warmup.ChunkLength(s, 512)).ToList();
        Assert.Equal(lengths.Order(), lengths);
        Assert.Equal(20, warmup.ChunkLength(0, 20));                              // samples already shorter than the start
        Assert.Equal(512, new SequenceLengthWarmup(0, 32).ChunkLength(0, 512));   // off
    }

    [Theory]
    [InlineData(24, 8)]
    [InlineData(23, 8)]   // 22 text tokens = 7 + 7 + 7 + 1: the one-token remainder joins the last chunk
    [InlineData(26, 8)]
    [InlineData(9, 8)]
    [InlineData(8, 8)]    // not longer than a chunk: unchanged
    [InlineData(512, 32)]
    public void SplitKeepsEveryTokenInOrderInClsPrefixedChunks(int sampleLength, int chunkLength)
    {
        var sample = new[] { Cls }.Concat(Enumerable.Range(100, sampleLength - 1)).ToArray();
        var other = new[] { Cls, 7, 8 };
        var chunks = SequenceLengthWarmup.Split([sample, other], chunkLength, Cls);

        Assert.Same(other, chunks[^1]);
        var pieces = chunks.Take(chunks.Count - 1).ToList();
        Assert.All(pieces, c => Assert.Equal(Cls, c[0]));
        Assert.All(pieces, c => Assert.InRange(c.Length, 3, chunkLength + 1));
        Assert.Equal(sample.Skip(1), pieces.SelectMany(c => c.Skip(1)));
        int text = sampleLength - 1, perChunk = chunkLength - 1;
        int expected = sampleLength <= chunkLength ? 1 : text / perChunk + (text % perChunk >= 2 ? 1 : 0);
        Assert.Equal(expected, pieces.Count);
    }

    [Fact]
    public void InvalidSettingsNameTheValue()
    {
        var ex = Assert.Throws<GlmException>(() => new SequenceLengthWarmup(-1, 32));
        Assert.Contains("-1", ex.Message);
        ex = Assert.Throws<GlmException>(() => new SequenceLengthWarmup(10, 2));
        Assert.Contains("start length = 2", ex.Message);
    }
}
