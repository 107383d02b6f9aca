using AgentHost.Rag.Chunking;
using AgentHost.Rag.Prompts;
using Glm.Engine;
using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Summarization;

/// <summary>Requested length of the final summary.</summary>
public enum SummaryLength
{
    /// <summary>About 100 characters.</summary>
    Short,
    /// <summary>About 300 characters.</summary>
    Medium,
    /// <summary>About 800 characters, in paragraphs.</summary>
    Long,
}

/// <summary>Settings of a summarisation.</summary>
/// <param name="ContextTokens">Context window one call may use (prompt + answer), in tokens of <paramref name="CountTokens"/>.</param>
/// <param name="MaxOutputTokens">Most tokens per partial or final summary.</param>
/// <param name="Length">Final summary length.</param>
/// <param name="CountTokens">Token counter; defaults to <see cref="TokenCounters.Approximate"/>.</param>
public sealed record SummarizeOptions(int ContextTokens = 2048, int MaxOutputTokens = 400, SummaryLength Length = SummaryLength.Medium,
    Func<string, int>? CountTokens = null);

/// <summary>Progress of a summarisation: <paramref name="Stage"/> is "map" or "reduce"; <paramref name="Round"/> counts reduce rounds from 1.</summary>
public sealed record SummaryProgress(string Stage, int Round, int Done, int Total);

/// <summary>The summary and how it was made.</summary>
/// <param name="Summary">Final Chinese summary.</param>
/// <param name="Chunks">Chunks the text was cut into (= map calls).</param>
/// <param name="MapCalls">Model calls in the map step.</param>
/// <param name="ReduceCalls">Model calls in all reduce rounds.</param>
/// <param name="ReduceRounds">Reduce rounds (0 when the text fitted in one call; more than 1 when partial summaries had to be merged recursively).</param>
public sealed record SummaryResult(string Summary, int Chunks, int MapCalls, int ReduceCalls, int ReduceRounds);

/// <summary>
/// Map-reduce summarisation for text longer than the context window: the text is cut (sentence-aware, Chinese chunker) into
/// pieces that fit one call, each is summarised with the <c>map</c> prompt, and the partial summaries are merged with the
/// <c>reduce</c> prompt — in groups, round after round, while they are still too long for one call.
/// </summary>
public sealed class MapReduceSummarizer(IChatClient chatClient, PromptLibrary prompts, SummarizeOptions options)
{
    private readonly Func<string, int> _count = options.CountTokens ?? TokenCounters.Approximate;

    /// <summary>Summarises <paramref name="text"/>.</summary>
    public async Task<SummaryResult> SummarizeAsync(string text, IProgress<SummaryProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new GlmException("nothing to summarise: the text is empty");
        string mapLength = $"请控制在{Math.Clamp(options.MaxOutputTokens * 3 / 4, 50, 300)}字以内。";
        string finalLength = options.Length switch
        {
            SummaryLength.Short => "请控制在100字以内。",
            SummaryLength.Long => "请控制在800字左右，分段叙述。",
            _ => "请控制在300字左右。",
        };
        int mapBudget = await InputBudgetAsync(PromptLibrary.Map, "text", cancellationToken);
        var chunker = new ChineseChunker(_count, new ChunkingOptions(mapBudget, 0));
        var chunks = chunker.Chunk(text);
        if (chunks.Count == 1)
        {
            progress?.Report(new SummaryProgress("map", 0, 0, 1));
            string only = await CallAsync(PromptLibrary.Map, "text", chunks[0].Text, finalLength, cancellationToken);
            progress?.Report(new SummaryProgress("map", 0, 1, 1));
            return new SummaryResult(only, 1, 1, 0, 0);
        }

        var partials = new List<string>();
        for (int i = 0; i < chunks.Count; i++)
        {
            progress?.Report(new SummaryProgress("map", 0, i, chunks.Count));
            partials.Add(await CallAsync(PromptLibrary.Map, "text", chunks[i].Text, mapLength, cancellationToken));
        }
        progress?.Report(new SummaryProgress("map", 0, chunks.Count, chunks.Count));

        int reduceBudget = await InputBudgetAsync(PromptLibrary.Reduce, "summaries", cancellationToken);
        int rounds = 0, reduceCalls = 0;
        while (true)
        {
            rounds++;
            var groups = Group(partials, reduceBudget);
            bool last = groups.Count == 1;
            var next = new List<string>();
            for (int g = 0; g < groups.Count; g++)
            {
                progress?.Report(new SummaryProgress("reduce", rounds, g, groups.Count));
                next.Add(await CallAsync(PromptLibrary.Reduce, "summaries", string.Join("\n\n", groups[g]), last ? finalLength : mapLength, cancellationToken));
                reduceCalls++;
            }
            progress?.Report(new SummaryProgress("reduce", rounds, groups.Count, groups.Count));
            if (last) return new SummaryResult(next[0], chunks.Count, chunks.Count, reduceCalls, rounds);
            partials = next;
        }
    }

    /// <summary>Tokens left for the variable text after the rendered prompt's own tokens and the answer.</summary>
    private async Task<int> InputBudgetAsync(string prompt, string variable, CancellationToken cancellationToken)
    {
        string empty = await prompts.RenderAsync(prompt, new Dictionary<string, object?> { [variable] = "", ["length"] = "请控制在300字左右，分段叙述。" }, cancellationToken);
        int budget = options.ContextTokens - options.MaxOutputTokens - _count(empty) - 16;
        if (budget < 64)
            throw new GlmException($"Summarize:ContextTokens = {options.ContextTokens} leaves only {budget} tokens for text after the '{prompt}' prompt and {options.MaxOutputTokens} answer tokens; raise it or lower Summarize:MaxOutputTokens");
        return budget;
    }

    /// <summary>Consecutive groups whose joined text fits <paramref name="budget"/>; every group has at least two items unless only one is left, so each round shrinks.</summary>
    private List<List<string>> Group(List<string> partials, int budget)
    {
        int cap = budget / 2 - 4;
        var capped = partials.Select(p => _count(p) <= cap ? p : Truncate(p, cap)).ToList();
        var groups = new List<List<string>>();
        var current = new List<string>();
        int used = 0;
        foreach (var p in capped)
        {
            int tokens = _count(p) + 2;
            if (current.Count > 0 && used + tokens > budget) { groups.Add(current); current = []; used = 0; }
            current.Add(p);
            used += tokens;
        }
        groups.Add(current);
        return groups;
    }

    private string Truncate(string text, int tokens)
    {
        int lo = 0, hi = text.Length;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (_count(text[..mid]) <= tokens) lo = mid; else hi = mid - 1;
        }
        return text[..lo];
    }

    private async Task<string> CallAsync(string prompt, string variable, string text, string length, CancellationToken cancellationToken)
    {
        string system = await prompts.RenderAsync(PromptLibrary.SystemPrompt, new Dictionary<string, object?>(), cancellationToken);
        string user = await prompts.RenderAsync(prompt, new Dictionary<string, object?> { [variable] = text, ["length"] = length }, cancellationToken);
        var chatOptions = prompts.OptionsFor(prompt) ?? new ChatOptions();
        chatOptions.MaxOutputTokens = Math.Min(chatOptions.MaxOutputTokens ?? options.MaxOutputTokens, options.MaxOutputTokens);
        var response = await chatClient.GetResponseAsync([new ChatMessage(ChatRole.System, system), new ChatMessage(ChatRole.User, user)],
            chatOptions, cancellationToken);
        return response.Text.Trim();
    }
}
