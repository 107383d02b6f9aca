namespace Glm.Engine.Tests.Tokenization;

public class SharedDataTests
{
    [Fact]
    public void MissingSharedFileMakesTheFactSkipWithThePath()
    {
        var fact = new SharedDataFactAttribute("data/no-such-file.bin");
        Assert.NotNull(fact.Skip);
        Assert.Contains(SharedData.PathOf("data/no-such-file.bin"), fact.Skip);
        Assert.EndsWith(Path.Combine("shared", "data", "no-such-file.bin"), SharedData.PathOf("data/no-such-file.bin"));
    }
}
