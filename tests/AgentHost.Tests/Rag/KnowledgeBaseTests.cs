using AgentHost.Rag.Chunking;
using AgentHost.Rag.Stores;
using Glm.Engine;

namespace AgentHost.Tests.Rag;

public class KnowledgeBaseTests
{
    private static DocumentUpsert Doc(string source, bool embed, params (string Section, string Text)[] chunks)
    {
        var list = chunks.Select((c, i) => new TextChunk(i, c.Text, c.Section, i * 100, i * 100 + c.Text.Length, c.Text.Length)).ToList();
        var vectors = embed ? list.Select(c => (ReadOnlyMemory<float>)HashingEmbeddingGenerator.Embed(c.RetrievalText)).ToList() : null;
        return new DocumentUpsert(source, "h-" + source, "txt", 1000, list, vectors);
    }

    private static SqliteKnowledgeBase SmallCorpus(TempFolder tmp, bool embed = true)
    {
        var kb = new SqliteKnowledgeBase(tmp.File("kb.db"));
        kb.UpsertDocument(Doc("/a.txt", embed, ("第一回", "林黛玉进贾府，见了外祖母。"), ("第一回", "贾宝玉摔玉，众人慌忙去拾。")));
        kb.UpsertDocument(Doc("/b.txt", embed, ("总则", "知识库使用混合检索，结合关键词与向量。"), ("附则", "本办法自发布之日起施行。")));
        kb.UpsertDocument(Doc("/c.txt", embed, ("", "Qdrant supports sparse vectors and RRF fusion.")));
        return kb;
    }

    [Fact]
    public void Keyword_search_finds_two_char_and_one_char_chinese_queries()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        Assert.Equal("林黛玉进贾府，见了外祖母。", kb.KeywordSearch("黛玉", 5)[0].Text);
        Assert.Equal("贾宝玉摔玉，众人慌忙去拾。", kb.KeywordSearch("摔", 5).Single().Text);
        Assert.Equal("/c.txt", kb.KeywordSearch("RRF", 5).Single().Source);
        Assert.Empty(kb.KeywordSearch("孙悟空", 5));
        Assert.Empty(kb.KeywordSearch("，。", 5)); // punctuation only: no terms, no error
    }

    [Fact]
    public void Quoted_query_is_an_exact_substring_via_trigram_index()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        Assert.Equal("/b.txt", kb.KeywordSearch("\"混合检索\"", 5).Single().Source);
        Assert.Empty(kb.KeywordSearch("\"混合向量\"", 5)); // both bigram-matching words present, but not as a substring
    }

    [Fact]
    public void Section_titles_are_searchable_and_filters_restrict_results()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        Assert.Equal("本办法自发布之日起施行。", kb.KeywordSearch("附则", 5).Single().Text);
        Assert.All(kb.KeywordSearch("玉", 5, new SearchFilter(Sources: ["/a.txt"])), h => Assert.Equal("/a.txt", h.Source));
        Assert.Empty(kb.KeywordSearch("黛玉", 5, new SearchFilter(Sources: ["/b.txt"])));
        Assert.Single(kb.VectorSearch(HashingEmbeddingGenerator.Embed("总则 检索"), 5, new SearchFilter(SectionContains: "总则")));
    }

    [Fact]
    public void Vector_search_ranks_the_most_similar_chunk_first()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        var hits = kb.VectorSearch(HashingEmbeddingGenerator.Embed("第一回\n贾宝玉摔玉"), 3);
        Assert.Equal("贾宝玉摔玉，众人慌忙去拾。", hits[0].Text);
        Assert.True(hits[0].Score > hits[1].Score);
        var e = Assert.Throws<GlmException>(() => kb.VectorSearch(new float[8], 3));
        Assert.Contains("8 dimensions", e.Message);
    }

    [Fact]
    public void Hybrid_search_fuses_rankings_with_reciprocal_rank_fusion()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        const string query = "贾宝玉 检索";
        var queryVector = HashingEmbeddingGenerator.Embed(query);
        var keyword = kb.KeywordSearch(query, 50);
        var vector = kb.VectorSearch(queryVector, 50);
        var hybrid = kb.HybridSearch(query, queryVector, 3);

        // Expected order computed independently from the two rankings: Σ 1/(60 + rank).
        var expected = keyword.Select((h, r) => (h.ChunkId, 1.0 / (61 + r)))
            .Concat(vector.Select((h, r) => (h.ChunkId, 1.0 / (61 + r))))
            .GroupBy(x => x.ChunkId).Select(g => (Id: g.Key, Score: g.Sum(x => x.Item2)))
            .OrderByDescending(x => x.Score).Take(3).ToList();
        Assert.Equal(expected.Select(x => x.Id), hybrid.Select(h => h.ChunkId));
        Assert.Equal(expected[0].Score, hybrid[0].Score, 12);
        // A chunk found by both lists beats one found by only one of them.
        Assert.Contains(hybrid[0].ChunkId, keyword.Select(h => h.ChunkId));
        Assert.Contains(hybrid[0].ChunkId, vector.Select(h => h.ChunkId));
    }

    [Fact]
    public void Rrf_prefers_items_ranked_by_both_lists()
    {
        SearchHit H(long id) => new(id, "s", "", "t", 0, 1, 0, 0);
        var fused = ReciprocalRankFusion.Fuse([[H(1), H(2), H(3)], [H(3), H(4), H(1)]], 4);
        Assert.Equal([1L, 3L, 2L, 4L], fused.Select(h => h.ChunkId)); // 1: 1/61+1/63, 3: 1/63+1/61 (tie → first seen), 2: 1/62, 4: 1/62
    }

    [Fact]
    public void Keyword_only_knowledge_base_works_without_embeddings()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp, embed: false);
        Assert.Null(kb.EmbeddingDimensions);
        Assert.Empty(kb.VectorSearch(new float[256], 3));
        Assert.Equal("/a.txt", kb.HybridSearch("黛玉", null, 3)[0].Source);
        Assert.Equal(0, kb.Stats().EmbeddedChunks);
    }

    [Fact]
    public void Upsert_replaces_delete_removes_and_stats_count()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        kb.UpsertDocument(Doc("/a.txt", true, ("第二回", "贾雨村夤缘复旧职。")));
        Assert.Empty(kb.KeywordSearch("黛玉", 5));
        Assert.Single(kb.KeywordSearch("雨村", 5));
        Assert.True(kb.DeleteDocument("/b.txt"));
        Assert.False(kb.DeleteDocument("/b.txt"));
        Assert.Empty(kb.KeywordSearch("检索", 5));
        Assert.Equal(["/a.txt", "/c.txt"], kb.ListSources().Select(d => d.Source));
        var stats = kb.Stats();
        Assert.Equal((2, 2, 2, 256), (stats.Documents, stats.Chunks, stats.EmbeddedChunks, stats.EmbeddingDimensions!.Value));
        Assert.True(stats.FileBytes > 0);
    }

    [Fact]
    public void Embedding_dimension_mismatch_is_refused_and_nothing_is_written()
    {
        using var tmp = new TempFolder();
        using var kb = SmallCorpus(tmp);
        var chunk = new TextChunk(0, "新的内容。", "", 0, 5, 5);
        var e = Assert.Throws<GlmException>(() => kb.UpsertDocument(new DocumentUpsert("/d.txt", "h", "txt", 5, [chunk], [new float[128]])));
        Assert.Contains("128 dimensions", e.Message);
        Assert.Contains("256-dimension", e.Message);
        Assert.Null(kb.GetDocument("/d.txt"));
    }

    [Fact]
    public void Catalog_lists_opens_and_deletes_knowledge_bases()
    {
        using var tmp = new TempFolder();
        var catalog = new KnowledgeBaseCatalog(tmp.Path);
        Assert.Empty(catalog.ListKnowledgeBases());
        using (var kb = catalog.Open("法规")) kb.UpsertDocument(Doc("/x.txt", false, ("", "内容。")));
        using (catalog.Open("notes")) { }
        Assert.Equal(["notes", "法规"], catalog.ListKnowledgeBases());
        using (var reopened = catalog.Open("法规", mustExist: true)) Assert.Equal(1, reopened.Stats().Documents);
        Assert.True(catalog.Delete("notes"));
        Assert.Equal(["法规"], catalog.ListKnowledgeBases());
        Assert.Contains("not found", Assert.Throws<GlmException>(() => catalog.Open("notes", mustExist: true)).Message);
        Assert.Contains("invalid", Assert.Throws<GlmException>(() => catalog.PathFor("../evil")).Message);
    }

    [Fact]
    public void A_non_database_file_gives_a_clear_error()
    {
        using var tmp = new TempFolder();
        string path = tmp.Write("junk.db", new string('x', 5000));
        var e = Assert.Throws<GlmException>(() => new SqliteKnowledgeBase(path));
        Assert.Contains(path, e.Message);
    }
}
