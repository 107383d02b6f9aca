using System.Diagnostics;
using System.Text;
using AgentHost.Rag.Stores;
using Microsoft.Data.Sqlite;

namespace AgentHost.Tests.Rag;

/// <summary>
/// Crash safety of <c>glm ingest</c> with a real kill: the built program (glm.dll, copied next to the tests) runs as a child
/// process, is killed with its whole process tree once the knowledge-base file shows committed documents, and is run again.
/// </summary>
public sealed class IngestionKillTests : IDisposable
{
    private const int Files = 40;
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>Enough text that ingestion takes a few seconds: 8 chapters × 60 sentences per file, each sentence unique.</summary>
    private static string Document(int file)
    {
        const string chars = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈剑号巨阙珠称夜光";
        var random = new Random(file);
        var text = new StringBuilder();
        for (int chapter = 1; chapter <= 8; chapter++)
        {
            text.Append($"第{chapter}章 文{file}章{chapter}\n");
            for (int s = 0; s < 60; s++)
            {
                for (int i = 0; i < 18; i++) text.Append(chars[random.Next(chars.Length)]);
                text.Append($"文{file}第{chapter}章第{s}句。");
            }
            text.Append('\n');
        }
        return text.ToString();
    }

    [Fact]
    public async Task Killed_ingest_process_resumes_to_the_same_index_as_a_clean_run()
    {
        for (int f = 0; f < Files; f++) _tmp.Write($"corpus/{f:D3}.txt", Document(f));
        string corpus = _tmp.File("corpus"), root = _tmp.File("kbs");
        var catalog = new KnowledgeBaseCatalog(root);
        string killedPath = catalog.PathFor("killed");

        // 1. Start ingesting and kill the process tree once some documents are committed.
        using (var child = Glm.Start(root, "killed", corpus))
        {
            var watch = Stopwatch.StartNew();
            int committed = 0;
            while (committed < 3)
            {
                Assert.False(child.Process.HasExited, $"glm ingest finished before it could be killed (exit {(child.Process.HasExited ? child.Process.ExitCode : 0)}, "
                    + $"{committed} documents seen); the corpus is too small for this machine. Output:\n{child.Output}");
                // A bound for a hung child only: about 1 s on an idle machine, far more on an overloaded one.
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(120), $"no committed documents after {watch.Elapsed}. Output:\n{child.Output}");
                await Task.Delay(25);
                committed = CommittedDocuments(killedPath);
            }
            child.Process.Kill(entireProcessTree: true);
            await child.Process.WaitForExitAsync();
        }

        // 2. What the kill left: only whole documents (recorded chunk count = chunk rows), and not all of them.
        Dictionary<string, DateTimeOffset> survivors;
        using (var kb = new SqliteKnowledgeBase(killedPath))
        {
            survivors = kb.ListSources().ToDictionary(d => d.Source, d => d.IngestedUtc);
            Assert.InRange(survivors.Count, 3, Files - 1);
        }
        Assert.Empty(PartialDocuments(killedPath));

        // 3. Run again, and ingest the same files cleanly into another knowledge base.
        var rerun = await Glm.RunAsync(root, "killed", corpus);
        Assert.True(rerun.ExitCode == 0, $"re-run failed (exit {rerun.ExitCode}):\n{rerun.Output}");
        var clean = await Glm.RunAsync(root, "clean", corpus);
        Assert.True(clean.ExitCode == 0, $"clean run failed (exit {clean.ExitCode}):\n{clean.Output}");

        using var resumed = new SqliteKnowledgeBase(killedPath);
        using var reference = new SqliteKnowledgeBase(catalog.PathFor("clean"));
        var docs = resumed.ListSources();
        Assert.Equal(Files, docs.Count);
        Assert.Equal(Files, docs.Select(d => d.Source).Distinct().Count()); // every document exactly once
        Assert.Equal(reference.ListSources().Select(d => (d.Source, d.ChunkCount, d.CharCount, d.ContentHash)),
            docs.Select(d => (d.Source, d.ChunkCount, d.CharCount, d.ContentHash)));
        Assert.Equal(reference.Stats() with { Name = "", FilePath = "", FileBytes = 0 }, resumed.Stats() with { Name = "", FilePath = "", FileBytes = 0 });
        Assert.Empty(PartialDocuments(killedPath));
        Assert.Equal(0, Scalar(killedPath, "SELECT count(*) FROM (SELECT d.source, c.text FROM chunks c JOIN documents d ON d.id = c.document_id GROUP BY 1, 2 HAVING count(*) > 1)"));
        foreach (var doc in docs) Assert.Equal(reference.ReadDocumentText(doc.Source), resumed.ReadDocumentText(doc.Source));
        foreach (int f in new[] { 0, Files / 2, Files - 1 }) // the keyword index holds each chunk once
        {
            string phrase = $"\"文{f}第5章第7句\"";
            Assert.Equal(reference.KeywordSearch(phrase, 100).Select(h => (h.Source, h.Ordinal)), resumed.KeywordSearch(phrase, 100).Select(h => (h.Source, h.Ordinal)));
        }
        // Documents committed before the kill were kept, not redone.
        foreach (var (source, ingested) in survivors) Assert.Equal(ingested, resumed.GetDocument(source)!.IngestedUtc);
    }

    private static int CommittedDocuments(string path)
    {
        if (!File.Exists(path)) return 0;
        try { return (int)Scalar(path, "SELECT count(*) FROM documents"); }
        catch (SqliteException) { return 0; } // schema not created yet, or busy
    }

    /// <summary>Documents whose recorded chunk count differs from their chunk rows.</summary>
    private static List<string> PartialDocuments(string path)
    {
        using var db = Open(path);
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT d.source FROM documents d LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id HAVING count(c.id) != d.chunk_count";
        using var reader = cmd.ExecuteReader();
        var bad = new List<string>();
        while (reader.Read()) bad.Add(reader.GetString(0));
        return bad;
    }

    private static long Scalar(string path, string sql)
    {
        using var db = Open(path);
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return (long)cmd.ExecuteScalar()!;
    }

    private static SqliteConnection Open(string path)
    {
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        return db;
    }

    /// <summary>The <c>glm</c> program next to the tests, run with <c>dotnet glm.dll</c> and an environment free of GLM_* settings.</summary>
    private sealed class Glm : IDisposable
    {
        private readonly StringBuilder _output = new();

        public Process Process { get; }

        public string Output { get { lock (_output) return _output.ToString(); } }

        private Glm(Process process) => Process = process;

        public static Glm Start(string kbRoot, string kb, string corpus)
        {
            string dll = Path.Combine(AppContext.BaseDirectory, "glm.dll");
            Assert.True(File.Exists(dll), $"{dll} not found; the test project references AgentHost, whose build output should be copied next to the tests");
            var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = AppContext.BaseDirectory,
            };
            foreach (var arg in new[] { dll, "ingest", corpus, "--kb", kb, "--kb-root", kbRoot, "--embedding", "hashing" }) info.ArgumentList.Add(arg);
            foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("GLM_", StringComparison.Ordinal) || k == "GLMSK_KB_ROOT").ToList())
                info.Environment.Remove(key);
            var glm = new Glm(new Process { StartInfo = info });
            glm.Process.OutputDataReceived += (_, e) => { lock (glm._output) glm._output.AppendLine(e.Data); };
            glm.Process.ErrorDataReceived += (_, e) => { lock (glm._output) glm._output.AppendLine(e.Data); };
            glm.Process.Start();
            glm.Process.BeginOutputReadLine();
            glm.Process.BeginErrorReadLine();
            return glm;
        }

        public static async Task<(int ExitCode, string Output)> RunAsync(string kbRoot, string kb, string corpus)
        {
            using var glm = Start(kbRoot, kb, corpus);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(300)); // hung-child bound; ~4 s normally
            await glm.Process.WaitForExitAsync(timeout.Token);
            return (glm.Process.ExitCode, glm.Output);
        }

        public void Dispose()
        {
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
            Process.Dispose();
        }
    }
}
