using AgentHost.Cli;
using Glm.Engine;
using Glm.Engine.Checkpoints;
using Glm.Engine.Modeling;
using static TorchSharp.torch;

namespace AgentHost.Tests.Cli;

public class ConvertVerbTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glmsk-convert-" + Guid.NewGuid().ToString("N"));

    public ConvertVerbTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliTestModel.Run(args);

    private string Fp32Model()
    {
        string folder = Path.Combine(_dir, "fp32");
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 3 });
        model.Save(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{}");
        return folder;
    }

    [Fact]
    public async Task Bf16CopyHoldsTheFp32WeightsRoundedToBf16AndTheTokenizerFiles()
    {
        string source = Fp32Model(), target = Path.Combine(_dir, "bf16");
        var r = await Run("convert", "--model", source, "--dtype", "bf16", "--out", target);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("bfloat16", r.Out);
        Assert.Equal("bfloat16", GlmConfig.Load(target).TorchDtype);
        Assert.True(File.Exists(Path.Combine(target, "tokenizer_config.json")));
        long before = new FileInfo(Path.Combine(source, "model.safetensors")).Length, after = new FileInfo(Path.Combine(target, "model.safetensors")).Length;
        Assert.InRange(after, before / 2 - 4096, before / 2 + 4096);

        using var scope = NewDisposeScope();
        using var a = CheckpointReader.Open(source);
        using var b = CheckpointReader.Open(target);
        Assert.Equal(a.Names.Order(), b.Names.Order());
        foreach (var name in a.Names)
        {
            Assert.Equal(ScalarType.BFloat16, b.Describe(name).DType);
            Assert.True(a.Load(name).to(ScalarType.BFloat16).eq(b.Load(name)).all().item<bool>(), name);
        }
    }

    [Theory]
    [InlineData(null, "needs --dtype fp32, bf16 or fp16")]
    [InlineData("same", "is the source folder")]
    public async Task MistakesAreReportedWithoutAStackTrace(string? outKind, string expected)
    {
        string source = Fp32Model();
        var args = new List<string> { "convert", "--model", source, "--out", outKind == "same" ? source : Path.Combine(_dir, "x") };
        if (outKind == "same") args.AddRange(new[] { "--dtype", "bf16" });
        var r = await Run(args.ToArray());
        Assert.NotEqual(0, r.Code);
        Assert.Contains(expected, r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }
}
