namespace AgentHost.Tests.Cli;

public class EvalPretrainVerbTests
{
    [Theory]
    [InlineData("500", "64", "exceed the model's 513 positions")]
    [InlineData("8", "64", "expected at least 16 context and 8 target tokens")]
    public async Task AWindowTheModelCannotHoldIsRefusedBeforeAnyWork(string context, string target, string expected)
    {
        string corpus = Path.Combine(Path.GetTempPath(), "glmsk-no-corpus-" + Guid.NewGuid().ToString("N")); // never read
        var r = await CliTestModel.Run(["eval-pretrain", "--model", Path.Combine(CliTestModel.RepoRoot, "models", "glm-zh-small"),
            "--corpus", corpus, "--context", context, "--target", target]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains(expected, r.Err);
        Assert.Contains($"--context {context}", r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }
}
