using Glm.Engine.Training.Data;

namespace Glm.Engine.Tests.Training;

public class CorpusSplitTests
{
    private static readonly GlmSpecialTokens Ids = GlmSpecialTokens.GlmChinese;
    private const int C = 50002, E = 50000;

    [Fact]
    public void PlainFileHoldsOutTailAtLineBoundary()
    {
        string text = string.Join("\n", Enumerable.Range(0, 100).Select(i => $"第{i:D3}行文字"));
        var (train, val) = CorpusSplit.SplitFile("a.txt", text, 0.02, false);
        Assert.Equal(text, train.Single().Text + "\n" + val.Single().Text);
        Assert.StartsWith("第098行", val.Single().Text); // first line break at/after 98% of the characters
    }

    [Fact]
    public void HeaderFileHoldsOutWholeTrailingChapters()
    {
        var chapters = Enumerable.Range(0, 200).Select(i => $"=== DOC 书/第{i}章\n句子{i}。\n另一句。\n");
        string text = string.Join("\n", chapters);
        var (train, val) = CorpusSplit.SplitFile("cm.txt", text, 0.02, false);
        Assert.Equal(200, train.Count + val.Count);
        // As many trailing chapters as fit in 2% of the file's characters, and not one more.
        long held = val.Sum(d => (long)d.Text.Length), budget = (long)(0.02 * text.Length);
        Assert.True(held <= budget && held + train[^1].Text.Length > budget, $"held {held}, budget {budget}");
        Assert.Equal($"cm.txt#书/第{200 - val.Count}章", val[0].Source);
        Assert.Equal("句子199。\n另一句。", val[^1].Text);
        Assert.DoesNotContain(train.Concat(val), d => d.Text.Contains("=== DOC"));
    }

    [Fact]
    public void HardWrappedParagraphsAreJoined()
    {
        const string text = "　　标题\n\n　　第一段的开头，\n被硬换行了。\n　　第二段。";
        Assert.Equal("　　标题\n\n　　第一段的开头，被硬换行了。\n　　第二段。", CorpusSplit.JoinWrappedLines(text));
    }

    [Fact]
    public void LoadSkipsLicencesAndIsDeterministic()
    {
        string dir = TrainingData.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "b"));
        File.WriteAllText(Path.Combine(dir, "LICENSE-MIT.txt"), "licence text");
        File.WriteAllText(Path.Combine(dir, "b", "z.txt"), string.Join("\n", Enumerable.Range(0, 60).Select(i => $"b{i}")));
        File.WriteAllText(Path.Combine(dir, "a.txt"), string.Join("\n", Enumerable.Range(0, 60).Select(i => $"a{i}")));
        var split = CorpusSplit.Load(dir, 0.05);
        Assert.Equal(["a.txt", "b/z.txt"], split.Train.Select(d => d.Source));
        Assert.DoesNotContain(split.Train.Concat(split.Validation), d => d.Text.Contains("licence"));
        Assert.Equal(split.Validation.Select(d => d.Text), CorpusSplit.Load(dir, 0.05).Validation.Select(d => d.Text));
        Assert.Throws<GlmException>(() => CorpusSplit.Load(Path.Combine(dir, "missing")));
    }

    [TrainingDataFact("data/corpus/MANIFEST.tsv")]
    public void SharedCorpusSplitsAboutTwoPercent()
    {
        var split = CorpusSplit.Load(TrainingData.SharedPath("data/corpus"));
        long train = split.Train.Sum(d => (long)d.Text.Length), val = split.Validation.Sum(d => (long)d.Text.Length);
        double share = (double)val / (train + val);
        Assert.InRange(share, 0.015, 0.021);
        Assert.Equal(17, split.Validation.Count(d => !d.Source.StartsWith("classical-modern"))); // one tail per plain file
        Assert.Contains(split.Validation, d => d.Source.StartsWith("classical-modern/modern_target_subset.txt#"));
    }

    [Fact]
    public void PackedStreamInsertsEosAndResumesFromCursor()
    {
        var docs = new List<int[]> { new[] { 1, 2, 3 }, new[] { 4, 5 } };
        var stream = new PackedSampleStream(docs, 4, Ids);
        Assert.Equal([C, 1, 2, 3], stream.Next());
        Assert.Equal([C, E, 4, 5], stream.Next());
        var cursor = stream.Cursor;
        Assert.Equal(new PackedStreamCursor(0, 1, 2), cursor);
        var expected = new[] { stream.Next(), stream.Next() };
        Assert.Equal([C, E, 1, 2], expected[0]);
        Assert.Equal([C, 3, E, 4], expected[1]);
        Assert.Equal(1, stream.Cursor.Epoch);

        var resumed = new PackedSampleStream(docs, 4, Ids, PackedStreamCursor.Parse(cursor.ToString()));
        Assert.Equal(expected[0], resumed.Next());
        Assert.Equal(expected[1], resumed.Next());
    }

    [Fact]
    public void PackedStreamRejectsBadCursor()
    {
        var docs = new List<int[]> { new[] { 1, 2, 3 } };
        Assert.Throws<GlmException>(() => new PackedSampleStream(docs, 4, Ids, new PackedStreamCursor(0, 3, 0)));
        Assert.Throws<GlmException>(() => PackedStreamCursor.Parse("1:x:2"));
    }
}
