using AgentHost.Rag.Chunking;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Stores.VectorData;
using Microsoft.Extensions.VectorData;

namespace AgentHost.Tests.Rag.VectorData;

public sealed class SqliteKnowledgeChunkCollectionTests : IDisposable
{
    private readonly TempFolder _tmp = new();
    private readonly KnowledgeBaseCatalog _catalog;
    private readonly SqliteKnowledgeVectorStore _store;

    public SqliteKnowledgeChunkCollectionTests()
    {
        _catalog = new KnowledgeBaseCatalog(_tmp.File("kbs"));
        _store = new SqliteKnowledgeVectorStore(_catalog, new HashingEmbeddingGenerator());
    }

    public void Dispose()
    {
        _store.Dispose();
        _tmp.Dispose();
    }

    internal static KnowledgeChunk Chunk(string source, int ordinal, string section, string text, bool embed = true) => new()
    {
        Key = KnowledgeChunk.MakeKey(source, ordinal), Source = source, Ordinal = ordinal, Section = section, Text = text,
        StartOffset = ordinal * 100, EndOffset = ordinal * 100 + text.Length, TokenCount = text.Length,
        Embedding = embed ? HashingEmbeddingGenerator.Embed(section.Length == 0 ? text : section + "\n" + text) : null,
    };

    internal static readonly KnowledgeChunk[] Corpus =
    [
        Chunk("/a.txt", 0, "第一回", "林黛玉进贾府，见了外祖母。"),
        Chunk("/a.txt", 1, "第一回", "贾宝玉摔玉，众人慌忙去拾。"),
        Chunk("/b.txt", 0, "总则", "知识库使用混合检索，结合关键词与向量。"),
        Chunk("/b.txt", 1, "附则", "本办法自发布之日起施行。"),
        Chunk("/c#1.txt", 0, "", "Qdrant supports sparse vectors and RRF fusion."),
    ];

    private async Task<VectorStoreCollection<string, KnowledgeChunk>> Filled(string name = "kb")
    {
        var collection = _store.GetCollection<string, KnowledgeChunk>(name);
        await collection.EnsureCollectionExistsAsync();
        await collection.UpsertAsync(Corpus);
        return collection;
    }

    private static async Task<List<T>> List<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    [Fact]
    public async Task Collections_are_knowledge_base_files_created_listed_and_deleted()
    {
        var collection = _store.GetCollection<string, KnowledgeChunk>("notes");
        Assert.False(await collection.CollectionExistsAsync());
        var missing = await Assert.ThrowsAsync<VectorStoreException>(() => collection.UpsertAsync(Corpus[0]));
        Assert.Contains("collection 'notes' does not exist", missing.Message);
        Assert.Equal("notes", missing.CollectionName);
        Assert.Equal("Upsert", missing.OperationName);

        await collection.EnsureCollectionExistsAsync();
        Assert.True(await collection.CollectionExistsAsync());
        Assert.True(await _store.CollectionExistsAsync("notes"));
        Assert.True(File.Exists(_catalog.PathFor("notes")));
        Assert.Equal(["notes"], await List(_store.ListCollectionNamesAsync()));

        await collection.EnsureCollectionDeletedAsync();
        Assert.False(await collection.CollectionExistsAsync());
        Assert.False(File.Exists(_catalog.PathFor("notes")));
        Assert.Empty(await List(_store.ListCollectionNamesAsync()));
        await collection.EnsureCollectionDeletedAsync(); // idempotent

        var meta = (VectorStoreCollectionMetadata)collection.GetService(typeof(VectorStoreCollectionMetadata))!;
        Assert.Equal(("sqlite", _catalog.Root, "notes"), (meta.VectorStoreSystemName, meta.VectorStoreName, meta.CollectionName));
        Assert.Equal(_catalog.Root, ((VectorStoreMetadata)_store.GetService(typeof(VectorStoreMetadata))!).VectorStoreName);
        Assert.Contains("GetCollection<string, KnowledgeChunk>", Assert.Throws<NotSupportedException>(() => _store.GetCollection<int, KnowledgeChunk>("x")).Message);
        Assert.Throws<NotSupportedException>(() => _store.GetDynamicCollection("x", new VectorStoreCollectionDefinition()));
    }

    [Fact]
    public async Task Upsert_get_and_delete_round_trip_records_and_keep_the_indexes_in_step()
    {
        using var collection = await Filled();
        var got = await collection.GetAsync(KnowledgeChunk.MakeKey("/a.txt", 1));
        Assert.NotNull(got);
        Assert.Equal(("/a.txt", 1, "第一回", "贾宝玉摔玉，众人慌忙去拾。", 100, 113, 13), (got.Source, got.Ordinal, got.Section, got.Text, got.StartOffset, got.EndOffset, got.TokenCount));
        Assert.Null(got.Embedding); // vectors only on request
        var withVector = await collection.GetAsync("/c#1.txt#0", new RecordRetrievalOptions { IncludeVectors = true });
        Assert.Equal(Corpus[4].Embedding!.Value.ToArray(), withVector!.Embedding!.Value.ToArray());
        Assert.Null(await collection.GetAsync("/a.txt#9"));
        Assert.Null(await collection.GetAsync("no-ordinal"));

        // Replace one chunk: same count, keyword index sees the new text and no longer the old one.
        await collection.UpsertAsync(Chunk("/a.txt", 1, "第二回", "史湘云醉眠芍药裀。"));
        var kb = (SqliteKnowledgeBase)collection.GetService(typeof(SqliteKnowledgeBase))!;
        Assert.Equal((2, 5, 5), (kb.ListSources().Count(d => d.Source != "/c#1.txt"), kb.Stats().Chunks, kb.Stats().EmbeddedChunks));
        Assert.Empty(kb.KeywordSearch("摔玉", 5));
        Assert.Equal("/a.txt#1", Assert.Single(await List(collection.GetAsync(r => r.Section == "第二回", 10))).Key);
        Assert.Equal(2, kb.GetDocument("/a.txt")!.ChunkCount);
        Assert.Equal("", kb.GetDocument("/a.txt")!.ContentHash); // the next ingest of the file re-indexes it

        await collection.DeleteAsync(["/b.txt#0", "/b.txt#1", "/nowhere#0"]);
        Assert.Null(kb.GetDocument("/b.txt")); // its last chunk went
        Assert.Empty(kb.KeywordSearch("混合检索", 5));
        await collection.DeleteAsync("/a.txt#0");
        Assert.Equal(1, kb.GetDocument("/a.txt")!.ChunkCount);
        Assert.Equal(2, kb.Stats().Chunks);
    }

    [Fact]
    public async Task Invalid_records_name_the_field_and_the_expected_value()
    {
        using var collection = await Filled();
        var wrongKey = Chunk("/a.txt", 2, "", "文本。");
        wrongKey.Key = "/a.txt#3";
        var e = await Assert.ThrowsAsync<ArgumentException>(() => collection.UpsertAsync(wrongKey));
        Assert.Contains("record key '/a.txt#3' does not match Source '/a.txt' and Ordinal 2; expected '/a.txt#2'", e.Message);
        var shortVector = Chunk("/a.txt", 2, "", "文本。");
        shortVector.Embedding = new float[8];
        var dims = await Assert.ThrowsAsync<VectorStoreException>(() => collection.UpsertAsync([Chunk("/d.txt", 0, "", "好。"), shortVector]));
        Assert.Contains("8 dimensions", dims.Message);
        Assert.Contains("256-dimension", dims.Message);
        Assert.Null(await collection.GetAsync("/d.txt#0")); // the batch is one transaction
    }

    [Fact]
    public async Task Vector_search_matches_the_store_and_honours_filter_skip_threshold_and_vectors()
    {
        using var collection = await Filled();
        var kb = (SqliteKnowledgeBase)collection.GetService(typeof(SqliteKnowledgeBase))!;
        var query = HashingEmbeddingGenerator.Embed("第一回\n贾宝玉摔玉");
        var expected = kb.VectorSearch(query, 5);

        var all = await List(collection.SearchAsync(query, 5));
        Assert.Equal(expected.Select(h => (h.Source, h.Ordinal, h.Score)), all.Select(r => (r.Record.Source, r.Record.Ordinal, r.Score!.Value)));
        Assert.Equal("/a.txt#1", all[0].Record.Key);
        Assert.All(all, r => Assert.Null(r.Record.Embedding));

        var paged = await List(collection.SearchAsync(query, 2, new VectorSearchOptions<KnowledgeChunk> { Skip = 1, IncludeVectors = true }));
        Assert.Equal(all.Skip(1).Take(2).Select(r => r.Record.Key), paged.Select(r => r.Record.Key));
        Assert.All(paged, r => Assert.Equal(256, r.Record.Embedding!.Value.Length));

        double cut = all[1].Score!.Value;
        Assert.Equal(all.Take(2).Select(r => r.Record.Key),
            (await List(collection.SearchAsync(query, 5, new VectorSearchOptions<KnowledgeChunk> { ScoreThreshold = cut }))).Select(r => r.Record.Key));

        string source = "/b.txt";
        var filtered = await List(collection.SearchAsync(query, 5, new VectorSearchOptions<KnowledgeChunk> { Filter = r => r.Source == source }));
        Assert.Equal(["/b.txt#0", "/b.txt#1"], filtered.Select(r => r.Record.Key).Order());
        var both = await List(collection.SearchAsync(query, 5, new VectorSearchOptions<KnowledgeChunk> { Filter = r => r.Source == "/b.txt" && 1 == r.Ordinal }));
        Assert.Equal("本办法自发布之日起施行。", Assert.Single(both).Record.Text);
        Assert.Empty(await List(collection.SearchAsync(query, 5, new VectorSearchOptions<KnowledgeChunk> { Filter = r => r.Section == "第一回" && r.Source == "/b.txt" })));
    }

    [Fact]
    public async Task A_string_query_is_embedded_by_the_configured_generator_and_refused_without_one()
    {
        using var collection = await Filled();
        const string question = "贾宝玉摔玉";
        var byText = await List(collection.SearchAsync(question, 3));
        var byVector = await List(collection.SearchAsync(HashingEmbeddingGenerator.Embed(question), 3));
        Assert.Equal(byVector.Select(r => (r.Record.Key, r.Score)), byText.Select(r => (r.Record.Key, r.Score)));

        using var bare = new SqliteKnowledgeVectorStore(_catalog).GetCollection<string, KnowledgeChunk>("kb");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => List(bare.SearchAsync(question, 3)));
        Assert.Contains("no IEmbeddingGenerator<string, Embedding<float>>", e.Message);
        Assert.Contains("not supported", (await Assert.ThrowsAsync<NotSupportedException>(() => List(bare.SearchAsync(42, 3)))).Message);
        // A generator given through the definition's vector property is used too.
        var definition = new VectorStoreCollectionDefinition { Properties = [new VectorStoreVectorProperty(nameof(KnowledgeChunk.Embedding), 256) { EmbeddingGenerator = new HashingEmbeddingGenerator() }] };
        using var viaDefinition = new SqliteKnowledgeVectorStore(_catalog).GetCollection<string, KnowledgeChunk>("kb", definition);
        Assert.Equal(byText.Select(r => r.Record.Key), (await List(viaDefinition.SearchAsync(question, 3))).Select(r => r.Record.Key));
    }

    [Fact]
    public async Task Unsupported_filters_throw_naming_the_expression()
    {
        using var collection = await Filled();
        var query = HashingEmbeddingGenerator.Embed("检索");
        async Task<string> Refused(System.Linq.Expressions.Expression<Func<KnowledgeChunk, bool>> filter) =>
            (await Assert.ThrowsAsync<NotSupportedException>(() => List(collection.SearchAsync(query, 3, new VectorSearchOptions<KnowledgeChunk> { Filter = filter })))).Message;

        Assert.Contains("(GreaterThan) is not supported", await Refused(r => r.Ordinal > 0));
        Assert.Contains("(OrElse) is not supported", await Refused(r => r.Source == "/a.txt" || r.Source == "/b.txt"));
        Assert.Contains("(NotEqual) is not supported", await Refused(r => r.Source != "/a.txt"));
        Assert.Contains("filter on 'RowId'", await Refused(r => r.RowId == 1));
        Assert.Contains("needs a record field on one side", await Refused(r => r.Source == r.Section));
        Assert.Contains("AdditionalProperty", (await Assert.ThrowsAsync<NotSupportedException>(() => List(((IKeywordHybridSearchable<KnowledgeChunk>)collection)
            .HybridSearchAsync(query, ["检索"], 3, new HybridSearchOptions<KnowledgeChunk> { AdditionalProperty = r => r.Source })))).Message);
    }

    [Fact]
    public async Task Hybrid_search_is_the_stores_rrf_fusion_and_an_empty_vector_runs_keywords_alone()
    {
        using var collection = await Filled();
        var kb = (SqliteKnowledgeBase)collection.GetService(typeof(SqliteKnowledgeBase))!;
        var hybrid = (IKeywordHybridSearchable<KnowledgeChunk>)collection;
        const string query = "贾宝玉 检索";
        var vector = HashingEmbeddingGenerator.Embed(query);

        var expected = kb.HybridSearch(query, vector, 3);
        var fused = await List(hybrid.HybridSearchAsync(vector, ["贾宝玉", "检索"], 3));
        Assert.Equal(expected.Select(h => (h.Source, h.Ordinal, h.Score)), fused.Select(r => (r.Record.Source, r.Record.Ordinal, r.Score!.Value)));

        var keywordOnly = await List(hybrid.HybridSearchAsync(ReadOnlyMemory<float>.Empty, ["黛玉"], 5));
        Assert.Equal(kb.KeywordSearch("黛玉", 5).Select(h => (h.Source, h.Ordinal, h.Score)), keywordOnly.Select(r => (r.Record.Source, r.Record.Ordinal, r.Score!.Value)));
        Assert.Equal("/c#1.txt#0", Assert.Single(await List(hybrid.HybridSearchAsync(ReadOnlyMemory<float>.Empty, ["\"RRF fusion\""], 5))).Record.Key);

        var filtered = await List(hybrid.HybridSearchAsync(vector, ["贾宝玉", "检索"], 5, new HybridSearchOptions<KnowledgeChunk> { Filter = r => r.Source == "/b.txt", Skip = 1 }));
        Assert.All(filtered, r => Assert.Equal("/b.txt", r.Record.Source));
        Assert.Single(filtered); // two /b.txt chunks, the first skipped
        Assert.Equal("/a.txt#1", (await List(hybrid.HybridSearchAsync("摔玉", ["摔玉"], 1))).Single().Record.Key); // string via the generator
    }

    [Fact]
    public async Task Filtered_get_orders_pages_and_accepts_contains_for_the_hosts_filters()
    {
        using var collection = await Filled();
        var byOrdinalDesc = await List(collection.GetAsync(r => r.Source == "/a.txt", 10,
            new FilteredRecordRetrievalOptions<KnowledgeChunk> { OrderBy = o => o.Descending(r => r.Ordinal) }));
        Assert.Equal(["/a.txt#1", "/a.txt#0"], byOrdinalDesc.Select(r => r.Key));
        Assert.Equal(["/b.txt#0"], (await List(collection.GetAsync(r => true, 1, new FilteredRecordRetrievalOptions<KnowledgeChunk> { Skip = 2 }))).Select(r => r.Key));
        Assert.Equal(["/c#1.txt#0"], (await List(collection.GetAsync(r => r.Key == "/c#1.txt#0", 5))).Select(r => r.Key));

        var hostFilter = ChunkFilterTranslator.FromSearchFilter(new SearchFilter(Sources: ["/a.txt", "/c#1.txt"], SectionContains: "一"))!;
        Assert.Equal(["/a.txt#0", "/a.txt#1"], (await List(collection.GetAsync(hostFilter, 10))).Select(r => r.Key));
        string[] sources = ["/b.txt"]; // C# 14 binds this Contains to the span overload
        Assert.Equal(2, (await List(collection.GetAsync(r => sources.Contains(r.Source), 10))).Count);
    }
}
