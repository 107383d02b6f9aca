using System.ComponentModel;
using System.Text;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using AgentHost.Rag.Summarization;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.Rag.Agent;

/// <summary>Settings of <see cref="KnowledgeBasePlugin"/>.</summary>
public sealed record KnowledgeBasePluginOptions
{
    /// <summary>Retrieval mode of search_documents (hybrid falls back to keyword without an embedder).</summary>
    public RetrievalMode Mode { get; init; } = RetrievalMode.Hybrid;
    /// <summary>Relevance gate of search_documents.</summary>
    public RelevanceThresholds Thresholds { get; init; } = new(0.25, 0.5);
    /// <summary>Most snippets one search may return (the model's top_k is clamped to 1..this).</summary>
    public int MaxTopK { get; init; } = 10;
    /// <summary>Characters of each snippet shown to the model.</summary>
    public int SnippetChars { get; init; } = 400;
    /// <summary>Summariser settings of summarize_document.</summary>
    public SummarizeOptions Summarize { get; init; } = new();
}

/// <summary>
/// The knowledge-base tools of <c>glm chat --kb</c>, as a Semantic Kernel plugin (names seen by the model:
/// <c>kb_search_documents</c>, <c>kb_summarize_document</c>, <c>kb_list_sources</c>). Passages returned during one turn are
/// numbered consecutively ([1], [2], …) so the answer's citations can be checked against <see cref="TurnPassages"/>.
/// Follow-up searches are rewritten with the conversation (<see cref="BeginTurn"/>) before retrieval.
/// </summary>
public sealed class KnowledgeBasePlugin(IKnowledgeBase knowledgeBase, Retriever retriever, IChatClient chatClient, PromptLibrary prompts,
    KnowledgeBasePluginOptions? options = null)
{
    /// <summary>Plugin name: the model sees <c>kb_search_documents</c> etc.</summary>
    public const string PluginName = "kb";

    private readonly KnowledgeBasePluginOptions _options = options ?? new KnowledgeBasePluginOptions();
    private readonly List<ScoredHit> _passages = [];
    private readonly List<string> _queries = [];
    private string _history = "";

    /// <summary>Passages returned by search_documents in the current turn, numbered from 1 in this order.</summary>
    public IReadOnlyList<ScoredHit> TurnPassages => _passages;

    /// <summary>The retrieval queries run in the current turn (after any rewrite).</summary>
    public IReadOnlyList<string> TurnQueries => _queries;

    /// <summary>Starts a turn: clears the passage numbering and sets the earlier conversation used to rewrite follow-ups.</summary>
    public void BeginTurn(string history)
    {
        _passages.Clear();
        _queries.Clear();
        _history = history;
    }

    /// <summary>Hybrid search; returns numbered snippets with source and section.</summary>
    [KernelFunction("search_documents")]
    [Description("在知识库中检索与查询相关的文档片段（关键词与向量混合检索），返回编号 [n] 的片段及其来源文件和章节。回答事实性问题前先调用它。")]
    public async Task<string> SearchDocumentsAsync(
        [Description("检索查询：关键词或问题")] string query,
        [Description("返回的片段数（1–10，默认 5）")] int top_k = 5,
        CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(query)) return "查询为空；请给出要检索的关键词。";
        int top = Math.Clamp(top_k, 1, _options.MaxTopK);
        string search = query.Trim();
        if (_history.Length > 0)
        {
            string rewritten = await QueryRewriter.RewriteAsync(chatClient, prompts, search, _history, cancellationToken).ConfigureAwait(false);
            if (rewritten.Length > 0) search = search + " " + rewritten;
        }
        _queries.Add(search);
        var hits = await retriever.RetrieveRelevantAsync(search, _options.Mode, top, _options.Thresholds, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (hits.Count == 0) return $"知识库中没有找到与“{query.Trim()}”相关的资料。";
        var text = new StringBuilder();
        foreach (var hit in hits)
        {
            _passages.Add(hit);
            string where = Path.GetFileName(hit.Hit.Source) + (hit.Hit.Section.Length > 0 ? " › " + hit.Hit.Section : "");
            string body = hit.Hit.Text.Trim();
            if (body.Length > _options.SnippetChars) body = body[.._options.SnippetChars] + "…";
            text.Append('[').Append(_passages.Count).Append("] 来源：").Append(where).Append('\n').Append(body).Append("\n\n");
        }
        return text.ToString().TrimEnd();
    }

    /// <summary>Map-reduce summary of one stored document.</summary>
    [KernelFunction("summarize_document")]
    [Description("生成知识库中某篇文档的中文摘要。source 是文件名或路径（可先用 list_sources 查看）。")]
    public async Task<string> SummarizeDocumentAsync(
        [Description("文档的文件名或路径")] string source,
        CancellationToken cancellationToken = default)
    {
        var matches = MatchSources(knowledgeBase.ListSources(), source);
        if (matches.Count == 0)
            return $"知识库中没有文档“{source}”。可用文档：{string.Join("、", knowledgeBase.ListSources().Select(d => Path.GetFileName(d.Source)))}";
        if (matches.Count > 1)
            return $"“{source}”对应多篇文档，请给出完整路径：{string.Join("、", matches.Select(d => d.Source))}";
        string? text = (knowledgeBase as SqliteKnowledgeBase)?.ReadDocumentText(matches[0].Source);
        if (string.IsNullOrWhiteSpace(text)) return $"文档“{matches[0].Source}”的全文不可读取（知识库只存了片段）。";
        var summarizer = new MapReduceSummarizer(chatClient, prompts, _options.Summarize);
        var result = await summarizer.SummarizeAsync(text, cancellationToken: cancellationToken).ConfigureAwait(false);
        return $"《{Path.GetFileName(matches[0].Source)}》摘要：{result.Summary}";
    }

    /// <summary>The documents in the knowledge base.</summary>
    [KernelFunction("list_sources")]
    [Description("列出知识库中的全部文档（文件名、路径、字数、片段数）。")]
    public string ListSources()
    {
        var docs = knowledgeBase.ListSources();
        if (docs.Count == 0) return $"知识库“{knowledgeBase.Name}”中没有文档。";
        var text = new StringBuilder($"知识库“{knowledgeBase.Name}”共有 {docs.Count} 篇文档：\n");
        foreach (var d in docs)
            text.Append("- ").Append(Path.GetFileName(d.Source)).Append("（").Append(d.Source).Append("，").Append(d.CharCount)
                .Append(" 字，").Append(d.ChunkCount).Append(" 个片段）\n");
        return text.ToString().TrimEnd();
    }

    /// <summary>Documents whose path equals <paramref name="source"/>, whose file name equals it, or whose path ends with it.</summary>
    public static IReadOnlyList<DocumentInfo> MatchSources(IReadOnlyList<DocumentInfo> docs, string source)
    {
        source = source.Trim();
        var exact = docs.Where(d => d.Source == source).ToList();
        if (exact.Count > 0) return exact;
        return docs.Where(d => Path.GetFileName(d.Source) == source
            || d.Source.EndsWith(Path.DirectorySeparatorChar + source.TrimStart(Path.DirectorySeparatorChar), StringComparison.Ordinal)).ToList();
    }
}
