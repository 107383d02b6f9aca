using AgentHost.Rag.Answering;
using AgentHost.Rag.Evaluation;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Stores;
using Glm.Engine;

namespace AgentHost.Tests.Rag;

public class EvalRagTests
{
    [Theory]
    [InlineData("北京大学", "北京大学", 1.0)]
    [InlineData("《红楼梦》", "红楼梦", 1.0)]          // 《》 are deleted before comparing
    [InlineData("天安门广场", "在天安门", 2 * 0.75 * 0.6 / 1.35)] // LCS 天安门: P 3/4, R 3/5
    [InlineData("1990年", "1990 年代", 0.8)]           // tokens 1990|年 vs 1990|年|代
    [InlineData("鲁迅", "周树人", 0.0)]
    public void F1FollowsTheCmrcScript(string answer, string prediction, double expected) =>
        Assert.Equal(expected, CmrcMetrics.F1(answer, prediction), 6);

    [Fact]
    public void ExactMatchNormalisesCaseSpacesAndPunctuation()
    {
        Assert.Equal(1, CmrcMetrics.ExactMatch("《呐喊》", " 呐喊 "));
        Assert.Equal(1, CmrcMetrics.ExactMatch("GLM-4", "glm4"));
        Assert.Equal(0, CmrcMetrics.ExactMatch("十九个钱", "十九个钱。还有"));
        Assert.Equal(1, CmrcMetrics.BestExactMatch(["十九文", "十九个钱"], "十九个钱。"));
        Assert.Equal(["glm4", "模", "型", "v2.0", "!"], CmrcMetrics.Segment("GLM-4模型 v2.0!"));
    }

    [Fact]
    public void RecallAndMrrFromRanks()
    {
        int[] ranks = [1, 3, 0, 7];
        Assert.Equal(0.25, RetrievalMetrics.RecallAt(ranks, 1));
        Assert.Equal(0.5, RetrievalMetrics.RecallAt(ranks, 5));
        Assert.Equal(0.75, RetrievalMetrics.RecallAt(ranks, 10));
        Assert.Equal((1 + 1 / 3.0 + 1 / 7.0) / 4, RetrievalMetrics.MeanReciprocalRank(ranks), 9);
    }

    private const string Tiny = """
        {"version":"v1.0","data":[
         {"id":"T_0","title":"孔乙己","paragraphs":[{"id":"T_0","context":"孔乙己是站着喝酒而穿长衫的唯一的人。他在咸亨酒店还欠十九个钱。","qas":[
           {"question":"孔乙己在咸亨酒店欠了多少钱？","id":"T_0_Q_0","answers":[{"text":"十九个钱","answer_start":28}]}]}]},
         {"id":"T_1","title":"藤野先生","paragraphs":[{"id":"T_1","context":"藤野严九郎是仙台医学专门学校的解剖学教授，他为鲁迅添改讲义。","qas":[
           {"question":"藤野先生教的是哪一门课？","id":"T_1_Q_0","answers":[{"text":"解剖学","answer_start":15}]},
           {"question":"藤野先生在哪所学校任教？","id":"T_1_Q_1","answers":[{"text":"仙台医学专门学校","answer_start":6}]}]}]},
         {"id":"T_2","title":"故乡","paragraphs":[{"id":"T_2","context":"闰土是我少年时的朋友，他在海边的沙地里看瓜，手捏一柄钢叉。","qas":[
           {"question":"闰土少年时在沙地里看什么？","id":"T_2_Q_0","answers":[{"text":"瓜","answer_start":16}]}]}]}]}
        """;

    [Fact]
    public async Task EvaluatorMeasuresEveryModeOnATinyDatasetAndScoresAnswers()
    {
        using var temp = new TempFolder();
        var data = EvalDataset.Load(temp.Write("tiny.json", Tiny));
        Assert.Equal(3, data.Contexts.Count);
        var embedder = new AgentHost.Rag.Llm.HashingEmbeddingGenerator();
        using var kb = new SqliteKnowledgeBase(temp.File("eval.db"), "eval");
        var retriever = new Retriever(kb, embedder);
        var evaluator = new RagEvaluator(kb, retriever, new IngestionPipeline(kb, null, embedder), temp.File("docs"));
        // The scripted model answers with the first gold answer for its question, with a citation.
        var gold = data.Questions.ToDictionary(q => q.Question.Question, q => q.Question.Answers[0]);
        var chat = new ScriptedChatClient(prompt => gold.First(kv => prompt.Contains(kv.Key)).Value + "[1]");
        var ask = new AskPipeline(retriever, chat, RagFixtures.Prompts());

        var report = await evaluator.RunAsync(data, limit: 3, ask, new AskOptions { TopK = 3, Thresholds = new RelevanceThresholds(0.2, 0.2) });

        Assert.Equal(3, report.Questions);
        Assert.Equal([RetrievalMode.Keyword, RetrievalMode.Dense, RetrievalMode.Hybrid], report.Retrieval.Select(r => r.Mode));
        var keyword = report.Retrieval[0];
        Assert.Equal(1.0, keyword.RecallAt10);
        Assert.True(keyword.Mrr > 0.5 && keyword.RecallAt1 <= keyword.RecallAt5);
        Assert.Equal(3, report.Ingestion.Count(FileOutcome.Added));
        Assert.NotNull(report.Answers);
        Assert.Equal(3, chat.Calls);                       // --limit 3 of the 4 questions
        Assert.Equal(100.0, report.Answers!.ExactMatch, 6); // citation markers are stripped before scoring
        Assert.Contains("| keyword | 3 |", report.ToMarkdown());

        // A second run reuses the indexed documents.
        var again = await evaluator.RunAsync(data, 1, null, new AskOptions());
        Assert.Equal(3, again.Ingestion.Count(FileOutcome.Unchanged));
        Assert.Null(again.Answers);
    }

    [Fact]
    public void RankIsThatOfTheFirstGoldChunkContainingAnAnswer()
    {
        SearchHit Hit(string source, string text) => new(1, source, "", text, 0, text.Length, 0, 1);
        var hits = new[] { Hit("/a", "十九个钱"), Hit("/gold", "没有答案"), Hit("/gold", "还欠十九个钱呢") };
        Assert.Equal(3, RagEvaluator.RankOfFirstRelevant(hits, "/gold", ["十九个钱"]));
        Assert.Equal(0, RagEvaluator.RankOfFirstRelevant(hits, "/gold", ["二十"]));
    }

    [Fact]
    public void ABadDatasetNamesTheFileAndField()
    {
        using var temp = new TempFolder();
        string path = temp.Write("bad.json", """{"data":[{"paragraphs":[{"id":"X","context":"文本","qas":[{"id":"Q","answers":[]}]}]}]}""");
        var e = Assert.Throws<GlmException>(() => EvalDataset.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("$.data[0].paragraphs[0].qas[0].question", e.Message);
    }
}
