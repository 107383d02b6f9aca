using AgentHost.Rag.Answering;

namespace AgentHost.Tests.Rag;

public class CitationTests
{
    [Fact]
    public void ValidCitationsAreKeptInOrderOfFirstUse()
    {
        var c = CitationFilter.Check("他欠十九个钱[2]，后来不见了[1][2]。", 3);
        Assert.Equal("他欠十九个钱[2]，后来不见了[1][2]。", c.Text);
        Assert.Equal([2, 1], c.Cited);
        Assert.Empty(c.Dropped);
    }

    [Fact]
    public void OutOfRangeCitationsAreDroppedAndListsSplit()
    {
        var c = CitationFilter.Check("见[3]和[1, 5]以及【2】[0]。", 2);
        Assert.Equal("见和[1]以及[2]。", c.Text);
        Assert.Equal([1, 2], c.Cited);
        Assert.Equal([3, 5, 0], c.Dropped);
    }

    [Fact]
    public void AnAnswerWithoutCitationsAndOtherBracketsPassesThrough()
    {
        var c = CitationFilter.Check("没有引用，[注] 和 [ ] 以及 [12 不是引用", 4);
        Assert.Equal("没有引用，[注] 和 [ ] 以及 [12 不是引用", c.Text);
        Assert.Empty(c.Cited);
        Assert.Empty(c.Dropped);
    }

    [Fact]
    public void StreamingPiecesGiveTheSameResultAsTheWholeText()
    {
        string answer = "答案是十九个钱[1]，见[7]与[2,3]。[";
        var filter = new CitationFilter(2);
        string streamed = string.Concat(answer.Chunk(2).Select(p => filter.Push(new string(p)))) + filter.Flush();
        Assert.Equal(CitationFilter.Check(answer, 2).Text, streamed);
        Assert.Equal("答案是十九个钱[1]，见与[2]。[", streamed);
        Assert.Equal([7, 3], filter.Dropped);
    }
}
