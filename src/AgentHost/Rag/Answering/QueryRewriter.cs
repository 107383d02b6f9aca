using AgentHost.Rag.Prompts;
using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Answering;

/// <summary>
/// Turns a question into a search query with the <c>query_rewrite</c> prompt; with the conversation so far, a follow-up
/// ("他欠了多少钱？") becomes a standalone query ("孔乙己 欠 咸亨酒店 钱").
/// </summary>
public static class QueryRewriter
{
    /// <summary>The model's rewrite (first non-empty line), or "" when it gave none.</summary>
    /// <param name="chat">The chat model.</param>
    /// <param name="prompts">Prompt library holding <c>query_rewrite</c>.</param>
    /// <param name="question">The question to rewrite.</param>
    /// <param name="history">Earlier turns (<see cref="ConversationHistory.Format"/>), or "".</param>
    /// <param name="cancellationToken">Cancels the model call.</param>
    public static async Task<string> RewriteAsync(IChatClient chat, PromptLibrary prompts, string question, string history,
        CancellationToken cancellationToken = default)
    {
        string prompt = await prompts.RenderAsync(PromptLibrary.QueryRewrite,
            new Dictionary<string, object?> { ["question"] = question, ["history"] = history }, cancellationToken).ConfigureAwait(false);
        var response = await chat.GetResponseAsync([new ChatMessage(ChatRole.User, prompt)], prompts.OptionsFor(PromptLibrary.QueryRewrite),
            cancellationToken).ConfigureAwait(false);
        return response.Text.Trim().Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "";
    }
}

/// <summary>Formats the earlier turns of a conversation for the <c>query_rewrite</c> prompt.</summary>
public static class ConversationHistory
{
    /// <summary>Turns kept (most recent), and characters kept per message.</summary>
    public const int MaxMessages = 6, MaxCharsPerMessage = 200;

    /// <summary>
    /// "对话历史：\n用户：…\n助手：…" over the last <see cref="MaxMessages"/> user and assistant messages with text (tool calls
    /// and results left out); "" when there are none.
    /// </summary>
    public static string Format(IEnumerable<(bool IsUser, string Text)> messages)
    {
        var lines = messages.Where(m => !string.IsNullOrWhiteSpace(m.Text)).TakeLast(MaxMessages)
            .Select(m => (m.IsUser ? "用户：" : "助手：") + Flatten(m.Text)).ToList();
        return lines.Count == 0 ? "" : "对话历史：\n" + string.Join("\n", lines) + "\n";
    }

    private static string Flatten(string text)
    {
        string flat = string.Join(' ', text.Split(['\n', '\r'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return flat.Length <= MaxCharsPerMessage ? flat : flat[..MaxCharsPerMessage] + "…";
    }
}
