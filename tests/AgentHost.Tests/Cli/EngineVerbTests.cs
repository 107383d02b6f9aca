using System.Globalization;
using System.Text.Json;
using AgentHost.Cli;

namespace AgentHost.Tests.Cli;

public class EngineVerbTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glmsk-cli-" + Guid.NewGuid().ToString("N"));

    public EngineVerbTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliTestModel.Run(args);

    [Fact]
    public async Task GenerateWithIdsPrintsGeneratedIdsAndIsDeterministic()
    {
        var first = await Run("generate", "--model", "random:glm4-tiny", "--ids", "1,2,3", "--max-new-tokens", "6", "--print-ids");
        var second = await Run("generate", "--model", "random:glm4-tiny", "--ids", "1,2,3", "--max-new-tokens", "6", "--print-ids");
        Assert.Equal(0, first.Code);
        var ids = JsonSerializer.Deserialize<int[]>(first.Out.Trim().Split('\n')[^1])!;
        Assert.Equal(6, ids.Length);
        Assert.Equal(first.Out, second.Out);
        Assert.Contains("finish: length", first.Err);
    }

    [Fact]
    public async Task LogitsWritesANpyFileOfTheRightShapeInBothModes()
    {
        string full = Path.Combine(_dir, "full.npy"), inc = Path.Combine(_dir, "inc.npy");
        Assert.Equal(0, (await Run("logits", "--model", "random:glm4-tiny", "--ids", "4,5,6,7", "--out", full)).Code);
        Assert.Equal(0, (await Run("logits", "--model", "random:glm4-tiny", "--ids", "4,5,6,7", "--out", inc, "--mode", "incremental")).Code);
        var (shape, a) = ReadNpy(full);
        var (_, b) = ReadNpy(inc);
        Assert.Equal(new[] { 4, 512 }, shape);
        double maxDiff = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(maxDiff < 1e-4, $"max difference {maxDiff}");
    }

    [SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task TokenizePrintsTheIdsOfTheTextAlone()
    {
        string model = CliTestModel.ChatGlm3Folder(Path.Combine(_dir, "m"));
        var r = await Run("tokenize", "--model", model, "--text", "你好");
        Assert.Equal(0, r.Code);
        Assert.Equal("[36474,54591]", r.Out.Trim()); // chatglm.cpp reference ids without the [gMASK] sop prefix
    }

    [SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task PerplexityReportsPerTokenAndPerCharacterFigures()
    {
        string model = CliTestModel.ChatGlm3Folder(Path.Combine(_dir, "m"));
        string text = Path.Combine(_dir, "t.txt");
        File.WriteAllText(text, "我家门前有两棵树，一棵是枣树，还有一棵也是枣树。");
        var r = await Run("perplexity", "--model", model, "--text-file", text, "--context", "8");
        Assert.Equal(0, r.Code);
        Assert.Matches(@"perplexity per token: \d+\.\d+", r.Out);
        Assert.Matches(@"bits per character: \d+\.\d+", r.Out);
        Assert.Contains("characters: 24", r.Out);
    }

    [Theory]
    [InlineData("generate --model random:glm4-tiny --ids 1,x", "item 2 'x' is not a token id")]
    [InlineData("generate --model random:glm4-tiny", "exactly one of --prompt TEXT or --ids")]
    [InlineData("generate --model random:nope --ids 1", "random:nope is not a known model size")]
    [InlineData("generate --model /nonexistent/folder --ids 1", "does not exist")]
    [InlineData("generate --model random:glm4-tiny --ids 1,99999", "token id 99999 at index 1 is out of range")]
    [InlineData("generate --model random:glm4-tiny --prompt hi", "has no tokenizer")]
    [InlineData("generate --model random:glm4-tiny --ids 1 --top-p 1.5", "top-p = 1.5")]
    [InlineData("perplexity --model random:glm4-tiny --text-file /nonexistent.txt", "does not exist")]
    [InlineData("bench --model random:glm4-tiny --new-tokens 0", "≥ 1")]
    [InlineData("generate --model random:glm4-tiny --ids 1 --device tpu", "--device 'tpu' is not a device")]
    public async Task UserMistakesGiveAOneLineErrorAndExitCode1(string args, string expected)
    {
        var r = await Run(args.Split(' '));
        Assert.Equal(1, r.Code);
        Assert.Contains(expected, r.Err);
        Assert.DoesNotContain("   at ", r.Err); // no stack trace
    }

    [Theory]
    [InlineData("1", "decode path: fused single-sequence step")]
    [InlineData("2", "decode path: tensor ops")] // two prompts at once: the fused step is for one sequence
    public async Task BenchSaysWhichDecodePathRan(string batch, string expected)
    {
        var r = await Run("bench", "--model", "random:glm4-tiny", "--prompt-tokens", "4", "--new-tokens", "4", "--batch", batch);
        Assert.Equal(0, r.Code);
        Assert.Contains("roofline", r.Out);
        Assert.Contains("prefill compute: ", r.Out); // prefill GFLOP/s against a GEMM measured in the same process
        Assert.Contains(expected, r.Out);
        Assert.Matches(@"memory: (\d+\.\d\d GB of weights on 2 MiB pages|weights on 4 KiB pages)", r.Out); // glm4-tiny's tensors are all under 2 MiB
    }

    [Fact]
    public async Task BenchWithInt8WeightsSaysHowDecodeTreatsTheActivations()
    {
        var r = await Run("bench", "--model", "random:glm4-tiny", "--quantize", "int8", "--prompt-tokens", "4", "--new-tokens", "4");
        Assert.Equal(0, r.Code);
        Assert.Contains($"quantization: int8 (decode: {Glm.Engine.GlmQuantizationNames.DecodeActivations})", r.Out);
        Assert.Matches(@"quantization: int8 \(decode: (int16|int8|exact fp32) activations\)", r.Out);
    }

    [Fact]
    public async Task BenchRepeatPrintsTheMedianAndRangeOfEveryTimedRun()
    {
        var r = await Run("bench", "--model", "random:glm4-tiny", "--prompt-tokens", "20", "--new-tokens", "4", "--repeat", "3");
        Assert.Equal(0, r.Code);
        var prefill = System.Text.RegularExpressions.Regex.Match(r.Out, @"prefill: ([\d.]+) tok/s \(median of 3: ([\d.]+)–([\d.]+)\)");
        Assert.True(prefill.Success, r.Out);
        double median = double.Parse(prefill.Groups[1].Value, CultureInfo.InvariantCulture);
        double low = double.Parse(prefill.Groups[2].Value, CultureInfo.InvariantCulture), high = double.Parse(prefill.Groups[3].Value, CultureInfo.InvariantCulture);
        Assert.InRange(median, low, high);
        Assert.Matches(@"decode: [\d.]+ tok/s \(median of 3: [\d.]+–[\d.]+\)", r.Out);
        // Four probes bracket three runs; each run's fraction is against the larger probe beside it.
        Assert.Matches(@"probes [\d.]+, [\d.]+, [\d.]+, [\d.]+\)", r.Out);
        Assert.Matches(@"median of each run against its own probes; [\d.]+ %, [\d.]+ %, [\d.]+ %\)", r.Out);

        var bad = await Run("bench", "--model", "random:glm4-tiny", "--repeat", "0");
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("--repeat", bad.Err);
        Assert.DoesNotContain("   at ", bad.Err); // a message, not a stack trace
    }

    [Fact]
    public async Task BenchConcurrencySweepsInterleavedAndReportsTheMedianRatio()
    {
        var r = await Run("bench", "--model", "random:glm4-tiny", "--prompt-tokens", "4", "--new-tokens", "6", "--concurrency", "2", "--repeat", "2");
        Assert.Equal(0, r.Code);
        Assert.Contains("2 interleaved sweeps", r.Out);
        // The single-stream baseline is added to the sweep; each row: streams, aggregate, per-stream, ratio.
        var rows = System.Text.RegularExpressions.Regex.Matches(r.Out, @"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x", System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.Equal(new[] { "1", "2" }, rows.Select(m => m.Groups[1].Value));
        double Value(string text) => double.Parse(text, CultureInfo.InvariantCulture);
        double[] Sweeps(int streams) => System.Text.RegularExpressions.Regex.Match(r.Out, $@"  {streams} stream\(s\), aggregate decode tok/s per sweep: ([\d.]+), ([\d.]+)")
            .Groups.Values.Skip(1).Select(g => Value(g.Value)).ToArray();
        double[] one = Sweeps(1), two = Sweeps(2);
        Assert.Equal(2, one.Length);
        Assert.Equal(2, two.Length);
        // Two sweeps: the ratio is the mean of the sweeps' own ratios (the printed rates are rounded to 0.01).
        double expected = (two[0] / one[0] + two[1] / one[1]) / 2;
        Assert.InRange(Value(rows[1].Groups[4].Value), expected * 0.98 - 0.01, expected * 1.02 + 0.01);

        var bad = await Run("bench", "--model", "random:glm4-tiny", "--concurrency", "1,0");
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("--concurrency '1,0'", bad.Err);
        Assert.DoesNotContain("   at ", bad.Err);
    }

    [Fact]
    public async Task BenchProfileSplitsThePrefillAndTheDecodeSteps()
    {
        var r = await Run("bench", "--model", "random:glm4-tiny", "--dtype", "bf16", "--prompt-tokens", "8", "--new-tokens", "4", "--profile");
        Assert.Equal(0, r.Code);
        Assert.Contains("prefill profile (second run", r.Out);
        Assert.Contains("decode profile (second run", r.Out);
        var prefillSection = r.Out[r.Out.IndexOf("prefill profile", StringComparison.Ordinal)..r.Out.IndexOf("decode profile", StringComparison.Ordinal)];
        // Calls are counted for the whole prompt: 2 layers × 2 norms + the final norm, 2 layers × 2 MLP projections.
        Assert.Matches(@"Norm\s+[\d.]+\s+[\d.]+ %\s+5\n", prefillSection);
        Assert.Matches(@"MlpProjections\s+[\d.]+\s+[\d.]+ %\s+4\n", prefillSection);
    }

    [Fact]
    public async Task EveryVerbHasHelp()
    {
        foreach (var verb in new[] { "generate", "chat", "logits", "tokenize", "perplexity", "bench" })
        {
            var r = await Run(verb, "--help");
            Assert.Equal(0, r.Code);
            Assert.Contains("--model", r.Out);
        }
    }

    private static (int[] Shape, float[] Values) ReadNpy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0x93, bytes[0]);
        int headerLen = BitConverter.ToUInt16(bytes, 8);
        string header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLen);
        Assert.Contains("'descr': '<f4'", header);
        Assert.Equal(0, (10 + headerLen) % 64);
        var m = System.Text.RegularExpressions.Regex.Match(header, @"'shape': \((\d+), (\d+)\)");
        var shape = new[] { int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value) };
        var values = new float[shape[0] * shape[1]];
        Buffer.BlockCopy(bytes, 10 + headerLen, values, 0, values.Length * 4);
        return (shape, values);
    }
}
