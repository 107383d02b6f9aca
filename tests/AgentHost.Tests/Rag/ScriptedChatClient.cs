using System.Runtime.CompilerServices;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Prompts;
using AgentHost.Rag.Stores;
using Microsoft.Extensions.AI;

namespace AgentHost.Tests.Rag;

/// <summary>
/// Test double for the model only: answers each request with <c>reply(userPrompt)</c>, streamed in 3-char pieces (so
/// citation markers get split across updates), and records every request.
/// </summary>
public sealed class ScriptedChatClient(Func<string, string> reply) : IChatClient
{
    public List<IReadOnlyList<ChatMessage>> Requests { get; } = [];
    public List<ChatOptions?> Options { get; } = [];
    public int Calls => Requests.Count;
    public IEnumerable<string> UserPrompts => Requests.Select(r => r.Last(m => m.Role == ChatRole.User).Text);

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
        string text = reply(list.Last(m => m.Role == ChatRole.User).Text);
        for (int i = 0; i < text.Length; i += 3)
        {
            await Task.Yield();
            yield return new ChatResponseUpdate(ChatRole.Assistant, text.Substring(i, Math.Min(3, text.Length - i)));
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;
    public void Dispose() { }
}

/// <summary>The shipped prompts and sample documents of the repository.</summary>
internal static class RagFixtures
{
    public static string PromptsDir => Path.Combine(RagPaths.ProjectRoot(), "prompts");
    public static string SamplesDir => Path.Combine(RagPaths.ProjectRoot(), "samples", "docs");
    public static PromptLibrary Prompts() => new(PromptsDir);

    /// <summary>A real SQLite knowledge base holding the bundled samples.</summary>
    public static async Task<SqliteKnowledgeBase> SamplesKbAsync(TempFolder temp, IEmbeddingGenerator<string, Embedding<float>>? embedder = null)
    {
        var kb = new SqliteKnowledgeBase(temp.File("samples.db"), "samples");
        var report = await new IngestionPipeline(kb, null, embedder).IngestAsync([SamplesDir]);
        Assert.Empty(report.Failures);
        return kb;
    }

    /// <summary>Copies the shipped prompts to <paramref name="target"/>.</summary>
    public static string CopyPrompts(string target)
    {
        foreach (var file in Directory.EnumerateFiles(PromptsDir, "*", SearchOption.AllDirectories))
        {
            string dest = Path.Combine(target, Path.GetRelativePath(PromptsDir, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
        return target;
    }
}
