using AgentHost.Cli;
using AgentHost.Hosting;
using AgentHost.Tests.Rag;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Tests.Cli;

/// <summary>The RAG verbs end to end through the command line, over real knowledge bases in a temp folder.</summary>
[Collection("RagHost")] // one test sets a GLM_* variable; classes that build the host must not run beside it
public sealed class RagVerbTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private string KbRoot => _temp.File("kb");

    public void Dispose() => _temp.Dispose();

    private async Task<(int Code, string Out, string Err)> Run(IChatClient? chat, string? stdin, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        using var hooks = RagHostHooks.Use(chat is null ? null : s => s.AddSingleton(chat), input: stdin is null ? null : new StringReader(stdin));
        int code = await GlmCommandLine.RunAsync([.. args, "--kb-root", KbRoot], o, e);
        return (code, o.ToString(), e.ToString());
    }

    private Task<(int Code, string Out, string Err)> Run(params string[] args) => Run((IChatClient?)null, null, args);

    [Fact]
    public async Task IngestReportsOutcomesAndExitsTwoWhenAFileFailed()
    {
        _temp.Write("docs/a.txt", "孔乙己是站着喝酒而穿长衫的唯一的人。");
        _temp.Write("docs/b.md", "# 故乡\n\n我冒了严寒，回到相隔二千余里，别了二十余年的故乡去。");
        var ok = await Run("ingest", _temp.File("docs"), "--kb", "t");
        Assert.Equal(0, ok.Code);
        Assert.Contains("added", ok.Out);
        Assert.Matches(@"│\s*2\s*│\s*0\s*│\s*0\s*│\s*0\s*│\s*0\s*│", ok.Out); // 2 added, 0 updated/unchanged/skipped/failed

        _temp.WriteBytes("docs/broken.pdf", "%PDF-1.7 not really a pdf"u8.ToArray());
        _temp.Write("docs/notes.xyz", "unsupported");
        var some = await Run("ingest", _temp.File("docs"), "--kb", "t");
        Assert.Equal(2, some.Code);
        Assert.Contains("1 file(s) failed", some.Err);
        Assert.Contains("broken.pdf", some.Err);
        Assert.Contains("notes.xyz", some.Err); // skipped, said so
        Assert.Matches(@"│\s*0\s*│\s*0\s*│\s*2\s*│\s*1\s*│\s*1\s*│", some.Out); // 2 unchanged, 1 skipped, 1 failed

        var bad = await Run("ingest", _temp.File("docs"), "--kb", "t", "--chunk-tokens", "16", "--overlap", "16");
        Assert.Equal(1, bad.Code);
        Assert.Contains("error: chunk overlap 16 tokens is invalid", bad.Err);
    }

    [Fact]
    public async Task KbListStatsAndDelete()
    {
        _temp.Write("docs/a.txt", "孔乙己是站着喝酒而穿长衫的唯一的人。");
        Assert.Equal(0, (await Run("ingest", _temp.File("docs"), "--kb", "alpha")).Code);

        var list = await Run("kb", "list");
        Assert.Equal(0, list.Code);
        Assert.Contains("alpha", list.Out);

        var stats = await Run("kb", "stats", "--kb", "alpha");
        Assert.Equal(0, stats.Code);
        Assert.Contains("a.txt", stats.Out);
        Assert.Matches(@"documents\s*│\s*1", stats.Out);

        var missing = await Run("kb", "stats", "--kb", "nope");
        Assert.Equal(1, missing.Code);
        Assert.Contains("knowledge base 'nope' not found", missing.Err);

        var refused = await Run((IChatClient?)null, "n\n", "kb", "delete", "--kb", "alpha");
        Assert.Equal(1, refused.Code);
        Assert.Contains("not deleted", refused.Err);
        Assert.Contains("alpha", (await Run("kb", "list")).Out);

        var deleted = await Run("kb", "delete", "--kb", "alpha", "--yes");
        Assert.Equal(0, deleted.Code);
        Assert.Contains("deleted knowledge base 'alpha'", deleted.Out);
        Assert.Contains("no knowledge bases", (await Run("kb", "list")).Out);
    }

    [Fact]
    public async Task AskWithoutKbBuildsTheSamplesKbThenStreamsAnAnswerWithCitations()
    {
        var chat = new ScriptedChatClient(_ => "孔乙己还欠咸亨酒店十九个钱[1]，[5]。");
        var r = await Run(chat, null, "ask", "孔乙己欠了咸亨酒店多少钱？", "--top-k", "3");
        Assert.Equal(0, r.Code);
        Assert.Contains("knowledge base 'samples' not found", r.Err);
        Assert.Contains("indexing the sample documents", r.Err);
        Assert.StartsWith("孔乙己还欠咸亨酒店十九个钱[1]，。", r.Out);
        Assert.Contains("参考来源：", r.Out);
        Assert.Matches(@"\[1\] .*kongyiji\.md › 孔乙己 \(字符 \d+–\d+\)", r.Out);
        Assert.Contains("removed citation(s) [5]", r.Err);
        Assert.Equal(1, chat.Calls);

        // Second time the knowledge base exists: no indexing message.
        var again = await Run(chat, null, "ask", "藤野先生是哪里的老师？");
        Assert.Equal(0, again.Code);
        Assert.DoesNotContain("indexing", again.Err);
    }

    [Fact]
    public async Task AskWithPromptsOverrideAndMissingTemplate()
    {
        string prompts = RagFixtures.CopyPrompts(_temp.File("prompts"));
        File.WriteAllText(Path.Combine(prompts, "no_answer", "skprompt.txt"), "自定义：文档里没有这个。");
        var chat = new ScriptedChatClient(_ => throw new InvalidOperationException("must not be called"));
        var r = await Run(chat, null, "ask", "量子计算机的原理是什么？", "--prompts", prompts);
        Assert.Equal(0, r.Code);
        Assert.Equal("自定义：文档里没有这个。", r.Out.Trim());
        Assert.Equal(0, chat.Calls);

        File.Delete(Path.Combine(prompts, "qa", "skprompt.txt"));
        var missing = await Run(chat, null, "ask", "孔乙己是谁？", "--prompts", prompts);
        Assert.Equal(1, missing.Code);
        Assert.Contains($"error: {Path.Combine(prompts, "qa", "skprompt.txt")}: prompt template 'qa' is missing", missing.Err);
    }

    [Fact]
    public async Task SummarizeAFileAndAKnowledgeBaseSource()
    {
        var chat = new ScriptedChatClient(p => p.Contains("<片段>") ? "片段摘要。" : "全文摘要。");
        string file = Path.Combine(RagFixtures.SamplesDir, "guxiang.md");
        var r = await Run(chat, null, "summarize", file, "--length", "short");
        Assert.Equal(0, r.Code);
        Assert.Equal("全文摘要。", r.Out.Trim()); // guxiang.md (5k chars) does not fit one 2048-token call
        Assert.Matches(@"\d+ chunk\(s\), \d+ map call\(s\), \d+ reduce call\(s\)", r.Err);

        Assert.Equal(0, (await Run("ingest", RagFixtures.SamplesDir, "--kb", "s")).Code);
        var fromKb = await Run(chat, null, "summarize", "--kb", "s", "--source", "fengzheng.md");
        Assert.Equal(0, fromKb.Code);
        Assert.Equal("片段摘要。", fromKb.Out.Trim()); // fengzheng.md (1.3k chars) fits one call
        Assert.Contains("我是向来不爱放风筝的", chat.UserPrompts.Last()); // the stored text was rebuilt from the KB

        var neither = await Run(chat, null, "summarize");
        Assert.Equal(1, neither.Code);
        Assert.Contains("exactly one of FILE or --kb", neither.Err);
        var noSource = await Run(chat, null, "summarize", "--kb", "s", "--source", "missing.md");
        Assert.Contains("--source 'missing.md' matches no document", noSource.Err);
    }

    [Fact]
    public async Task EvalRagRetrievalOnlyWritesTheMarkdownTable()
    {
        string data = _temp.Write("tiny.json", """
            {"data":[{"id":"A","title":"t","paragraphs":[{"id":"A","context":"孔乙己在咸亨酒店还欠十九个钱。","qas":[
              {"id":"A_Q","question":"孔乙己欠了多少钱？","answers":[{"text":"十九个钱","answer_start":11}]}]}]},
             {"id":"B","title":"t","paragraphs":[{"id":"B","context":"藤野先生是仙台医学专门学校的解剖学教授。","qas":[
              {"id":"B_Q","question":"藤野先生教什么？","answers":[{"text":"解剖学","answer_start":14}]}]}]}]}
            """);
        string md = _temp.File("eval.md");
        var r = await Run("eval-rag", "--dataset", data, "--no-generate", "--embedding", "hashing", "--out", md);
        Assert.Equal(0, r.Code);
        foreach (var mode in new[] { "keyword", "dense", "hybrid" }) Assert.Contains($"| {mode} | 2 |", r.Out);
        Assert.Equal(r.Out, File.ReadAllText(md));

        var chat = new ScriptedChatClient(_ => "十九个钱[1]");
        var answered = await Run(chat, null, "eval-rag", "--dataset", data, "--limit", "1", "--embedding", "hashing");
        Assert.Equal(0, answered.Code);
        Assert.Contains("| hybrid | 1 | 100.0 | 100.0 | 0 |", answered.Out); // EM and F1 of the one question asked
        Assert.Contains("2 unchanged", answered.Out);                         // the contexts were indexed by the first run
        Assert.Equal(1, chat.Calls);

        var bad = await Run("eval-rag", "--dataset", _temp.File("none.json"), "--no-generate");
        Assert.Equal(1, bad.Code);
        Assert.Contains("--dataset", bad.Err);
    }

    [Fact]
    public async Task ConfigurationErrorsNameTheKey()
    {
        Environment.SetEnvironmentVariable("GLM_Embedding__Provider", "bogus");
        try
        {
            var r = await Run("ingest", RagFixtures.SamplesDir, "--kb", "x");
            Assert.Equal(1, r.Code);
            Assert.Contains("Embedding:Provider = 'bogus'", r.Err);
            var overridden = await Run("ingest", RagFixtures.SamplesDir, "--kb", "x", "--embedding", "hashing", "--verbose");
            Assert.Equal(0, overridden.Code); // the option beats the environment variable
            Assert.Contains("dbug: ingest: Added", overridden.Err);
            var keywordOnly = await Run("ingest", RagFixtures.SamplesDir, "--kb", "x", "--embedding", "none");
            Assert.Contains("holds 256-dimension embeddings but no embedding model is configured", keywordOnly.Err);
        }
        finally { Environment.SetEnvironmentVariable("GLM_Embedding__Provider", null); }
    }
}
