using System.Diagnostics;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Stores;
using Xunit.Abstractions;

namespace AgentHost.Tests.Rag;

/// <summary>Throughput and latency on 100k synthetic chunks. Run with GLM_BENCH=1 (excluded otherwise).</summary>
public class KnowledgeBaseBenchmark(ITestOutputHelper output)
{
    [EnvFact("GLM_BENCH", "set GLM_BENCH=1 to run the 100k-chunk knowledge-base benchmark")]
    [Trait("Category", "Benchmark")]
    public async Task Ingest_and_hybrid_query_100k_chunks()
    {
        using var tmp = new TempFolder();
        var random = new Random(42);
        const string hanzi = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈剑号巨阙珠称夜光果珍李柰菜重芥姜海咸河淡鳞潜羽翔";
        string Sentence() => new string(Enumerable.Range(0, random.Next(12, 30)).Select(_ => hanzi[random.Next(hanzi.Length)]).ToArray()) + "。";
        const int files = 500, sentencesPerFile = 1000; // ~400 chunks per file at 64 tokens → ~200k chunks (≥ 100k asserted)
        for (int f = 0; f < files; f++)
            tmp.Write($"corpus/{f:D4}.txt", $"第{f + 1}章 合成\n" + string.Concat(Enumerable.Range(0, sentencesPerFile).Select(_ => Sentence())));

        using var kb = new SqliteKnowledgeBase(tmp.File("bench.db"));
        var pipeline = new IngestionPipeline(kb, new IngestionOptions { Chunking = new ChunkingOptions(64, 0) }, new HashingEmbeddingGenerator());
        var report = await pipeline.IngestAsync([tmp.File("corpus")]);
        var stats = kb.Stats();
        output.WriteLine($"ingest: {stats.Chunks} chunks in {report.Elapsed.TotalSeconds:F1} s = {report.ChunksPerSecond:F0} chunks/s (incl. hashing embeddings), db {stats.FileBytes / 1e6:F0} MB");
        Assert.True(stats.Chunks >= 100_000, $"{stats.Chunks} chunks");

        var warm = Stopwatch.StartNew();
        kb.HybridSearch("天地", HashingEmbeddingGenerator.Embed("天地"), 10);
        output.WriteLine($"first hybrid query (loads vector index): {warm.ElapsedMilliseconds} ms");
        var latencies = new List<double>();
        for (int q = 0; q < 100; q++)
        {
            string query = Sentence()[..random.Next(2, 8)];
            var vector = HashingEmbeddingGenerator.Embed(query);
            var watch = Stopwatch.StartNew();
            var hits = kb.HybridSearch(query, vector, 10);
            latencies.Add(watch.Elapsed.TotalMilliseconds);
            Assert.NotEmpty(hits);
        }
        latencies.Sort();
        output.WriteLine($"hybrid query over {stats.Chunks} chunks: p50 {latencies[49]:F1} ms, p95 {latencies[94]:F1} ms, max {latencies[^1]:F1} ms");
    }
}
