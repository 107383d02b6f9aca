using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Glm.Engine.Modeling;

namespace Glm.Engine.Generation;

/// <summary>Capacity of a <see cref="BatchScheduler"/>.</summary>
public sealed record BatchSchedulerOptions
{
    /// <summary>Most requests decoded together (rows of the batched KV cache); further requests wait for a free slot.</summary>
    public int MaxBatch { get; init; } = 8;

    /// <summary>Longest prompt + completion of one request, in tokens; null = the model's context capped at 2048.</summary>
    public int? MaxContext { get; init; }

    /// <summary>Throws <see cref="GlmException"/> naming the first out-of-range option.</summary>
    public void Validate()
    {
        if (MaxBatch < 1) throw new GlmException($"max batch = {MaxBatch}; expected 1 or more.");
        if (MaxContext is < 2) throw new GlmException($"max context = {MaxContext}; expected 2 or more tokens.");
    }
}

/// <summary>
/// Continuous batching: callers submit prompts from any thread and read their tokens as a stream; one background loop owns
/// the model. Between decode steps the loop admits waiting requests (each is prefilled alone into a free row — its slot —
/// of one batched KV cache), then runs one decode step for all active rows (each row at its own position, attention masked to
/// its own tokens), samples each row with its request's options and seed, and retires finished rows (stop id or string,
/// token limit, cancellation), freeing their slot for the next request. A request's tokens equal those of
/// <see cref="GlmModel.GenerateAsync"/> for the same prompt and options. ChatGLM / GLM-4 layouts only.
/// </summary>
public sealed partial class BatchScheduler : IDisposable
{
    private readonly GlmModel _model;
    private readonly object _lock = new();
    private readonly List<Request> _waiting = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private volatile bool _stopping;
    private bool _disposed;

    /// <summary>Starts a scheduler (and its loop thread) on <paramref name="model"/>, which stays owned by the caller.</summary>
    /// <exception cref="GlmException">The model is an original-GLM (2D position) model, or an option is out of range.</exception>
    public BatchScheduler(GlmModel model, BatchSchedulerOptions? options = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        options ??= new BatchSchedulerOptions();
        options.Validate();
        if (model.Config.Layout == GlmLayout.OriginalGlm)
            throw new GlmException("continuous batching supports the ChatGLM / GLM-4 layouts; original GLM models (2D positions, blank infilling) "
                + "are not supported — use GlmModel.GenerateAsync for them.");
        MaxBatch = options.MaxBatch;
        MaxContext = Math.Min(options.MaxContext ?? Math.Min(model.MaxContext, 2048), model.MaxContext);
        _cache = model.Network.CreateCache(MaxBatch, MaxContext);
        _thread = new Thread(RunLoop) { IsBackground = true, Name = "GlmSK batch scheduler" };
        _thread.Start();
    }

    /// <summary>Most requests decoded together.</summary>
    public int MaxBatch { get; }

    /// <summary>Longest prompt + completion of one request, in tokens.</summary>
    public int MaxContext { get; }

    /// <summary>Requests currently holding a slot (being decoded).</summary>
    public int ActiveCount => Volatile.Read(ref _activeCount);

    /// <summary>Requests waiting for a slot.</summary>
    public int WaitingCount { get { lock (_lock) return _waiting.Count; } }

    /// <summary>
    /// Submits a prompt and streams its continuation, one chunk per token as <see cref="GlmModel.GenerateAsync"/> does; the last
    /// chunk carries the finish reason. The prompt is checked at once; generation starts when a slot is free. Cancelling (or
    /// abandoning the enumeration) ends the stream at the next step and frees the slot.
    /// </summary>
    /// <exception cref="GlmException">The prompt is empty, holds an out-of-range id or does not fit <see cref="MaxContext"/>.</exception>
    public IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        options ??= new GenerationOptions();
        options.Validate();
        if (promptIds.Count == 0) throw new GlmException("empty prompt; expected at least one token id.");
        _model.CheckIds(promptIds);
        if (promptIds.Count >= MaxContext)
            throw new GlmException($"prompt of {promptIds.Count} tokens does not fit the batch scheduler's context of {MaxContext} tokens "
                + "(prompt + at least one new token); raise BatchSchedulerOptions.MaxContext or shorten the prompt.");
        return Stream(promptIds.ToArray(), options, cancellationToken);
    }

    /// <summary>Generates to completion through the scheduler and returns the new ids (stop token excluded).</summary>
    public async Task<IReadOnlyList<int>> GenerateIdsAsync(IReadOnlyList<int> promptIds, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var ids = new List<int>();
        var stopIds = options?.StopTokenIds ?? _model.DefaultStopIds;
        await foreach (var chunk in GenerateAsync(promptIds, options, cancellationToken).ConfigureAwait(false))
            if (chunk.TokenId >= 0 && (chunk.Finish != FinishReason.Stop || !stopIds.Contains(chunk.TokenId)))
                ids.Add(chunk.TokenId);
        return ids;
    }

    private async IAsyncEnumerable<GenerationChunk> Stream(int[] prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new Request(_model, prompt, options, MaxContext, cancellationToken);
        using var registration = cancellationToken.Register(() => Wake());
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _waiting.Add(request);
        }
        Wake();
        try
        {
            // Not cancelled through the token: the loop answers a cancellation with a final Cancelled chunk.
            await foreach (var chunk in request.Output.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
                yield return chunk;
        }
        finally
        {
            // Abandoned early (or finished): make sure the loop frees the slot.
            request.Abandon();
            Wake();
        }
    }

    private void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0) _wake.Release();
        }
        catch (ObjectDisposedException) { /* a late cancellation after Dispose: nothing to wake */ }
    }

    /// <summary>Stops the loop; requests still running or waiting end with <see cref="ObjectDisposedException"/>. Frees the KV cache.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _stopping = true;
        Wake();
        _thread.Join();
        var error = new ObjectDisposedException(nameof(BatchScheduler));
        foreach (var r in _active) r.Output.Writer.TryComplete(error);
        lock (_lock)
        {
            foreach (var r in _waiting) r.Output.Writer.TryComplete(error);
            _waiting.Clear();
        }
        _active.Clear();
        _cache.Dispose();
        _wake.Dispose();
    }

    /// <summary>One submitted request: its sampling state, its slot's cache length and its output stream.</summary>
    private sealed class Request
    {
        private readonly CancellationTokenSource _abandon = new();

        public Request(GlmModel model, int[] prompt, GenerationOptions options, int maxContext, CancellationToken ct)
        {
            Prompt = prompt;
            Options = options;
            Caller = ct;
            StopIds = options.StopTokenIds ?? model.DefaultStopIds;
            Budget = Math.Min(options.MaxNewTokens, maxContext - prompt.Length);
            Sampler = new TokenSampler(options);
            Decoder = new StreamingTextDecoder(model.Tokenizer, options.StopStrings, options.SkipSpecialTokensInText);
            Seen = new List<int>(prompt);
        }

        public int[] Prompt { get; }
        public GenerationOptions Options { get; }
        public CancellationToken Caller { get; }
        public IReadOnlyCollection<int> StopIds { get; }
        public int Budget { get; }
        public TokenSampler Sampler { get; }
        public StreamingTextDecoder Decoder { get; }
        public List<int> Seen { get; }
        public Channel<GenerationChunk> Output { get; } = Channel.CreateUnbounded<GenerationChunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        /// <summary>Tokens in this request's slot of the cache (prompt + fed tokens).</summary>
        public int Length { get; set; }
        /// <summary>The token to feed at the next decode step.</summary>
        public int Next { get; set; }
        public int Generated { get; set; }

        public bool Cancelled => Caller.IsCancellationRequested || _abandon.IsCancellationRequested;

        public void Abandon()
        {
            try { _abandon.Cancel(); } catch (ObjectDisposedException) { }
        }

        /// <summary>
        /// Emits <paramref name="token"/> exactly as <see cref="GlmModel.GenerateAsync"/> does; true when the request is finished
        /// (its stream completed).
        /// </summary>
        public bool Accept(int token)
        {
            int p = Prompt.Length;
            var w = Output.Writer;
            if (StopIds.Contains(token))
                return Finish(new GenerationChunk(token, Decoder.Flush(), FinishReason.Stop, p, Generated));
            Generated++;
            Seen.Add(token);
            string delta = Decoder.Push(token);
            if (Decoder.StopStringHit)
                return Finish(new GenerationChunk(token, delta + Decoder.Flush(), FinishReason.Stop, p, Generated));
            if (Generated >= Budget)
                return Finish(new GenerationChunk(token, delta + Decoder.Flush(), FinishReason.Length, p, Generated));
            w.TryWrite(new GenerationChunk(token, delta, FinishReason.None, p, Generated));
            if (Cancelled) return FinishCancelled();
            Next = token;
            return false;
        }

        public bool FinishCancelled() => Finish(new GenerationChunk(-1, "", FinishReason.Cancelled, Prompt.Length, Generated));

        public bool Finish(GenerationChunk last)
        {
            Output.Writer.TryWrite(last);
            Output.Writer.TryComplete();
            return true;
        }
    }
}
