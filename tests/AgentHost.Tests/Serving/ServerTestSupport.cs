using System.Runtime.CompilerServices;
using System.Text;
using AgentHost.Serving;
using Glm.Connector;
using Glm.Engine;
using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using Glm.Engine.Tokenization;
using Microsoft.AspNetCore.Builder;

namespace AgentHost.Tests.Serving;

/// <summary>
/// A token source with scripted replies over a real GLM-4 tokenizer and chat format (byte-level rank table). It records
/// prompts, can hold generation until released, and notes when the caller's cancellation reached it.
/// </summary>
internal sealed class ScriptedSource : IGlmTokenSource
{
    private static readonly Lazy<IGlmTokenizer> Glm4 = new(() =>
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("glm4srv").FullName, "tokenizer.model");
        File.WriteAllLines(path, Enumerable.Range(0, 256).Select(b => $"{Convert.ToBase64String([(byte)b])} {b}"));
        return Glm4Tokenizer.LoadTiktoken(path);
    });

    private readonly Queue<string> _replies;
    public ScriptedSource(params string[] replies) { _replies = new(replies); Tokenizer = Glm4.Value; ChatFormat = new Glm4ChatFormat(Tokenizer); }

    public string ModelId => "glm-test";
    public IGlmTokenizer Tokenizer { get; }
    public IChatFormat ChatFormat { get; }
    public int MaxContext => 4096;
    public List<string> Prompts { get; } = new();
    public TimeSpan PieceDelay { get; init; }
    public Task Hold { get; set; } = Task.CompletedTask;
    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource CancelSeen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int PiecesSent;

    public async IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken ct)
    {
        lock (Prompts) Prompts.Add(Tokenizer.Decode(promptIds));
        string reply;
        lock (_replies) reply = _replies.Count > 0 ? _replies.Dequeue() : throw new InvalidOperationException("no scripted reply left");
        using var _ = ct.Register(() => CancelSeen.TrySetResult());
        Started.TrySetResult();
        await Hold.WaitAsync(ct);
        int n = 0;
        for (int i = 0; i < reply.Length; i += 2)
        {
            if (PieceDelay > TimeSpan.Zero) await Task.Delay(PieceDelay, CancellationToken.None);
            if (ct.IsCancellationRequested) { yield return new GenerationChunk(-1, "", FinishReason.Cancelled, promptIds.Count, n); yield break; }
            n++;
            Interlocked.Increment(ref PiecesSent);
            string piece = reply.Substring(i, Math.Min(2, reply.Length - i));
            if (n >= options.MaxNewTokens) { yield return new GenerationChunk(n, piece, FinishReason.Length, promptIds.Count, n); yield break; }
            yield return new GenerationChunk(n, piece, FinishReason.None, promptIds.Count, n);
        }
        yield return new GenerationChunk(0, "", FinishReason.Stop, promptIds.Count, n);
    }
}

/// <summary>A started server on a free loopback port; dispose to stop it.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    public Uri BaseAddress { get; }
    public Uri V1 => new(BaseAddress, "/v1");
    public HttpClient Http { get; }

    private TestServer(WebApplication app)
    {
        _app = app;
        BaseAddress = GlmServer.BaseAddress(app);
        Http = new HttpClient { BaseAddress = BaseAddress };
    }

    public static async Task<TestServer> StartAsync(IGlmTokenSource source, GlmServerOptions? options = null, GlmModel? embeddingModel = null)
    {
        var backend = new GlmServerBackend(new GlmChatClient(source), new GlmTextGenerationService(source),
            embeddingModel is null ? null : new GlmEmbeddingGenerator(embeddingModel, new GlmEmbeddingOptions { ModelId = source.ModelId }));
        var app = GlmServer.Build(backend, (options ?? new GlmServerOptions()) with { Port = 0 });
        await app.StartAsync();
        return new TestServer(app);
    }

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.Authorization = new("Bearer", key);
        return Http.SendAsync(request);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>A tiny random ChatGLM3-shaped model with the real chatglm3-6b tokenizer from ../shared (for embeddings).</summary>
internal static class TinyModel
{
    public const string TokenizerPath = "data/tokenizers/chatglm3-6b/tokenizer.model";
    private static readonly Lazy<GlmModel> Lazy = new(() =>
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("glmsrv").FullName, "tiny");
        var cfg = ModelPresets.Get("chatglm3-tiny") with { VocabSize = 65024, EosTokenIds = [2] };
        using (var m = GlmModel.CreateRandom(cfg)) m.Save(dir);
        File.Copy(SharedPath(TokenizerPath), Path.Combine(dir, "tokenizer.model"));
        return GlmModel.Load(dir);
    });
    public static GlmModel Model => Lazy.Value;

    public static string SharedPath(string relative)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "GlmSK.sln"))) dir = dir.Parent;
        return Path.GetFullPath(Path.Combine(dir?.FullName ?? AppContext.BaseDirectory, "..", "shared", relative));
    }
}

/// <summary>A fact skipped when ../shared's ChatGLM3 tokenizer is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute()
    {
        string path = TinyModel.SharedPath(TinyModel.TokenizerPath);
        if (!File.Exists(path)) Skip = $"shared data not found at {path} (expected ../shared next to the project root); skipping";
    }
}
