using System.Linq.Expressions;
using AgentHost.Rag.Stores.Qdrant;
using AgentHost.Rag.Stores.VectorData;

namespace AgentHost.Tests.Rag.Qdrant;

public class QdrantChunkFilterTranslatorTests
{
    private static string Json(Expression<Func<KnowledgeChunk, bool>> filter)
    {
        var translated = QdrantChunkFilterTranslator.Translate(filter);
        Assert.False(translated.MatchesNothing);
        return translated.Filter?.ToJson().ToJsonString(FakeQdrantServer.Readable) ?? "null";
    }

    [Fact]
    public void Key_ids_are_rfc4122_version5_uuids()
    {
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") — a published UUIDv5 test value.
        var dns = new Guid("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
        Assert.Equal(new Guid("886313e1-3b8a-5372-9b90-0c9aee199e5d"), QdrantPoint.KeyId("python.org", dns));
        var id = QdrantPoint.KeyId("/a.txt#3");
        Assert.Equal(id, QdrantPoint.KeyId("/a.txt#3"));
        Assert.NotEqual(id, QdrantPoint.KeyId("/a.txt#4"));
        Assert.NotEqual(id, QdrantPoint.KeyId("/a.txt#3", dns));
        Assert.Equal('5', id.ToString()[14]);
        Assert.Contains(id.ToString()[19], "89ab");
    }

    [Fact]
    public void Equality_and_conjunction_become_must_match_value_conditions()
    {
        string source = "/a.txt";
        Assert.Equal("""{"must":[{"key":"source","match":{"value":"/a.txt"}},{"key":"ordinal","match":{"value":2}}]}""",
            Json(r => r.Source == source && 2 == r.Ordinal));
        Assert.Equal("""{"must":[{"key":"key","match":{"value":"/a.txt#0"}}]}""", Json(r => r.Key == "/a.txt#0"));
        Assert.Equal("null", Json(r => true));
        Assert.Null(QdrantChunkFilterTranslator.Translate(null).Filter);
    }

    [Fact]
    public void Contains_becomes_match_any_or_match_text()
    {
        IEnumerable<string> sources = ["/a.txt", "/b.txt"];
        string[] array = ["/c.txt"];
        var ordinals = new List<int> { 1, 3 };
        Assert.Equal("""{"must":[{"key":"source","match":{"any":["/a.txt","/b.txt"]}},{"key":"section","match":{"text":"第一"}}]}""",
            Json(r => sources.Contains(r.Source) && r.Section.Contains("第一")));
        Assert.Equal("""{"must":[{"key":"source","match":{"any":["/c.txt"]}}]}""", Json(r => array.Contains(r.Source)));
        Assert.Equal("""{"must":[{"key":"ordinal","match":{"any":[1,3]}}]}""", Json(r => ordinals.Contains(r.Ordinal)));
    }

    [Fact]
    public void An_empty_value_list_matches_nothing_without_a_condition()
    {
        string[] none = [];
        var translated = QdrantChunkFilterTranslator.Translate(r => none.Contains(r.Source) && r.Ordinal == 1);
        Assert.True(translated.MatchesNothing);
    }

    [Fact]
    public void The_host_search_filter_translates()
    {
        var filter = ChunkFilterTranslator.FromSearchFilter(new AgentHost.Rag.Stores.SearchFilter { Sources = ["/a.txt"], SectionContains = "总则" });
        Assert.Equal("""{"must":[{"key":"source","match":{"any":["/a.txt"]}},{"key":"section","match":{"text":"总则"}}]}""", Json(filter!));
    }

    [Theory]
    [InlineData("gt")]
    [InlineData("ne")]
    [InlineData("or")]
    [InlineData("not")]
    [InlineData("startswith")]
    [InlineData("two-fields")]
    [InlineData("embedding")]
    public void Unsupported_expressions_throw_naming_the_expression(string which)
    {
        Expression<Func<KnowledgeChunk, bool>> filter = which switch
        {
            "gt" => r => r.Ordinal > 1,
            "ne" => r => r.Source != "/a.txt",
            "or" => r => r.Source == "/a.txt" || r.Ordinal == 1,
            "not" => r => !(r.Ordinal == 1),
            "startswith" => r => r.Source.StartsWith("/a"),
            "two-fields" => r => r.StartOffset == r.EndOffset,
            _ => r => r.Embedding == null,
        };
        var e = Assert.Throws<NotSupportedException>(() => QdrantChunkFilterTranslator.Translate(filter));
        Assert.Contains(which == "embedding" ? "Embedding" : filter.Body.ToString(), e.Message);
        Assert.Contains("Qdrant", e.Message);
    }
}
