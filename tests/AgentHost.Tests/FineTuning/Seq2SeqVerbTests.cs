using AgentHost.Cli;
using AgentHost.Tests.Cli;

namespace AgentHost.Tests.FineTuning;

public sealed class Seq2SeqVerbTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("s2sverb").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string BundledModel => Path.Combine(CliTestModel.RepoRoot, "models", "glm-zh-small");

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliTestModel.Run(args);

    private string Write(string name, params string[] lines)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public async Task FinetuneAndEvalSeq2SeqWithLoraAndFull()
    {
        string data = Write("pairs.jsonl",
            """{"source":"采用修正的参数建立了飞行器姿态控制系统的数学模型。","target":"飞行器姿态控制"}""",
            """{"source":"水运工程项目作为我国航运和水利的重要组成部分。","target":"水运工程管理"}""",
            """{"source":"本文研究了城市交通拥堵的成因与对策。","target":"城市交通拥堵研究"}""");
        string output = Path.Combine(_dir, "lora");
        var ft = await Run("finetune", "--model", BundledModel, "--task", "seq2seq", "--train", data, "--eval", data, "--out", output,
            "--steps", "2", "--batch-size", "2", "--lr", "1e-3", "--eval-every", "2", "--generate-limit", "2", "--max-new-tokens", "6", "--max-length", "64");
        Assert.True(ft.Code == 0, ft.Err + ft.Out);
        Assert.Contains("step 2/2", ft.Out);
        Assert.Contains("rouge_l", ft.Out);
        string adapter = Path.Combine(output, "adapter");
        Assert.True(File.Exists(Path.Combine(adapter, "adapter_model.safetensors")));

        var ev = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--adapter", adapter, "--max-new-tokens", "6", "--examples", "1");
        Assert.True(ev.Code == 0, ev.Err + ev.Out);
        foreach (var expected in new[] { "loss:", "perplexity:", "rouge_l:", "bleu:", "reference: 飞行器姿态控制", "generated:" })
            Assert.Contains(expected, ev.Out);
        var blocked = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--max-new-tokens", "6", "--no-repeat-ngram", "2");
        Assert.True(blocked.Code == 0, blocked.Err + blocked.Out);
        var negative = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--no-repeat-ngram", "-1");
        Assert.Contains("--no-repeat-ngram -1: expected 0 (off) or an n-gram size ≥ 1.", negative.Err);
        Assert.DoesNotContain("   at ", negative.Err);

        // Full fine-tuning on TSV with the classical-modern header, loss as the validation metric (no generation).
        string tsv = Write("cm.tsv", "classical\tmodern", "言至德所被也。\t这是讲至上之德所达到的。", "戒慎之至也。\t这是指要加以警戒和慎重。");
        var full = await Run("finetune", "--model", BundledModel, "--task", "seq2seq", "--method", "full", "--train", tsv, "--eval", tsv,
            "--out", Path.Combine(_dir, "full"), "--steps", "2", "--batch-size", "2", "--lr", "1e-4", "--metric", "loss", "--generate-limit", "0");
        Assert.True(full.Code == 0, full.Err + full.Out);
        Assert.Contains("perplexity", full.Out);
        Assert.DoesNotContain("rouge_l", full.Out);
        Assert.True(File.Exists(Path.Combine(_dir, "full", "model", "config.json")));
    }

    [Fact]
    public async Task ExtractiveTrainingAndDecodingOptions()
    {
        string data = Write("ts.tsv",
            "to title\t本文研究了城市交通拥堵的成因，提出了城市交通拥堵的治理对策。\t城市交通拥堵的治理对策",
            "to title\t介绍了一种新的数学模型，用于飞行器姿态控制系统。\t飞行器姿态控制系统的数学模型");
        string output = Path.Combine(_dir, "ext");
        var ft = await Run("finetune", "--model", BundledModel, "--task", "seq2seq", "--method", "full", "--train", data, "--eval", data,
            "--out", output, "--steps", "2", "--batch-size", "2", "--lr", "1e-4", "--eval-every", "2", "--generate-limit", "2",
            "--train-targets", "clause", "--extract-clause");
        Assert.True(ft.Code == 0, ft.Err + ft.Out);
        Assert.Contains("rouge_l", ft.Out);

        var ev = await Run("eval", "--model", Path.Combine(output, "model"), "--task", "seq2seq", "--data", data, "--extract-clause", "--examples", "2");
        Assert.True(ev.Code == 0, ev.Err + ev.Out);
        var generated = ev.Out.Split('\n').Where(l => l.TrimStart().StartsWith("generated: ")).Select(l => l.Trim()["generated: ".Length..]).ToList();
        Assert.Equal(2, generated.Count);
        Assert.Contains(generated[0], new[] { "本文研究了城市交通拥堵的成因", "提出了城市交通拥堵的治理对策" });
        Assert.Contains(generated[1], new[] { "介绍了一种新的数学模型", "用于飞行器姿态控制系统" });

        var chars = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--copy", "chars", "--max-new-tokens", "8", "--examples", "1");
        Assert.True(chars.Code == 0, chars.Err + chars.Out);
        var span = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--copy", "span", "--min-new-tokens", "2", "--max-new-tokens", "8", "--examples", "2");
        Assert.True(span.Code == 0, span.Err + span.Out);
        foreach (var line in span.Out.Split('\n').Where(l => l.TrimStart().StartsWith("generated: ")))
            Assert.Contains(line.Trim()["generated: ".Length..], File.ReadAllText(data));

        var badCopy = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--copy", "words");
        Assert.Contains("--copy 'words': expected none, chars or span.", badCopy.Err);
        var both = await Run("eval", "--model", BundledModel, "--task", "seq2seq", "--data", data, "--copy", "span", "--extract-clause");
        Assert.Contains("Copy and NoRepeatNgram only apply to generation", both.Err);
        var badTargets = await Run("finetune", "--model", BundledModel, "--task", "seq2seq", "--train", data, "--out", Path.Combine(_dir, "bad"),
            "--steps", "1", "--train-targets", "summary");
        Assert.Contains("--train-targets 'summary': expected given, clause or span.", badTargets.Err);
        Assert.DoesNotContain("   at ", badTargets.Err);

        var first = await Run("baseline", "--task", "ts", "--first-clause", "--eval", data);
        Assert.True(first.Code == 0, first.Err);
        // 本文研究了城市交通拥堵的成因 vs 城市交通拥堵的治理对策: LCS 7 (城市交通拥堵的), F = 2·7/(14+11) = 0.56;
        // 介绍了一种新的数学模型 vs 飞行器姿态控制系统的数学模型: LCS 5 (的数学模型), F = 2·5/(11+14) = 0.40; mean 48.00.
        Assert.Contains("rouge_l 48.00", first.Out);
    }

    [Fact]
    public async Task MalformedSeq2SeqDataFailsBeforeTrainingWithFileAndLine()
    {
        string data = Write("bad.tsv", "to title\tabstract\ttitle", "only one column", "to title\tabstract\t ");
        var r = await Run("finetune", "--model", BundledModel, "--task", "seq2seq", "--train", data, "--out", Path.Combine(_dir, "o"), "--steps", "1");
        Assert.NotEqual(0, r.Code);
        Assert.Contains($"{data}:2: 1 column(s); expected at least 2", r.Err);
        Assert.Contains($"{data}:3: field 'target' (target) is empty", r.Err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "o", "checkpoint")));
        var badTask = await Run("eval", "--model", BundledModel, "--task", "summarise", "--data", data);
        Assert.Contains("--task 'summarise': expected chat, cloze or seq2seq", badTask.Err);
    }

    [Fact]
    public async Task BaselinesReportTheirMetrics()
    {
        var cls = new List<string>();
        for (int i = 0; i < 30; i++) cls.Add($"to category\t{(i % 2 == 0 ? "甲乙丙甲" : "丁戊己丁")}的研究\t{(i % 2 == 0 ? "工学" : "医学")}");
        string clsFile = Write("cls.tsv", cls.ToArray());
        var c = await Run("baseline", "--task", "cls", "--train", clsFile, "--eval", clsFile);
        Assert.True(c.Code == 0, c.Err);
        Assert.Contains("accuracy 1.0000, macro_f1 1.0000", c.Out);

        string ts = Write("ts.tsv", "to title\t一种新方法的研究与应用\t一种新方法");
        string titles = Write("titles.tsv", "to category\t一二三四五\t工学", "to category\t一二三四五六七\t工学");
        var t = await Run("baseline", "--task", "ts", "--eval", ts, "--length-from", titles, "--length-column", "2");
        Assert.True(t.Code == 0, t.Err);
        Assert.Contains("N = 6", t.Out);                        // mean of 5 and 7
        Assert.Contains("rouge_l 90.91 (P 83.33, R 100.00)", t.Out); // lead 一种新方法的 vs 一种新方法: LCS 5, P 5/6, R 1

        string cm = Write("cm.tsv", "classical\tmodern", "天下大势\t天下大势");
        var tr = await Run("baseline", "--task", "translate", "--eval", cm);
        Assert.True(tr.Code == 0, tr.Err);
        Assert.Contains("rouge_l 100.00", tr.Out);
        Assert.Contains("bleu 100.00", tr.Out);
    }
}
