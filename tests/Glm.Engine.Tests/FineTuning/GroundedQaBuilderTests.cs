using System.Text.Json;
using Glm.Engine.FineTuning;
using Glm.Engine.FineTuning.GroundedQa;
using Glm.Engine.Tests.Training;
using Glm.Engine.Training.Data;

namespace Glm.Engine.Tests.FineTuning;

public sealed class GroundedQaBuilderTests : IDisposable
{
    private readonly string _dir = TrainingData.TempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // A synthetic corpus: every sentence is unique (numbered), with speech and quantities for the natural templates.
    private string Corpus(int paragraphs = 400)
    {
        string root = Path.Combine(_dir, "corpus");
        Directory.CreateDirectory(Path.Combine(root, "novel"));
        var names = new[] { "宋江", "吴用", "林冲", "武松", "鲁达" };
        var lines = new List<string>();
        for (int i = 0; i < paragraphs; i++)
        {
            string n = names[i % names.Length], id = Cn(i);
            lines.Add($"　　第{id}日，{n}来到庄上，带了{Cn(i % 9 + 2)}个伴当。{n}道：“今日之事，编号{id}，须要小心。”众人听了，各自散去。");
        }
        File.WriteAllText(Path.Combine(root, "novel", "a.txt"), string.Join("\n", lines) + "\n");
        return root;
    }

    private static string Cn(int i) => string.Concat(i.ToString().Select(d => "零一二三四五六七八九"[d - '0']));

    [Fact]
    public void TemplatesGiveUniqueSpansOfThePassage()
    {
        const string passage = "宋江道：“今日之事，须要小心。”孔乙己还欠十九个钱呢！众人听了，都笑起来。";
        var all = QaTemplates.Candidates(passage);
        Assert.Contains(all, q => q.Template == "who-said" && q.Answer == "宋江" && q.Question == "谁说了“今日之事，须要小心”？");
        Assert.Contains(all, q => q.Template == "how-many" && q.Answer == "十九个" && q.Question == "孔乙己还欠多少个钱呢？");
        Assert.Contains(all, q => q.Template == "cloze" && q.Answer == "众人听了" && q.Question == "资料中“乙己还欠十九个钱呢！____，都笑起来。”处是什么？");
        Assert.All(all, q => Assert.Equal(1, QaTemplates.Occurrences(passage, q.Answer)));
        Assert.DoesNotContain(QaTemplates.WhoSaid("他笑道：“好。”我们说：“走吧走吧。”"), _ => true); // pronouns are not speakers
        Assert.DoesNotContain(QaTemplates.HowMany("第三回中，一个人来了。"), _ => true);             // ordinals and lone 一 are skipped
    }

    [Fact]
    public void BuildIsDeterministicDisjointAndAnswersAreSpans()
    {
        var split = CorpusSplit.Load(Corpus(), validationFraction: 0.1);
        var options = new GroundedQaOptions { TrainCount = 60, ValidCount = 8, Seed = 5, MaxPassageChars = 120 };
        var a = GroundedQaBuilder.Build(split, options);
        var b = GroundedQaBuilder.Build(split, options);
        Assert.Equal(60, a.Train.Count);
        Assert.Equal(8, a.Valid.Count);
        Assert.Equal(a.Train, b.Train);
        Assert.Equal(a.Valid, b.Valid);
        Assert.NotEqual(a.Train, GroundedQaBuilder.Build(split, options with { Seed = 6 }).Train);
        Assert.All(a.Train.Concat(a.Valid), i => Assert.Contains(i.Answer, i.Passage, StringComparison.Ordinal));
        Assert.All(a.Train.Concat(a.Valid), i => Assert.InRange(i.Passage.Length, 1, 120));
        // Disjoint: no validation passage occurs in the training text and vice versa.
        string trainText = string.Concat(split.Train.Select(d => d.Text)), validText = string.Concat(split.Validation.Select(d => d.Text));
        Assert.All(a.Valid, i => Assert.DoesNotContain(i.Passage, trainText, StringComparison.Ordinal));
        Assert.All(a.Train, i => Assert.DoesNotContain(i.Passage, validText, StringComparison.Ordinal));
        Assert.Contains(a.Train, i => i.Template == "who-said");
        Assert.Contains(a.Train, i => i.Template == "how-many");
    }

    [Fact]
    public void WrittenJsonlLoadsAsChatDataAndCmrcFitsTheTokenBudget()
    {
        var split = CorpusSplit.Load(Corpus(), validationFraction: 0.1);
        var cmrc = new[]
        {
            new CmrcQuestion("T_0", "短文一：北京是中国的首都。", "中国的首都是哪里？", "北京"),
            new CmrcQuestion("T_1", new string('长', 300) + "上海。", "哪里？", "上海"),
        };
        var options = new GroundedQaOptions { TrainCount = 20, ValidCount = 4, MaxPassageChars = 120, CmrcShare = 0.1, MaxTokens = 200 };
        var set = GroundedQaBuilder.Build(split, options, cmrc, turns => turns.Sum(t => t.Content.Length));
        Assert.Single(set.Train, i => i.Template == "cmrc"); // the 300-character context does not fit 200 "tokens"
        string path = Path.Combine(_dir, "train.jsonl");
        GroundedQaBuilder.WriteJsonl(path, set.Train, options.SystemPrompt);
        var examples = ChatSftData.Load(path);
        Assert.Equal(set.Train.Count, examples.Count);
        Assert.All(examples, e => Assert.Equal(3, e.Turns.Count));
        Assert.Equal(set.Train[0].Answer, examples[0].Turns[2].Content);
        using var doc = JsonDocument.Parse(File.ReadLines(path).First());
        Assert.Equal(set.Train[0].Template, doc.RootElement.GetProperty("meta").GetProperty("template").GetString());
    }

    [Fact]
    public void InvalidOptionsEmptyCorpusAndMalformedCmrcAreReported()
    {
        var split = CorpusSplit.Load(Corpus(), validationFraction: 0.1);
        Assert.Contains("--max-passage-chars 10", Assert.Throws<GlmException>(() => GroundedQaBuilder.Build(split, new GroundedQaOptions { MaxPassageChars = 10 })).Message);
        Assert.Contains("--train -1", Assert.Throws<GlmException>(() => GroundedQaBuilder.Build(split, new GroundedQaOptions { TrainCount = -1 })).Message);
        string empty = Path.Combine(_dir, "empty");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, "x.txt"), "短\n");
        var ex = Assert.Throws<GlmException>(() => GroundedQaBuilder.Build(CorpusSplit.Load(empty), new GroundedQaOptions { TrainCount = 5, ValidCount = 0 }));
        Assert.Contains("training split", ex.Message);
        string bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, """{"data":[{"paragraphs":[{"context":"abc","qas":[{"question":"q","answers":[{"text":5}]}]}]}]}""");
        var cm = Assert.Throws<GlmException>(() => CmrcReader.Load(bad));
        Assert.Contains("data[0].paragraphs[0].qas[0].answers[0].text", cm.Message);
        File.WriteAllText(bad, "{not json");
        Assert.Contains("invalid JSON", Assert.Throws<GlmException>(() => CmrcReader.Load(bad)).Message);
    }

    [TrainingDataFact("data/eval/cmrc2018/cmrc2018_trial.json")]
    public void CmrcTrialReadsWithAnswersInsideContexts()
    {
        var questions = CmrcReader.Load(TrainingData.SharedPath("data/eval/cmrc2018/cmrc2018_trial.json"));
        Assert.InRange(questions.Count, 990, 1002);
        Assert.All(questions, q => Assert.Contains(q.Answer, q.Context, StringComparison.Ordinal));
    }
}
