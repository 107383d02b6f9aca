using System.Text;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Stores;

namespace AgentHost.Tests.Rag;

public class IngestionPipelineTests
{
    private static readonly IngestionOptions Small = new() { Chunking = new ChunkingOptions(40, 8) };

    private static string Novel(int chapters, string tag) => string.Join("\n", Enumerable.Range(1, chapters).Select(c =>
        $"第{c}回 {tag}章回{c}\n" + string.Concat(Enumerable.Range(0, 12).Select(s => $"{tag}第{c}回第{s}句讲述了一段故事。"))));

    private static IngestionPipeline Pipeline(IKnowledgeBase kb, bool sync = false, HashingEmbeddingGenerator? gen = null) =>
        new(kb, Small with { Sync = sync }, gen ?? new HashingEmbeddingGenerator());

    [Fact]
    public async Task Ingests_each_format_and_reports_unsupported_files()
    {
        using var tmp = new TempFolder();
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        tmp.WriteBytes("docs/gbk.txt", Encoding.GetEncoding(936).GetBytes("第一章 简介\n这是用国标码保存的文件，内容讲述黄河。"));
        tmp.Write("docs/readme.md", "# 长江\n\n长江是中国第一长河。");
        tmp.Write("docs/page.html", "<h1>泰山</h1><p>泰山位于山东。</p>");
        tmp.WriteBytes("docs/w.docx", ExtractionTests.MakeDocx(("Heading1", "华山"), (null, "华山在陕西。")));
        tmp.WriteBytes("docs/image.png", [0x89, 0x50, 0x4E, 0x47]);
        using var kb = new SqliteKnowledgeBase(tmp.File("kb.db"));
        var events = new List<IngestionProgress>();

        var report = await Pipeline(kb).IngestAsync([tmp.File("docs")], events.Add);

        Assert.Equal(4, report.Count(FileOutcome.Added));
        var skipped = report.Files.Single(f => f.Outcome == FileOutcome.Skipped);
        Assert.Contains("unsupported format '.png'", skipped.Message);
        Assert.Equal(10, events.Count); // before + after each of 5 files
        Assert.Equal("第一章 简介", kb.KeywordSearch("黄河", 3).Single().Section);
        Assert.Single(kb.KeywordSearch("长江", 3));
        Assert.Equal("泰山", kb.KeywordSearch("山东", 3).Single().Section);
        Assert.Equal("华山", kb.KeywordSearch("陕西", 3).Single().Section);
    }

    [Fact]
    public async Task Reingest_skips_unchanged_replaces_changed_and_sync_removes_deleted()
    {
        using var tmp = new TempFolder();
        string a = tmp.Write("d/a.txt", Novel(3, "甲")), b = tmp.Write("d/b.txt", Novel(2, "乙")), c = tmp.Write("d/c.txt", Novel(1, "丙"));
        using var kb = new SqliteKnowledgeBase(tmp.File("kb.db"));
        var gen = new HashingEmbeddingGenerator();
        var first = await Pipeline(kb, gen: gen).IngestAsync([tmp.File("d")]);
        Assert.Equal(3, first.Count(FileOutcome.Added));
        int chunksBefore = kb.Stats().Chunks;

        int callsBefore = gen.Calls;
        var second = await Pipeline(kb, gen: gen).IngestAsync([tmp.File("d")]);
        Assert.Equal(3, second.Count(FileOutcome.Unchanged));
        Assert.Equal(callsBefore, gen.Calls); // unchanged files are not re-embedded
        Assert.Equal(chunksBefore, kb.Stats().Chunks);

        File.WriteAllText(b, Novel(2, "丁"));
        File.Delete(c);
        var third = await Pipeline(kb, sync: true, gen: gen).IngestAsync([tmp.File("d")]);
        Assert.Equal(FileOutcome.Updated, third.Files.Single(f => f.Path == b).Outcome);
        Assert.Equal(FileOutcome.Removed, third.Files.Single(f => f.Path == c).Outcome);
        Assert.Equal(FileOutcome.Unchanged, third.Files.Single(f => f.Path == a).Outcome);
        Assert.Empty(kb.KeywordSearch("\"乙第1回\"", 5));
        Assert.NotEmpty(kb.KeywordSearch("\"丁第1回\"", 5));
        Assert.Empty(kb.KeywordSearch("\"丙第1回\"", 5));
        Assert.Equal([a, b], kb.ListSources().Select(d => d.Source));
    }

    [Fact]
    public async Task Bad_inputs_are_reported_per_file_and_the_rest_is_ingested()
    {
        using var tmp = new TempFolder();
        tmp.Write("in/good.txt", "好的文件，内容完整。");
        tmp.WriteBytes("in/empty.txt", []);
        var random = new byte[2048];
        new Random(1).NextBytes(random);
        tmp.WriteBytes("in/binary.txt", random);
        tmp.WriteBytes("in/broken.pdf", Encoding.ASCII.GetBytes("%PDF-1.4 garbage"));
        string unreadable = tmp.Write("in/secret.txt", "秘密。");
        File.SetUnixFileMode(unreadable, UnixFileMode.None);
        string missing = tmp.File("nowhere/missing.txt");
        using var kb = new SqliteKnowledgeBase(tmp.File("kb.db"));

        var report = await Pipeline(kb).IngestAsync([tmp.File("in"), missing]);

        Assert.Equal(FileOutcome.Added, report.Files.Single(f => f.Path.EndsWith("good.txt")).Outcome);
        string Message(string name) => report.Failures.Single(f => f.Path.EndsWith(name)).Message!;
        Assert.Contains("file is empty", Message("empty.txt"));
        Assert.Contains("binary", Message("binary.txt"));
        Assert.Contains("not a readable PDF", Message("broken.pdf"));
        Assert.Contains("no such file or folder", Message("missing.txt"));
        if (Environment.UserName != "root") Assert.Contains("cannot read file", Message("secret.txt"));
        Assert.All(report.Failures, f => Assert.Contains(f.Path, f.Message));
        Assert.Equal(["good.txt"], kb.ListSources().Select(d => Path.GetFileName(d.Source)).Except(["secret.txt"]));
    }

    [Fact]
    public async Task Interrupted_ingestion_resumes_to_a_complete_duplicate_free_index()
    {
        using var tmp = new TempFolder();
        for (int i = 0; i < 4; i++) tmp.Write($"d/{i}.txt", Novel(3, "戊己庚辛"[i].ToString()));
        string dbPath = tmp.File("kb.db");
        int documentStarts = 0;
        using (var kb = new SqliteKnowledgeBase(dbPath))
        {
            // Ctrl-C in the middle of the third document's chunk writes.
            kb.AfterChunkWritten = ordinal =>
            {
                if (ordinal == 0) documentStarts++;
                if (documentStarts == 3 && ordinal == 4) throw new OperationCanceledException("simulated interrupt");
            };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Pipeline(kb).IngestAsync([tmp.File("d")]));
            Assert.Equal(2, kb.ListSources().Count); // the partly written document was rolled back
        }
        await AssertResumesCompletely(tmp, dbPath);
    }

    [Fact]
    public async Task On_disk_state_at_a_kill_point_recovers_to_a_complete_index()
    {
        using var tmp = new TempFolder();
        for (int i = 0; i < 4; i++) tmp.Write($"d/{i}.txt", Novel(3, "戊己庚辛"[i].ToString()));
        string dbPath = tmp.File("live.db"), killed = tmp.File("kb.db");
        int documentStarts = 0;
        using (var kb = new SqliteKnowledgeBase(dbPath))
        {
            // Copy the database files exactly as they are on disk mid-transaction: what a SIGKILL would leave behind.
            kb.AfterChunkWritten = ordinal =>
            {
                if (ordinal == 0) documentStarts++;
                if (documentStarts != 3 || ordinal != 6) return;
                foreach (var suffix in new[] { "", "-wal", "-journal" })
                    if (File.Exists(dbPath + suffix)) File.Copy(dbPath + suffix, killed + suffix);
            };
            await Pipeline(kb).IngestAsync([tmp.File("d")]);
        }
        Assert.True(File.Exists(killed));
        using (var recovered = new SqliteKnowledgeBase(killed)) Assert.Equal(2, recovered.ListSources().Count);
        await AssertResumesCompletely(tmp, killed);
    }

    private static async Task AssertResumesCompletely(TempFolder tmp, string dbPath)
    {
        using var kb = new SqliteKnowledgeBase(dbPath);
        var rerun = await Pipeline(kb).IngestAsync([tmp.File("d")]);
        Assert.Equal(2, rerun.Count(FileOutcome.Unchanged));
        Assert.Equal(2, rerun.Count(FileOutcome.Added));

        using var reference = new SqliteKnowledgeBase(tmp.File("reference.db"));
        await Pipeline(reference).IngestAsync([tmp.File("d")]);
        Assert.Equal(reference.Stats() with { Name = "", FilePath = "", FileBytes = 0 }, kb.Stats() with { Name = "", FilePath = "", FileBytes = 0 });
        foreach (string tag in new[] { "戊", "己", "庚", "辛" })
        {
            var hits = kb.KeywordSearch($"\"{tag}第2回第3句\"", 100);
            Assert.NotEmpty(hits);
            Assert.Equal(hits.Count, hits.Select(h => (h.Source, h.Ordinal)).Distinct().Count()); // no duplicates
            Assert.Equal(reference.KeywordSearch($"\"{tag}第2回第3句\"", 100).Select(h => h.Text).Order(), hits.Select(h => h.Text).Order());
        }
    }
}
