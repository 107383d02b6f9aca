using AgentHost.Rag.Chunking;

namespace AgentHost.Tests.Rag;

public class ChunkerTests
{
    private static int CharCount(string s) => s.Count(c => !char.IsWhiteSpace(c));

    [Fact]
    public void Sentences_split_on_chinese_and_latin_ends_keeping_closing_quotes()
    {
        const string text = "他说：“走吧！”我们便走了。天黑了吗？没有…… It is 3.14 now. Done";
        var sentences = TextSplitting.Sentences(text, 0, text.Length).Select(r => text[r.Start..r.End]).ToList();
        Assert.Equal(["他说：“走吧！”", "我们便走了。", "天黑了吗？", "没有……", "It is 3.14 now.", "Done"], sentences);
    }

    [Fact]
    public void Chunks_respect_target_never_cut_sentences_and_offsets_match_text()
    {
        var sentences = Enumerable.Range(0, 40).Select(i => $"这是第{i}个句子，内容用来测试分块。").ToList();
        string text = string.Join("", sentences.Take(20)) + "\n\n" + string.Join("", sentences.Skip(20));
        var chunker = new ChineseChunker(CharCount, new ChunkingOptions(TargetTokens: 60, OverlapTokens: 20));
        var chunks = chunker.Chunk(text);

        Assert.True(chunks.Count > 5);
        foreach (var c in chunks)
        {
            Assert.Equal(text[c.StartOffset..c.EndOffset], c.Text);
            Assert.True(c.TokenCount <= 60, $"chunk {c.Ordinal} has {c.TokenCount} tokens");
            Assert.EndsWith("。", c.Text); // every chunk ends at a sentence end
            Assert.True(c.StartOffset == 0 || "。\n".Contains(text[c.StartOffset - 1]), $"chunk {c.Ordinal} starts mid-sentence");
        }
        // Overlap: each chunk after the first starts before the previous one ends.
        for (int i = 1; i < chunks.Count; i++) Assert.True(chunks[i].StartOffset < chunks[i - 1].EndOffset);
        // Coverage: every sentence is inside some chunk.
        foreach (var s in sentences) Assert.Contains(chunks, c => c.Text.Contains(s));
    }

    [Fact]
    public void Headings_become_section_paths_and_chunks_do_not_cross_sections()
    {
        const string text = "前言文字。\n第一回 宴桃园豪杰三结义\n话说天下大势，分久必合，合久必分。\n第一节 起因\n桃园结义。\n第二回 张翼德怒鞭督邮\n且说董卓字仲颖。";
        var headings = TextSplitting.DetectHeadings(text);
        Assert.Equal(["第一回 宴桃园豪杰三结义", "第一节 起因", "第二回 张翼德怒鞭督邮"], headings.Select(h => h.Title));

        var chunks = new ChineseChunker(CharCount, new ChunkingOptions(100, 10)).Chunk(text, headings);
        Assert.Equal(["", "第一回 宴桃园豪杰三结义", "第一回 宴桃园豪杰三结义 > 第一节 起因", "第二回 张翼德怒鞭督邮"], chunks.Select(c => c.Section));
        Assert.Equal("桃园结义。", chunks[2].Text);
        Assert.Equal("第一回 宴桃园豪杰三结义 > 第一节 起因\n桃园结义。", chunks[2].RetrievalText);
        Assert.Equal("且说董卓字仲颖。", chunks[3].Text);
    }

    [Fact]
    public void A_sentence_longer_than_the_target_is_cut_at_commas()
    {
        string longSentence = string.Join("，", Enumerable.Repeat("天地玄黄宇宙洪荒", 20)) + "。";
        var chunks = new ChineseChunker(CharCount, new ChunkingOptions(40, 0)).Chunk(longSentence);
        Assert.True(chunks.Count >= 4);
        Assert.All(chunks, c => Assert.True(c.TokenCount <= 40));
        Assert.All(chunks.SkipLast(1), c => Assert.EndsWith("，", c.Text));
        Assert.Equal(longSentence, string.Concat(chunks.Select(c => c.Text)));
    }

    [Fact]
    public void Invalid_sizes_are_rejected_with_a_clear_message()
    {
        var e = Assert.Throws<Glm.Engine.GlmException>(() => new ChineseChunker(CharCount, new ChunkingOptions(100, 100)));
        Assert.Contains("overlap 100", e.Message);
    }

    [SharedFileFact("data/corpus/luxun/nahan.txt")]
    public void Chunks_a_real_chinese_novel_without_losing_text()
    {
        string text = File.ReadAllText(RagPaths.Shared("data/corpus/luxun/nahan.txt"));
        var chunks = new ChineseChunker(TokenCounters.Approximate, new ChunkingOptions(200, 0)).Chunk(text, TextSplitting.DetectHeadings(text));
        int covered = chunks.Sum(c => c.Text.Count(ch => !char.IsWhiteSpace(ch)));
        int total = text.Count(ch => !char.IsWhiteSpace(ch)) - TextSplitting.DetectHeadings(text).Sum(h => h.Title.Count(ch => !char.IsWhiteSpace(ch)));
        Assert.Equal(total, covered);
        Assert.All(chunks, c => Assert.True(c.TokenCount <= 200));
    }
}
