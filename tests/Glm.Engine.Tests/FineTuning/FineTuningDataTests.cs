using Glm.Engine.FineTuning;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Modeling;
using Glm.Engine.Tests.Tokenization;
using Glm.Engine.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.FineTuning;

public sealed class FineTuningDataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftdata").FullName;
    private readonly Glm4Tokenizer _tok;
    private readonly Glm4ChatFormat _format;

    public FineTuningDataTests()
    {
        _tok = Glm4Tokenizer.LoadTiktoken(Glm4TestRanks.WriteRankFile(_dir));
        _format = new Glm4ChatFormat(_tok);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, params string[] lines)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    private const string Conversation =
        """{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"},{"role":"assistant","content":"hi there"},{"role":"user","content":"abc"},{"role":"tool","content":"{\"t\": 1}"},{"role":"assistant","content":"all well"}]}""";

    [Fact]
    public void ChatLossMaskCoversExactlyTheAssistantTokensAndTheirStopToken()
    {
        var example = ChatSftData.Load(Write("chat.jsonl", Conversation))[0];
        Assert.Equal(ChatRole.Observation, example.Turns[4].Role);
        int eos = _tok.SpecialTokenId("<|endoftext|>")!.Value, user = _tok.SpecialTokenId("<|user|>")!.Value;
        var sample = ChatSftData.Encode(_format, example, eos);
        Assert.Equal(_format.BuildPrompt(example.Turns, null, false).Concat([eos]), sample.Ids);
        // Contiguous target runs: each is "\n" + reply followed by the stop token the model must emit next.
        var runs = new List<List<int>>();
        for (int i = 0; i < sample.Ids.Length; i++)
            if (sample.Targets[i]) { if (i == 0 || !sample.Targets[i - 1]) runs.Add(new()); runs[^1].Add(sample.Ids[i]); }
        Assert.Equal(2, runs.Count);
        Assert.Equal("\nhi there", _tok.Decode(runs[0].Take(runs[0].Count - 1)));
        Assert.Equal(user, runs[0][^1]);
        Assert.Equal("\nall well", _tok.Decode(runs[1].Take(runs[1].Count - 1)));
        Assert.Equal(eos, runs[1][^1]);
        // The <|assistant|> role token itself is context, not a target.
        int assistant = _tok.SpecialTokenId("<|assistant|>")!.Value;
        Assert.All(Enumerable.Range(0, sample.Ids.Length).Where(i => sample.Ids[i] == assistant), i => Assert.False(sample.Targets[i]));
    }

    [Fact]
    public void ChatLossEqualsTheMaskedNllOfComputeLogitsAndPaddingChangesNothing()
    {
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 5 });
        var a = new ChatSftSample([1, 7, 9, 30, 31, 32, 2], [false, false, false, true, true, true, true]);
        var b = new ChatSftSample([1, 8, 40, 41], [false, false, true, true]);
        var task = new ChatSftTask([a, b], null);
        double Manual(ChatSftSample s)
        {
            var logits = model.ComputeLogits(s.Ids);
            double nll = 0;
            for (int t = 1; t < s.Ids.Length; t++)
            {
                if (!s.Targets[t]) continue;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < logits.GetLength(1); j++) max = Math.Max(max, logits[t - 1, j]);
                for (int j = 0; j < logits.GetLength(1); j++) sum += Math.Exp(logits[t - 1, j] - max);
                nll -= logits[t - 1, s.Ids[t]] - max - Math.Log(sum);
            }
            return nll;
        }
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var (sumA, countA) = task.SummedNll(model, [a]);
        Assert.Equal(4, countA);
        Assert.Equal(Manual(a), sumA.item<float>(), 4);
        var (sumAB, countAB) = task.SummedNll(model, [a, b]);
        Assert.Equal(6, countAB);
        Assert.Equal(Manual(a) + Manual(b), sumAB.item<float>(), 4);
    }

    [Fact]
    public void MalformedChatDataIsReportedByFileAndLineBeforeTraining()
    {
        string path = Write("bad.jsonl",
            Conversation,
            "{not json",
            """{"messages":[{"role":"wizard","content":"x"},{"role":"assistant","content":"y"}]}""",
            """{"messages":[{"role":"user","content":"  "},{"role":"assistant","content":"y"}]}""",
            """{"messages":[{"role":"user","content":"only a question"}]}""",
            """{"text":"no messages"}""");
        var ex = Assert.Throws<GlmException>(() => ChatSftData.Load(path));
        Assert.Contains($"{path}:2: invalid JSON", ex.Message);
        Assert.Contains($"{path}:3: messages[0]: role 'wizard' is unknown", ex.Message);
        Assert.Contains($"{path}:4: messages[0]: user content is empty", ex.Message);
        Assert.Contains($"{path}:5: no assistant turn", ex.Message);
        Assert.Contains($"{path}:6: expected an object with a \"messages\" array", ex.Message);
        Assert.DoesNotContain($"{path}:1:", ex.Message);
    }

    private static readonly ClozeTask Disciplines = new()
    {
        Pattern = "{text}。这篇论文属于[MASK]学科。",
        Verbalizer = [new("工学", "工学"), new("医学", "医学"), new("农学", "农学")],
    };

    [Fact]
    public void MalformedClozeDataIsReportedByFileAndLine()
    {
        Disciplines.Validate();
        string tsv = Write("cls.tsv", "to category\t果蔬保鲜技术进展探索\t农学", "to category\t某标题\t", "to category\t另一标题\t文学", "just one column");
        var ex = Assert.Throws<GlmException>(() => ClozeData.Load(tsv, Disciplines));
        Assert.Contains($"{tsv}:2: label is empty", ex.Message);
        Assert.Contains($"{tsv}:3: label '文学' is not in the verbalizer", ex.Message);
        Assert.Contains($"{tsv}:4: 1 column(s)", ex.Message);
        string jsonl = Write("cls.jsonl", """{"text":"a","label":"医学"}""", """{"text":"","label":"医学"}""", "[1,2]");
        ex = Assert.Throws<GlmException>(() => ClozeData.Load(jsonl, Disciplines));
        Assert.Contains($"{jsonl}:2: text is empty", ex.Message);
        Assert.Contains($"{jsonl}:3: expected a JSON object", ex.Message);
        var good = ClozeData.Load(Write("ok.tsv", "to category\t果蔬保鲜技术进展探索\t农学"), Disciplines);
        Assert.Equal(("果蔬保鲜技术进展探索", "农学", 1), (good[0].Text, good[0].Label, good[0].Line));
        Assert.Throws<GlmException>(() => (Disciplines with { Pattern = "{text} no blank" }).Validate());
    }

    [Fact]
    public void ClozeScoreOfAMultiTokenVerbalizerIsTheSumOfComputeLogitsLogProbs()
    {
        using var model = GlmBlockTestSupport.Model(seed: 11);
        const int cls = GlmBlockTestSupport.Cls, mask = GlmBlockTestSupport.Mask, eos = GlmBlockTestSupport.Eos, sop = GlmBlockTestSupport.Sop;
        var samples = new[] { new ClozeSample([cls, 9, 10, mask, 11, eos], 0), new ClozeSample([cls, 12, mask, eos], 1) };
        int[][] verbalizers = [[20, 21, 22], [23], [24, 25]];
        using var scope = NewDisposeScope();
        float[,] scores;
        using (torch.no_grad())
        {
            var t = ClozeScorer.LabelLogProbs(model, samples, verbalizers).cpu();
            scores = new float[2, 3];
            for (int s = 0; s < 2; s++) for (int l = 0; l < 3; l++) scores[s, l] = t[s, l].item<float>();
        }
        for (int s = 0; s < samples.Length; s++)
            for (int l = 0; l < verbalizers.Length; l++)
            {
                var v = verbalizers[l];
                var ids = samples[s].PartA.Concat([sop]).Concat(v.Take(v.Length - 1)).ToArray();
                var logits = model.ComputeLogits(ids);
                double expected = 0;
                for (int j = 0; j < v.Length; j++)
                {
                    int row = samples[s].PartA.Length + j;
                    double max = Enumerable.Range(0, logits.GetLength(1)).Max(c => (double)logits[row, c]);
                    double lse = max + Math.Log(Enumerable.Range(0, logits.GetLength(1)).Sum(c => Math.Exp(logits[row, c] - max)));
                    expected += logits[row, v[j]] - lse;
                }
                Assert.Equal(expected, scores[s, l], 4);
            }
    }

    [Fact]
    public void MetricsMatchHandComputedValues()
    {
        int[] gold = [0, 0, 1, 1, 2], predicted = [0, 1, 1, 1, 0];
        Assert.Equal(0.6, ClassificationMetrics.Accuracy(gold, predicted), 10);
        // F1: class 0 = 2·1/(2+1+1) = 0.5, class 1 = 2·2/(4+1+0) = 0.8, class 2 = 0.
        Assert.Equal((0.5 + 0.8 + 0) / 3, ClassificationMetrics.MacroF1(gold, predicted), 10);
    }
}
