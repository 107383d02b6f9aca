using System.Text;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Prompts;
using Glm.Connector;
using Glm.Engine;
using Glm.Engine.Tokenization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using SkChatRole = Microsoft.SemanticKernel.ChatCompletion.AuthorRole;

namespace AgentHost.Rag.Agent;

/// <summary>Settings of <see cref="KnowledgeBaseAgent"/>.</summary>
public sealed record KnowledgeBaseAgentOptions
{
    /// <summary>Knowledge-base name (shown to the model in the <c>agent</c> system prompt).</summary>
    public required string KnowledgeBase { get; init; }
    /// <summary>Retrieval and answer settings of the retrieve-then-answer fallback (and the answer length of tool mode).</summary>
    public AskOptions Ask { get; init; } = new();
    /// <summary>User turns kept in the history; older turns are dropped whole.</summary>
    public int MaxTurns { get; init; } = 8;
    /// <summary>Force tool mode on or off; null = decide from the model (base GLM models have no tool format).</summary>
    public bool? UseTools { get; init; }
}

/// <summary>
/// The multi-turn knowledge-base agent of <c>glm chat --kb</c>. With a model that has a tool format (ChatGLM3, GLM-4, an
/// OpenAI-compatible server) each turn runs Semantic Kernel's function-calling loop —
/// <c>chatClient.AsBuilder().UseKernelFunctionInvocation().Build().AsChatCompletionService()</c> with
/// <c>FunctionChoiceBehavior.Auto()</c> over <see cref="KnowledgeBasePlugin"/> — and the answer's [n] markers are checked against
/// the passages the searches returned. Without one (base GLM: <see cref="GlmBlankChatFormat"/>) each turn is retrieve-then-answer
/// through <see cref="AskPipeline"/>: the follow-up is rewritten with the conversation, retrieved, answered from the QA prompt
/// with checked citations. The switch is announced once on <c>notices</c>.
/// </summary>
public sealed class KnowledgeBaseAgent
{
    private readonly IChatClient _chat;
    private readonly KnowledgeBasePlugin _plugin;
    private readonly PromptLibrary _prompts;
    private readonly AskPipeline _fallback;
    private readonly KnowledgeBaseAgentOptions _options;
    private readonly TextWriter? _notices;
    private readonly Kernel _kernel;
    private readonly IChatCompletionService _service;
    private bool? _useTools;
    private bool _announcedFallback;

    /// <summary>Creates the agent; <paramref name="notices"/> (stderr) receives the one-time fallback notice.</summary>
    public KnowledgeBaseAgent(IChatClient chatClient, Retriever retriever, KnowledgeBasePlugin plugin, PromptLibrary prompts,
        KnowledgeBaseAgentOptions options, TextWriter? notices = null, ILoggerFactory? loggerFactory = null)
    {
        _chat = chatClient ?? throw new ArgumentNullException(nameof(chatClient));
        _plugin = plugin ?? throw new ArgumentNullException(nameof(plugin));
        _prompts = prompts;
        _options = options;
        _notices = notices;
        _useTools = options.UseTools;
        if (options.MaxTurns < 1) throw new GlmException($"MaxTurns = {options.MaxTurns}: expected 1 or more");
        _fallback = new AskPipeline(retriever, chatClient, prompts, loggerFactory?.CreateLogger("chat"));
        _service = chatClient.AsBuilder().UseKernelFunctionInvocation(loggerFactory).Build().AsChatCompletionService();
        var builder = Kernel.CreateBuilder();
        builder.Plugins.AddFromObject(plugin, KnowledgeBasePlugin.PluginName);
        _kernel = builder.Build();
    }

    /// <summary>The conversation (tool mode keeps tool calls and results in it too).</summary>
    public ChatHistory History { get; } = [];

    /// <summary>The kernel holding the plugin.</summary>
    public Kernel Kernel => _kernel;

    /// <summary>True when turns run the function-calling loop; false for retrieve-then-answer; null until the first turn decides.</summary>
    public bool? UsesTools => _useTools;

    /// <summary>Forgets the conversation.</summary>
    public void Reset() => History.Clear();

    /// <summary>Answers one user turn; <paramref name="onDelta"/> receives the answer as it streams.</summary>
    public async Task<AskResult> SendAsync(string question, Action<string>? onDelta = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(question)) throw new GlmException("the message is empty; type a question");
        question = question.Trim();
        _useTools ??= ModelHasToolFormat(_chat);
        AskResult result;
        if (_useTools == true)
        {
            try { result = await ToolTurnAsync(question, onDelta, cancellationToken).ConfigureAwait(false); }
            catch (GlmException e) when (e.Message.Contains("no tool format", StringComparison.Ordinal))
            {
                _useTools = false;
                result = await FallbackTurnAsync(question, onDelta, cancellationToken).ConfigureAwait(false);
            }
        }
        else result = await FallbackTurnAsync(question, onDelta, cancellationToken).ConfigureAwait(false);
        TrimHistory();
        return result;
    }

    /// <summary>False for a GLM model whose chat format cannot render tools (base GLM); true otherwise (it is tried).</summary>
    public static bool ModelHasToolFormat(IChatClient chatClient) =>
        chatClient.GetService<GlmChatClient>()?.Source.ChatFormat is not GlmBlankChatFormat;

    private async Task<AskResult> ToolTurnAsync(string question, Action<string>? onDelta, CancellationToken cancellationToken)
    {
        bool addSystem = History.Count == 0 || History[0].Role != SkChatRole.System;
        if (addSystem)
        {
            string system = await _prompts.RenderAsync(PromptLibrary.Agent, new Dictionary<string, object?> { ["kb"] = _options.KnowledgeBase }, cancellationToken).ConfigureAwait(false);
            History.Insert(0, new ChatMessageContent(SkChatRole.System, system));
        }
        int mark = History.Count;
        _plugin.BeginTurn(ConversationHistory.Format(TextTurns()));
        History.AddUserMessage(question);
        var settings = new PromptExecutionSettings
        {
            FunctionChoiceBehavior = FunctionChoiceBehavior.Auto(),
            ExtensionData = new Dictionary<string, object> { ["max_tokens"] = _options.Ask.MaxOutputTokens, ["temperature"] = 0.0 },
        };
        var answer = new StringBuilder();
        CitationFilter? filter = null;
        try
        {
            await foreach (var chunk in _service.GetStreamingChatMessageContentsAsync(History, settings, _kernel, cancellationToken).ConfigureAwait(false))
            {
                if (string.IsNullOrEmpty(chunk.Content)) continue;
                filter ??= new CitationFilter(_plugin.TurnPassages.Count);
                Emit(filter.Push(chunk.Content));
            }
        }
        catch
        {
            // Leave the history as it was before the turn (the bridge may have appended the user message, calls and results).
            while (History.Count > mark) History.RemoveAt(History.Count - 1);
            if (addSystem) History.RemoveAt(0);
            throw;
        }
        filter ??= new CitationFilter(_plugin.TurnPassages.Count);
        Emit(filter.Flush());
        string text = answer.ToString().Trim();
        History.AddAssistantMessage(text);
        var passages = _plugin.TurnPassages.ToList();
        var citations = filter.Cited.Select(n =>
        {
            var hit = passages[n - 1].Hit;
            return new Citation(n, hit.Source, hit.Section, AskPipeline.Snippet(hit.Text), hit.StartOffset, hit.EndOffset);
        }).ToList();
        return new AskResult(text, passages, citations, filter.Dropped, NoAnswer: false, string.Join(" | ", _plugin.TurnQueries));

        void Emit(string shown)
        {
            if (shown.Length == 0) return;
            answer.Append(shown);
            onDelta?.Invoke(shown);
        }
    }

    private async Task<AskResult> FallbackTurnAsync(string question, Action<string>? onDelta, CancellationToken cancellationToken)
    {
        if (!_announcedFallback)
        {
            _announcedFallback = true;
            _notices?.WriteLine("note: this chat model has no tool format (function calling needs a ChatGLM3 or GLM-4 chat model); "
                + "answering each turn by retrieve-then-answer instead (rewrite → hybrid search → QA prompt → checked citations).");
        }
        string history = ConversationHistory.Format(TextTurns());
        var result = await _fallback.AskAsync(question, _options.Ask with { History = history }, onDelta, cancellationToken).ConfigureAwait(false);
        History.AddUserMessage(question);
        History.AddAssistantMessage(result.Answer);
        return result;
    }

    private IEnumerable<(bool IsUser, string Text)> TextTurns() =>
        History.Where(m => (m.Role == SkChatRole.User || m.Role == SkChatRole.Assistant) && !string.IsNullOrWhiteSpace(m.Content))
            .Select(m => (m.Role == SkChatRole.User, m.Content!)).ToList();

    private void TrimHistory()
    {
        while (History.Count(m => m.Role == SkChatRole.User) > _options.MaxTurns)
        {
            int first = History.ToList().FindIndex(m => m.Role == SkChatRole.User);
            int next = History.ToList().FindIndex(first + 1, m => m.Role == SkChatRole.User);
            History.RemoveRange(first, next - first);
        }
    }
}
