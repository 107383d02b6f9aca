namespace AgentHost.Tests.Cli;

public class FillVerbTests
{
    [Fact]
    public async Task TheBundledModelFillsEachBlankAndKeepsTheText()
    {
        var r = await CliTestModel.Run(["fill", "--text", "孔乙己是站着喝酒而穿[MASK]的唯一的人。", "--max-tokens", "2"]);
        Assert.True(r.Code == 0, r.Err);
        string filled = r.Out.Trim();
        Assert.StartsWith("孔乙己是站着喝酒而穿", filled);
        Assert.EndsWith("的唯一的人。", filled);
        Assert.DoesNotContain("MASK", filled);
        Assert.True(filled.Length > "孔乙己是站着喝酒而穿的唯一的人。".Length, $"nothing was filled in: {filled}");

        var native = await CliTestModel.Run(["fill", "--text", "我家门前有两棵树，[MASK]", "--method", "native", "--max-tokens", "4"]);
        Assert.True(native.Code == 0, native.Err);
        Assert.StartsWith("我家门前有两棵树，", native.Out.Trim());
    }

    [Theory]
    [InlineData("没有空白的句子。", "search", "none of [MASK]")]
    [InlineData("有[MASK]的句子。", "beam", "--method 'beam': expected search or native")]
    public async Task BadInputIsNamed(string text, string method, string expected)
    {
        var r = await CliTestModel.Run(["fill", "--text", text, "--method", method]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains(expected, r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }
}
