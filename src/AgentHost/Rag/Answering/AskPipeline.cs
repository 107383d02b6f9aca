using System.Text;
using AgentHost.Rag.Chunking;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Rag.Answering;

/// <summary>Settings of one question.</summary>
public sealed record AskOptions
{
    /// <summary>Passages retrieved.</summary>
    public int TopK { get; init; } = 5;
    /// <summary>Retrieval mode (hybrid falls back to keyword without an embedder).</summary>
    public RetrievalMode Mode { get; init; } = RetrievalMode.Hybrid;
    /// <summary>No-answer thresholds.</summary>
    public RelevanceThresholds Thresholds { get; init; } = new(0.3, 0.3);
    /// <summary>Most approximate tokens of passages in the prompt.</summary>
    public int ContextTokens { get; init; } = 1500;
    /// <summary>Answer length limit (caps the qa prompt's max_tokens).</summary>
    public int MaxOutputTokens { get; init; } = 512;
    /// <summary>Ask the model to rewrite the question into a search query first.</summary>
    public bool RewriteQuery { get; init; }
    /// <summary>Restricts retrieval.</summary>
    public SearchFilter? Filter { get; init; }
    /// <summary>
    /// Earlier turns of a conversation (see <see cref="ConversationHistory.Format"/>); when non-empty the question is rewritten
    /// with them (a follow-up such as "他欠了多少钱？" becomes a standalone query) and the QA prompt names the rewrite.
    /// </summary>
    public string History { get; init; } = "";
}

/// <summary>A citation printed after the answer.</summary>
/// <param name="Number">The [n] used in the answer.</param>
/// <param name="Source">Source file path.</param>
/// <param name="Section">Heading path.</param>
/// <param name="Snippet">Start of the passage text.</param>
/// <param name="StartOffset">Char offset of the passage in the document text.</param>
/// <param name="EndOffset">Char offset one past its end.</param>
public sealed record Citation(int Number, string Source, string Section, string Snippet, int StartOffset, int EndOffset);

/// <summary>The outcome of one question.</summary>
/// <param name="Answer">Answer text with checked citation markers (or the fixed no-answer message).</param>
/// <param name="Passages">Passages given to the model, numbered from 1 in this order.</param>
/// <param name="Citations">The passages the answer cites, in order of first citation.</param>
/// <param name="DroppedCitations">Out-of-range citation numbers removed from the answer.</param>
/// <param name="NoAnswer">True when nothing relevant was retrieved and the model was not called.</param>
/// <param name="Query">The query retrieval ran with (the question, or its rewrite).</param>
public sealed record AskResult(string Answer, IReadOnlyList<ScoredHit> Passages, IReadOnlyList<Citation> Citations,
    IReadOnlyList<int> DroppedCitations, bool NoAnswer, string Query);

/// <summary>State passed along the ask steps.</summary>
public sealed class AskContext(string question, AskOptions options, Action<string>? onDelta)
{
    /// <summary>The user's question.</summary>
    public string Question { get; } = question;
    /// <summary>Settings.</summary>
    public AskOptions Options { get; } = options;
    /// <summary>Receives answer text as it streams.</summary>
    public Action<string>? OnDelta { get; } = onDelta;
    /// <summary>Retrieval query.</summary>
    public string Query { get; set; } = question;
    /// <summary>The standalone rewrite of a follow-up question (conversations only), or null.</summary>
    public string? Rewritten { get; set; }
    /// <summary>Relevant passages, numbered from 1.</summary>
    public IReadOnlyList<ScoredHit> Passages { get; set; } = [];
    /// <summary>Chat messages for the model.</summary>
    public List<ChatMessage> Messages { get; } = [];
    /// <summary>The answer so far.</summary>
    public StringBuilder Answer { get; } = new();
    /// <summary>Citation checker of the streamed answer.</summary>
    public CitationFilter? Citations { get; set; }
    /// <summary>Set by a step that produced the final answer; later steps are skipped.</summary>
    public bool Completed { get; set; }
    /// <summary>True when the no-answer message was given.</summary>
    public bool NoAnswer { get; set; }
}

/// <summary>One step of answering a question.</summary>
public interface IAskStep
{
    /// <summary>Runs the step.</summary>
    Task InvokeAsync(AskContext context, CancellationToken cancellationToken);
}

/// <summary>
/// <c>glm ask</c>: (optional query rewrite) → retrieve with the relevance gate → no-answer message when nothing is relevant
/// (the model is not called) → QA prompt with numbered passages → streamed answer whose citation markers are checked
/// against the passages as they stream.
/// </summary>
public sealed class AskPipeline
{
    private readonly IReadOnlyList<IAskStep> _steps;

    /// <summary>Creates the pipeline with the default steps.</summary>
    public AskPipeline(Retriever retriever, IChatClient chatClient, PromptLibrary prompts, ILogger? logger = null)
    {
        logger ??= NullLogger.Instance;
        _steps = [new RewriteQueryStep(chatClient, prompts, logger), new RetrieveStep(retriever, logger), new NoAnswerStep(prompts),
            new BuildPromptStep(prompts), new GenerateStep(chatClient, prompts)];
    }

    /// <summary>Answers <paramref name="question"/>; <paramref name="onDelta"/> receives the answer as it streams.</summary>
    public async Task<AskResult> AskAsync(string question, AskOptions options, Action<string>? onDelta = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(question)) throw new Glm.Engine.GlmException("the question is empty; pass it as the first argument, e.g. glm ask \"孔乙己欠了多少钱？\"");
        var context = new AskContext(question.Trim(), options, onDelta);
        foreach (var step in _steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await step.InvokeAsync(context, cancellationToken).ConfigureAwait(false);
            if (context.Completed) break;
        }
        var cited = context.Citations?.Cited ?? [];
        var citations = cited.Select(n =>
        {
            var hit = context.Passages[n - 1].Hit;
            return new Citation(n, hit.Source, hit.Section, Snippet(hit.Text), hit.StartOffset, hit.EndOffset);
        }).ToList();
        return new AskResult(context.Answer.ToString().Trim(), context.Passages, citations, context.Citations?.Dropped ?? [],
            context.NoAnswer, context.Query);
    }

    /// <summary>First 80 chars of a passage on one line.</summary>
    public static string Snippet(string text)
    {
        string flat = string.Join(' ', text.Split(['\n', '\r'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return flat.Length <= 80 ? flat : flat[..80] + "…";
    }

    private sealed class RewriteQueryStep(IChatClient chat, PromptLibrary prompts, ILogger logger) : IAskStep
    {
        public async Task InvokeAsync(AskContext context, CancellationToken cancellationToken)
        {
            string history = context.Options.History;
            if (!context.Options.RewriteQuery && history.Length == 0) return;
            string rewritten = await QueryRewriter.RewriteAsync(chat, prompts, context.Question, history, cancellationToken);
            if (rewritten.Length > 0) context.Query = context.Question + " " + rewritten;
            if (rewritten.Length > 0 && history.Length > 0) context.Rewritten = rewritten;
            logger.LogInformation("query rewritten to {Query}", context.Query);
        }
    }

    private sealed class RetrieveStep(Retriever retriever, ILogger logger) : IAskStep
    {
        public async Task InvokeAsync(AskContext context, CancellationToken cancellationToken)
        {
            var o = context.Options;
            context.Passages = await retriever.RetrieveRelevantAsync(context.Query, o.Mode, o.TopK, o.Thresholds, o.Filter, cancellationToken);
            logger.LogInformation("retrieved {Count} relevant passages ({Mode})", context.Passages.Count, retriever.Effective(o.Mode));
        }
    }

    private sealed class NoAnswerStep(PromptLibrary prompts) : IAskStep
    {
        public async Task InvokeAsync(AskContext context, CancellationToken cancellationToken)
        {
            if (context.Passages.Count > 0) return;
            string message = await prompts.RenderAsync(PromptLibrary.NoAnswer, new Dictionary<string, object?>(), cancellationToken);
            context.Answer.Append(message);
            context.OnDelta?.Invoke(message);
            context.NoAnswer = context.Completed = true;
        }
    }

    private sealed class BuildPromptStep(PromptLibrary prompts) : IAskStep
    {
        public async Task InvokeAsync(AskContext context, CancellationToken cancellationToken)
        {
            var kept = new List<ScoredHit>();
            var text = new StringBuilder();
            int budget = context.Options.ContextTokens;
            foreach (var passage in context.Passages)
            {
                var hit = passage.Hit;
                string body = hit.Text.Trim();
                int tokens = TokenCounters.Approximate(body);
                if (kept.Count > 0 && tokens > budget) break;
                if (tokens > budget) body = body[..Math.Min(body.Length, budget)];
                budget -= tokens;
                kept.Add(passage);
                string where = Path.GetFileName(hit.Source) + (hit.Section.Length > 0 ? " › " + hit.Section : "");
                text.Append('[').Append(kept.Count).Append("] 来源：").Append(where).Append('\n').Append(body).Append("\n\n");
            }
            context.Passages = kept;
            string system = await prompts.RenderAsync(PromptLibrary.SystemPrompt, new Dictionary<string, object?>(), cancellationToken);
            string user = await prompts.RenderAsync(PromptLibrary.Qa, new Dictionary<string, object?>
            {
                ["question"] = context.Rewritten is { } r ? $"{context.Question}（即：{r}）" : context.Question, ["context"] = text.ToString().TrimEnd(), ["count"] = kept.Count.ToString(),
            }, cancellationToken);
            context.Messages.Add(new ChatMessage(ChatRole.System, system));
            context.Messages.Add(new ChatMessage(ChatRole.User, user));
        }
    }

    private sealed class GenerateStep(IChatClient chat, PromptLibrary prompts) : IAskStep
    {
        public async Task InvokeAsync(AskContext context, CancellationToken cancellationToken)
        {
            var options = prompts.OptionsFor(PromptLibrary.Qa) ?? new ChatOptions();
            int cap = context.Options.MaxOutputTokens;
            options.MaxOutputTokens = Math.Min(options.MaxOutputTokens ?? cap, cap);
            var filter = context.Citations = new CitationFilter(context.Passages.Count);
            await foreach (var update in chat.GetStreamingResponseAsync(context.Messages, options, cancellationToken))
            {
                string shown = filter.Push(update.Text);
                if (shown.Length == 0) continue;
                context.Answer.Append(shown);
                context.OnDelta?.Invoke(shown);
            }
            string rest = filter.Flush();
            context.Answer.Append(rest);
            if (rest.Length > 0) context.OnDelta?.Invoke(rest);
            context.Completed = true;
        }
    }
}
