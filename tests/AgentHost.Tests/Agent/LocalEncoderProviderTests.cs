using AgentHost.Cli;
using AgentHost.Cli.Verbs;
using AgentHost.Hosting;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Evaluation;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Stores;
using AgentHost.Tests.Rag;
using Glm.Connector;
using Glm.Engine;
using Glm.Engine.Encoders;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Tests.Agent;

/// <summary>The "bge" embedding provider and the cross-encoder reranker, wired through RagHost with tiny random BERT folders.</summary>
[Collection("RagHost")]
public sealed class LocalEncoderProviderTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private static readonly CliConsole Quiet = new(new StringWriter(), new StringWriter());

    public void Dispose() => _temp.Dispose();

    private Microsoft.Extensions.Hosting.IHost Build(string settingsJson)
    {
        using var hooks = RagHostHooks.Use(settingsFile: _temp.Write("appsettings.json", settingsJson));
        return RagHost.Build(Quiet, new Dictionary<string, string?>(), verbose: false);
    }

    private static string Json(string path) => path.Replace("\\", "\\\\");

    private static readonly string[] Documents =
    [
        "孔乙己在咸亨酒店还欠十九个钱。",
        "鲁迅先生在北京大学讲课。",
        "故乡的闰土在沙地里看瓜。",
        "中国的大学很多，北京也有大学。",
    ];

    private string WriteDocuments()
    {
        for (int i = 0; i < Documents.Length; i++) _temp.Write($"docs/d{i}.txt", Documents[i]);
        return _temp.File("docs");
    }

    [Fact]
    public async Task BgeProviderStoresVectorsOfTheModelsDimensionAndMarksQueries()
    {
        string model = TinyEncoders.WriteEmbeddingModel(_temp.File("bge-tiny"));
        using var host = Build($$"""{ "Embedding": { "Provider": "bge", "ModelDir": "{{Json(model)}}" } }""");
        var embedder = host.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        Assert.IsType<EncoderEmbeddingGenerator>(embedder);
        Assert.Equal(32, embedder.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);

        using var kb = new SqliteKnowledgeBase(_temp.File("bge.db"), "bge");
        var report = await new IngestionPipeline(kb, null, embedder).IngestAsync([WriteDocuments()]);
        Assert.Empty(report.Failures);
        var stats = kb.Stats();
        Assert.Equal(32, stats.EmbeddingDimensions);
        Assert.Equal(stats.Chunks, stats.EmbeddedChunks);

        // Passages are embedded as passages, queries (the retriever's input_type = query) with the model's instruction.
        using var reference = EncoderEmbeddingModel.Load(model);
        Assert.Equal("北京：", reference.QueryInstruction);
        var passage = (await embedder.GenerateAsync(["北京大学"]))[0].Vector.ToArray();
        var query = (await embedder.GenerateAsync(["北京大学"], EncoderEmbeddingGenerator.ForQueries()))[0].Vector.ToArray();
        Assert.Equal(reference.Embed("北京大学", isQuery: false), passage);
        Assert.Equal(reference.Embed("北京大学", isQuery: true), query);
        Assert.NotEqual(passage, query);

        var hits = await new Retriever(kb, embedder).SearchAsync("北京大学", RetrievalMode.Dense, 4);
        var expected = reference.Embed("北京大学", isQuery: true);
        var best = Documents.Select(d => (Doc: d, Cos: Dot(reference.Embed(d, isQuery: false), expected))).MaxBy(x => x.Cos).Doc;
        Assert.Equal(best, hits[0].Text.Trim());

        var bad = new EmbeddingGenerationOptions { AdditionalProperties = new() { [EncoderEmbeddingGenerator.InputTypeKey] = "questions" } };
        Assert.Contains("input_type = 'questions'", (await Assert.ThrowsAsync<GlmException>(() => embedder.GenerateAsync(["北京"], bad))).Message);
    }

    [Fact]
    public void LocalProvidersNameMissingOrBadSettings()
    {
        using (var host = Build("""{ "Embedding": { "Provider": "bge" } }"""))
            Assert.Contains("Embedding:ModelDir", Assert.Throws<GlmException>(() => host.Services.GetService<IEmbeddingGenerator<string, Embedding<float>>>()).Message);
        using (var host = Build("""{ "Embedding": { "Provider": "bge", "ModelDir": "/no/such/bge" } }"""))
            Assert.Contains("'/no/such/bge'", Assert.Throws<GlmException>(() => host.Services.GetService<IEmbeddingGenerator<string, Embedding<float>>>()).Message);
        using (var host = Build("""{ "Embedding": { "Provider": "glm", "ModelDir": "random:glm4-tiny", "Layer": 99 } }"""))
            Assert.Contains("Embedding:Layer = 99", Assert.Throws<GlmException>(() => host.Services.GetService<IEmbeddingGenerator<string, Embedding<float>>>()).Message);
        using (var host = Build("""{ "Rag": { "Reranker": { "ModelDir": "/no/such/reranker" } } }"""))
            Assert.Contains("Rag:Reranker:ModelDir = '/no/such/reranker'", Assert.Throws<GlmException>(() => host.Services.GetService<IPassageReranker>()).Message);
        Assert.Contains("Rag:Reranker:Candidates = 0", Assert.Throws<GlmException>(() => Build("""{ "Rag": { "Reranker": { "Candidates": 0 } } }""")).Message);
    }

    [AgentHost.Tests.Cli.SharedFileFact("data/tokenizers/chatglm3-6b/tokenizer.model")]
    public async Task GlmProviderEmbedsWithTheConfiguredLayer()
    {
        string dir = AgentHost.Tests.Cli.CliTestModel.ChatGlm3Folder(_temp.File("chatglm3-tiny"));
        using var host = Build($$"""{ "Embedding": { "Provider": "glm", "ModelDir": "{{Json(dir)}}", "Layer": 1 } }""");
        var embedder = host.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var model = embedder.GetService<GlmModel>()!;
        var vector = (await embedder.GenerateAsync(["孔乙己"], EncoderEmbeddingGenerator.ForQueries()))[0].Vector;
        Assert.Equal(model.EmbeddingDimensions, vector.Length);
        Assert.Equal(model.EmbedIds(model.Tokenizer!.Encode("孔乙己"), 1), vector.ToArray());
    }

    [Fact]
    public async Task RerankerReordersTheFusedCandidatesByCrossEncoderScores()
    {
        string rerankerDir = TinyEncoders.WriteReranker(_temp.File("reranker-tiny"));
        using var host = Build($$"""{ "Rag": { "Reranker": { "ModelDir": "{{Json(rerankerDir)}}", "Candidates": 10 } }, "Embedding": { "Provider": "hashing" } }""");
        using var kb = new SqliteKnowledgeBase(_temp.File("rr.db"), "rr");
        var embedder = host.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        Assert.Empty((await new IngestionPipeline(kb, null, embedder).IngestAsync([WriteDocuments()])).Failures);

        var retriever = AskVerb.CreateRetriever(host.Services, kb);
        Assert.True(retriever.HasReranker);
        const string query = "北京大学中国";
        var plain = await new Retriever(kb, embedder).SearchAsync(query, RetrievalMode.Hybrid, 10);
        var reranked = await retriever.SearchAsync(query, RetrievalMode.Hybrid, 10, rerank: true);
        Assert.Equal(plain.Count, reranked.Count);

        // Expected order: the fused candidates sorted by the cross-encoder's own scores.
        using var crossEncoder = CrossEncoderReranker.Load(rerankerDir);
        var scores = crossEncoder.Score(query, plain.Select(h => h.Section.Length > 0 ? h.Section + "\n" + h.Text : h.Text).ToList());
        var expected = plain.Select((h, i) => (h.ChunkId, Score: scores[i])).OrderByDescending(x => x.Score).Select(x => x.ChunkId).ToList();
        Assert.Equal(expected, reranked.Select(h => h.ChunkId));
        for (int i = 1; i < reranked.Count; i++) Assert.True(reranked[i - 1].Score >= reranked[i].Score);
        Assert.NotEqual(plain.Select(h => h.ChunkId), reranked.Select(h => h.ChunkId)); // random weights reorder them

        // The gated retrieval that ask and search_documents use is reranked too.
        var gated = await retriever.RetrieveRelevantAsync(query, RetrievalMode.Hybrid, 2, new RelevanceThresholds(0, 0));
        Assert.Equal(expected.Take(2), gated.Select(s => s.Hit.ChunkId));
    }

    [Fact]
    public async Task EvalRagReportsAHybridPlusRerankRow()
    {
        string rerankerDir = TinyEncoders.WriteReranker(_temp.File("reranker-tiny"));
        using var reranker = CrossEncoderPassageReranker.Load(rerankerDir);
        var data = EvalDataset.Load(_temp.Write("tiny.json", """
            {"version":"v1.0","data":[
             {"id":"T_0","title":"孔乙己","paragraphs":[{"id":"T_0","context":"孔乙己在咸亨酒店还欠十九个钱。","qas":[
               {"question":"孔乙己欠了多少钱？","id":"T_0_Q_0","answers":[{"text":"十九个钱","answer_start":10}]}]}]},
             {"id":"T_1","title":"故乡","paragraphs":[{"id":"T_1","context":"故乡的闰土在沙地里看瓜。","qas":[
               {"question":"闰土在沙地里看什么？","id":"T_1_Q_0","answers":[{"text":"瓜","answer_start":10}]}]}]}]}
            """));
        var embedder = new AgentHost.Rag.Llm.HashingEmbeddingGenerator();
        using var kb = new SqliteKnowledgeBase(_temp.File("eval.db"), "eval");
        var retriever = new Retriever(kb, embedder, reranker);
        var evaluator = new RagEvaluator(kb, retriever, new IngestionPipeline(kb, null, embedder), _temp.File("evaldocs"));
        var report = await evaluator.RunAsync(data, null, null, new AskOptions());
        Assert.Equal(["keyword", "dense", "hybrid", "hybrid + rerank"], report.Retrieval.Select(r => r.Label));
        Assert.Contains("| hybrid + rerank | 2 |", report.ToMarkdown());
    }

    private static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
