namespace AgentHost.Tests.Cli;

public class PretrainVerbTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glmsk-pretrain-" + Guid.NewGuid().ToString("N"));

    public PretrainVerbTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A one-file corpus (the bundled sample documents) and a tiny model shape, with the bundled model's tokenizer.</summary>
    private string[] TinyRun(string init)
    {
        string corpus = Path.Combine(_dir, "corpus");
        Directory.CreateDirectory(corpus);
        var docs = Directory.GetFiles(Path.Combine(CliTestModel.RepoRoot, "samples", "docs"), "*.md").Order().Select(File.ReadAllText);
        File.WriteAllText(Path.Combine(corpus, "docs.txt"), string.Join("\n", docs));
        return ["pretrain", "--corpus", corpus, "--tokenizer", Path.Combine(CliTestModel.RepoRoot, "models", "glm-zh-small"),
            "--out", Path.Combine(_dir, "run"), "--layers", "1", "--hidden", "64", "--heads", "1", "--seq-len", "64", "--batch", "2",
            "--steps", "2", "--eval-every", "2", "--eval-samples", "2", "--threads", "1", "--checkpoint-every", "0", "--init", init];
    }

    [Fact]
    public async Task LocalAttentionInitialisationRunsEndToEnd()
    {
        var r = await CliTestModel.Run(TinyRun("local-attention"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("LocalAttention initialisation (gain 2)", r.Err);
        Assert.Contains("eval step 2:", r.Out);
        Assert.True(File.Exists(Path.Combine(_dir, "run", "model", "model.safetensors")));
    }

    [Fact]
    public async Task ARunContinuesFromATrainedModelWithALocalAttentionGraft()
    {
        var first = await CliTestModel.Run(TinyRun("megatron"));
        Assert.True(first.Code == 0, first.Err);
        string from = Path.Combine(_dir, "run", "model");
        var args = TinyRun("local-attention").Select(a => a == Path.Combine(_dir, "run") ? Path.Combine(_dir, "continued") : a).Concat(["--from", from]).ToArray();
        var r = await CliTestModel.Run(args);
        Assert.True(r.Code == 0, r.Err);
        Assert.True(r.Err.Contains($"fresh start from the weights of {from}"), r.Err);
        Assert.Contains("local-attention graft: 32 positional dims", r.Err);
        Assert.Contains("on every head of the first 1 layer(s)", r.Err);
        Assert.Contains("eval step 0:", r.Out); // the starting point of the continued run
        Assert.Contains("eval step 2:", r.Out);

        // The one-head tiny model cannot give up two heads to neighbour copying: said before any training.
        var neighbours = await CliTestModel.Run(args.Select(a => a == Path.Combine(_dir, "continued") ? Path.Combine(_dir, "neighbours") : a)
            .Concat(["--graft-neighbour-heads"]).ToArray());
        Assert.NotEqual(0, neighbours.Code);
        Assert.Contains("needs 3 or more heads", neighbours.Err);
        Assert.DoesNotContain("   at ", neighbours.Err);
    }

    [Fact]
    public async Task AFromFolderWithoutAModelIsNamed()
    {
        string empty = Path.Combine(_dir, "empty");
        Directory.CreateDirectory(empty);
        var r = await CliTestModel.Run(TinyRun("megatron").Concat(["--from", empty]).ToArray());
        Assert.NotEqual(0, r.Code);
        Assert.Contains($"--from {empty}: no config.json", r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }

    [Fact]
    public async Task AnUnknownInitialisationIsRejectedBeforeTraining()
    {
        var r = await CliTestModel.Run(TinyRun("xavier"));
        Assert.NotEqual(0, r.Code);
        Assert.Contains("xavier", r.Err);
        Assert.Contains("local-attention", r.Err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "run")));
    }
}
