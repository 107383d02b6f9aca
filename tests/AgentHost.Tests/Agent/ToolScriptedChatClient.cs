using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace AgentHost.Tests.Agent;

/// <summary>
/// Test double for the model's output only: when tools are offered and no tool result follows the last user message it
/// calls <c>kb_search_documents</c> with <c>query(userMessage)</c>; once a result is there it answers with
/// <c>answer(toolResult)</c>; requests without tools (the query rewrite) get <c>rewrite(prompt)</c>. Records every request.
/// </summary>
public sealed class ToolScriptedChatClient(Func<string, string> query, Func<string, string> answer, Func<string, string> rewrite) : IChatClient
{
    public List<IReadOnlyList<ChatMessage>> Requests { get; } = [];
    public List<ChatOptions?> Options { get; } = [];

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in GetStreamingResponseAsync(messages, options, cancellationToken)) updates.Add(u);
        return updates.ToChatResponse();
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        Requests.Add(list);
        Options.Add(options);
        await Task.Yield();
        int lastUser = list.FindLastIndex(m => m.Role == ChatRole.User);
        if (options?.Tools is not { Count: > 0 })
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, rewrite(list[lastUser].Text));
            yield break;
        }
        var result = list.Skip(lastUser + 1).SelectMany(m => m.Contents).OfType<FunctionResultContent>().LastOrDefault();
        if (result is null)
        {
            yield return new ChatResponseUpdate
            {
                Role = ChatRole.Assistant,
                Contents = [new FunctionCallContent("call_" + Requests.Count, "kb_search_documents",
                    new Dictionary<string, object?> { ["query"] = query(list[lastUser].Text), ["top_k"] = 3 })],
            };
            yield break;
        }
        string text = answer(result.Result?.ToString() ?? "");
        for (int i = 0; i < text.Length; i += 3)
            yield return new ChatResponseUpdate(ChatRole.Assistant, text.Substring(i, Math.Min(3, text.Length - i)));
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceType.IsInstanceOfType(this) ? this : null;
    public void Dispose() { }
}
