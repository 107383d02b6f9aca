using AgentHost.Cli;
using AgentHost.Tests.Cli;
using Glm.Engine;

namespace AgentHost.Tests.FineTuning;

public sealed class FineTuneVerbTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftverb").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliTestModel.Run(args);

    [SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task FinetuneEvalAndMergeAChatModelWithLora()
    {
        string model = CliTestModel.ChatGlm3Folder(Path.Combine(_dir, "base"));
        string data = Path.Combine(_dir, "chat.jsonl");
        File.WriteAllLines(data,
        [
            """{"messages":[{"role":"user","content":"你好"},{"role":"assistant","content":"你好，有什么可以帮你？"}]}""",
            """{"messages":[{"role":"system","content":"简短回答"},{"role":"user","content":"一加一"},{"role":"assistant","content":"二"}]}""",
        ]);
        string output = Path.Combine(_dir, "out");
        var ft = await Run("finetune", "--model", model, "--task", "chat", "--train", data, "--eval", data, "--out", output,
            "--steps", "3", "--batch-size", "2", "--lr", "1e-2", "--lora-r", "2", "--lora-targets", "query_key_value|dense", "--eval-every", "3");
        Assert.True(ft.Code == 0, ft.Err + ft.Out);
        Assert.Contains("step 3/3", ft.Out);
        Assert.Contains("perplexity", ft.Out);
        string adapter = Path.Combine(output, "adapter");
        Assert.True(File.Exists(Path.Combine(adapter, "adapter_model.safetensors")));

        var withAdapter = await Run("eval", "--model", model, "--task", "chat", "--data", data, "--adapter", adapter);
        var without = await Run("eval", "--model", model, "--task", "chat", "--data", data);
        Assert.True(withAdapter.Code == 0, withAdapter.Err);
        Assert.NotEqual(without.Out, withAdapter.Out);

        string merged = Path.Combine(_dir, "merged");
        var m = await Run("merge", "--model", model, "--adapter", adapter, "--out", merged);
        Assert.True(m.Code == 0, m.Err);
        var mergedEval = await Run("eval", "--model", merged, "--task", "chat", "--data", data);
        Assert.Equal(withAdapter.Out, mergedEval.Out);
    }

    [Fact]
    public async Task MalformedDataFailsBeforeTrainingWithFileAndLine()
    {
        string data = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(data, ["""{"messages":[{"role":"user","content":"q"}]}"""]);
        var r = await Run("finetune", "--model", "random:glm4-tiny", "--task", "chat", "--train", data, "--out", Path.Combine(_dir, "o"), "--steps", "1");
        Assert.NotEqual(0, r.Code);
        Assert.Contains($"{data}:1: no assistant turn", r.Err + r.Out);
    }
}
