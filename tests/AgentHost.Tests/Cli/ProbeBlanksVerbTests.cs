namespace AgentHost.Tests.Cli;

public class ProbeBlanksVerbTests
{
    [Fact]
    public async Task ATinyProbeReportsTheFirstTokenLossAndLeavesNoFolderBehind()
    {
        var before = Directory.GetDirectories(Path.GetTempPath(), "glm-probe-blanks-*").Length;
        var r = await CliTestModel.Run("probe-blanks", "--steps", "2", "--seq-len", "32", "--layers", "1", "--hidden", "64", "--heads", "2",
            "--batch", "2", "--eval-every", "2", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("chance 6.91 nats, optimum ≈ 0.43", r.Out);
        Assert.Matches(@"eval step 2: loss \d+\.\d+  first Part-B token \d+\.\d+", r.Out);
        Assert.Contains("finished after 2 steps: first Part-B token", r.Out);
        Assert.Contains("LocalAttention initialisation", r.Err);
        Assert.Equal(before, Directory.GetDirectories(Path.GetTempPath(), "glm-probe-blanks-*").Length);
    }
}
