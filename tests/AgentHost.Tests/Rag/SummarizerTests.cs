using AgentHost.Rag.Chunking;
using AgentHost.Rag.Summarization;

namespace AgentHost.Tests.Rag;

public class SummarizerTests
{
    private static string LongText(int sentences) =>
        string.Concat(Enumerable.Range(1, sentences).Select(i => $"第{i}句话讲的是鲁镇咸亨酒店里发生的第{i}件事情，掌柜和伙计都看在眼里。"));

    private static ScriptedChatClient Client() => new(prompt =>
        prompt.Contains("<片段>") ? "这一段讲了酒店里的几件事，掌柜记账，伙计温酒，孔乙己来喝酒又欠了钱，众人取笑他，他争辩自己读过书。"
        : prompt.Contains("<各部分摘要>") ? "合并：酒店里的人和事，孔乙己欠钱、被取笑、最后不见了，伙计看在眼里，掌柜记在粉板上。"
        : throw new InvalidOperationException("unexpected prompt: " + prompt));

    [Fact]
    public async Task ShortTextNeedsOneCallAndNoReduce()
    {
        var chat = Client();
        var result = await new MapReduceSummarizer(chat, RagFixtures.Prompts(), new SummarizeOptions(2048, 400, SummaryLength.Short))
            .SummarizeAsync(LongText(5));
        Assert.Equal((1, 1, 0, 0), (result.Chunks, result.MapCalls, result.ReduceCalls, result.ReduceRounds));
        Assert.Equal(1, chat.Calls);
        Assert.Contains("100字以内", chat.UserPrompts.Single()); // the requested length reaches the only call
        Assert.StartsWith("这一段讲了", result.Summary);
    }

    [Fact]
    public async Task LongTextIsMappedPerChunkAndReducedRecursivelyWithinTheWindow()
    {
        var chat = Client();
        var options = new SummarizeOptions(ContextTokens: 400, MaxOutputTokens: 60, SummaryLength.Long);
        var progress = new List<SummaryProgress>();
        string text = LongText(60);
        var result = await new MapReduceSummarizer(chat, RagFixtures.Prompts(), options)
            .SummarizeAsync(text, new SyncProgress<SummaryProgress>(progress.Add));

        var prompts = chat.UserPrompts.ToList();
        int maps = prompts.Count(p => p.Contains("<片段>")), reduces = prompts.Count(p => p.Contains("<各部分摘要>"));
        Assert.True(result.Chunks > 4, $"{result.Chunks} chunks");
        Assert.Equal(result.Chunks, result.MapCalls);
        Assert.Equal(result.MapCalls, maps);
        Assert.Equal(result.ReduceCalls, reduces);
        Assert.True(result.ReduceRounds >= 2, $"expected recursive reduce, got {result.ReduceRounds} round(s)");
        Assert.True(result.ReduceCalls > result.ReduceRounds); // the first round merged several groups
        Assert.All(prompts, p => Assert.True(TokenCounters.Approximate(p) <= options.ContextTokens - options.MaxOutputTokens,
            $"prompt of {TokenCounters.Approximate(p)} tokens exceeds the window"));
        Assert.Contains("800字左右", prompts[^1]);              // only the final reduce asks for the requested length
        Assert.DoesNotContain("800字左右", prompts[0]);
        Assert.StartsWith("合并：", result.Summary);
        Assert.Contains(progress, p => p.Stage == "reduce" && p.Round == result.ReduceRounds && p.Done == 1 && p.Total == 1);
        Assert.True(chat.Options.All(o => o!.MaxOutputTokens <= 60));
    }
}

internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
