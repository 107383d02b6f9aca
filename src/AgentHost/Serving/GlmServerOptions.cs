using System.Net;
using Glm.Engine;

namespace AgentHost.Serving;

/// <summary>Settings of the OpenAI-compatible server (<c>glm serve</c>).</summary>
public sealed record GlmServerOptions
{
    /// <summary>Address to bind (default 127.0.0.1). A non-loopback address requires <see cref="ApiKey"/>.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port (default 8000; 0 = any free port).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>Bearer token clients must send; null = no authentication (loopback only).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Largest request body in bytes (default 1 MiB); larger bodies get 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>Largest <c>max_tokens</c> a request may ask for (default 4096); also the cap when a request sets none.</summary>
    public int MaxTokensLimit { get; init; } = 4096;

    /// <summary>Tokens generated when a request sets no <c>max_tokens</c> (default 512).</summary>
    public int DefaultMaxTokens { get; init; } = 512;

    /// <summary>
    /// Requests generating at once (default 1). Above 1, serve through a <see cref="Glm.Engine.Generation.BatchScheduler"/>
    /// of that batch size (see <see cref="GlmServerBackend.ForModel"/>) so they are decoded together; without one, forwards
    /// of concurrent requests interleave on the model one at a time.
    /// </summary>
    public int MaxConcurrentRequests { get; init; } = 1;

    /// <summary>Requests that may wait for a slot (default 16); more get 429.</summary>
    public int MaxQueuedRequests { get; init; } = 16;

    /// <summary>Largest number of inputs in one embeddings request (default 256).</summary>
    public int MaxEmbeddingInputs { get; init; } = 256;

    /// <summary>Throws <see cref="GlmException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (!IPAddress.TryParse(Host, out var address) && Host != "localhost")
            throw new GlmException($"--host '{Host}' is not an IP address; expected e.g. 127.0.0.1 or 0.0.0.0.");
        bool loopback = Host == "localhost" || IPAddress.IsLoopback(address!);
        if (!loopback && string.IsNullOrEmpty(ApiKey))
            throw new GlmException($"--host {Host} is reachable from other machines: an --api-key is required when binding to a non-loopback address.");
        if (Port is < 0 or > 65535) throw new GlmException($"--port {Port}: expected 0..65535.");
        if (MaxBodyBytes < 1024) throw new GlmException($"max body size {MaxBodyBytes}: expected at least 1024 bytes.");
        if (MaxTokensLimit < 1 || DefaultMaxTokens < 1 || DefaultMaxTokens > MaxTokensLimit)
            throw new GlmException($"token limits: default {DefaultMaxTokens} and limit {MaxTokensLimit} must be ≥ 1 with default ≤ limit.");
        if (MaxConcurrentRequests < 1) throw new GlmException($"concurrent requests {MaxConcurrentRequests}: expected 1 or more.");
        if (MaxQueuedRequests < 0) throw new GlmException($"--max-queue {MaxQueuedRequests}: expected 0 or more.");
    }
}
