using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Glm.Engine;
using Polly;
using Polly.Retry;

namespace AgentHost.Rag.Stores.Qdrant;

/// <summary>Connection settings for <see cref="QdrantRestClient"/>.</summary>
public sealed record QdrantOptions(Uri BaseUrl)
{
    /// <summary>Value of the <c>api-key</c> header, when the server requires one.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Retries after the first attempt for connection failures, timeouts, 429 and 5xx.</summary>
    public int MaxRetries { get; init; } = 3;
    /// <summary>First backoff delay; doubles per retry (with jitter).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>Per-attempt timeout.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>One search result from Qdrant; <paramref name="Dense"/> is set when the query asked for vectors.</summary>
public sealed record QdrantHit(string Id, double Score, JsonObject? Payload, float[]? Dense = null);

/// <summary>One stored point (Qdrant <c>Record</c>): id, payload and, when asked for, the dense vector.</summary>
public sealed record QdrantRecord(string Id, JsonObject? Payload, float[]? Dense);

/// <summary>A page of a scroll: the points and the offset of the next page (null after the last).</summary>
public sealed record QdrantScrollPage(IReadOnlyList<QdrantRecord> Points, JsonNode? NextOffset);

/// <summary>
/// Minimal Qdrant REST client (Qdrant.Client is not available here): collections, upsert, get/delete by id, delete by filter,
/// scroll, dense, sparse and hybrid (dense + sparse, RRF) queries. Transient failures are retried with exponential backoff; an unreachable server
/// gives a <see cref="GlmException"/> naming the URL.
/// </summary>
public sealed class QdrantRestClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly QdrantOptions _options;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;

    /// <summary>Creates a client; <paramref name="httpClient"/> (optional) lets the host share or instrument the transport.</summary>
    public QdrantRestClient(QdrantOptions options, HttpClient? httpClient = null)
    {
        _options = options;
        _ownsHttp = httpClient is null;
        _http = httpClient ?? new HttpClient();
        _retry = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = Math.Max(0, options.MaxRetries) is 0 ? 1 : options.MaxRetries,
                ShouldHandle = args => ValueTask.FromResult(options.MaxRetries > 0 && IsTransient(args.Outcome)),
                Delay = options.InitialBackoff,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .AddTimeout(options.AttemptTimeout)
            .Build();
    }

    /// <summary>The server's base URL.</summary>
    public Uri BaseUrl => _options.BaseUrl;

    private static bool IsTransient(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or Polly.Timeout.TimeoutRejectedException
        || outcome.Result is { StatusCode: HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError };

    /// <summary>Creates a collection with a dense vector of <paramref name="dimensions"/> and a sparse term vector.</summary>
    public Task CreateCollectionAsync(string collection, int dimensions, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Put, $"collections/{Uri.EscapeDataString(collection)}", QdrantRequests.CreateCollection(dimensions), ct);

    /// <summary>Deletes a collection (no error when it does not exist).</summary>
    public Task DeleteCollectionAsync(string collection, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Delete, $"collections/{Uri.EscapeDataString(collection)}", null, ct);

    /// <summary>True when the collection exists.</summary>
    public async Task<bool> CollectionExistsAsync(string collection, CancellationToken ct = default)
    {
        var result = await SendAsync(HttpMethod.Get, $"collections/{Uri.EscapeDataString(collection)}/exists", null, ct);
        return result?["exists"]?.GetValue<bool>() ?? false;
    }

    /// <summary>Names of all collections on the server.</summary>
    public async Task<IReadOnlyList<string>> ListCollectionsAsync(CancellationToken ct = default)
    {
        var result = await SendAsync(HttpMethod.Get, "collections", null, ct);
        return (result?["collections"]?.AsArray() ?? []).Select(c => c?["name"]?.GetValue<string>() ?? "").Where(n => n.Length > 0).ToList();
    }

    /// <summary>Inserts or replaces points (waits until applied).</summary>
    public Task UpsertAsync(string collection, IEnumerable<QdrantPoint> points, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Put, $"collections/{Uri.EscapeDataString(collection)}/points?wait=true", QdrantRequests.Upsert(points), ct);

    /// <summary>Deletes every point matching <paramref name="filter"/> (e.g. all chunks of a source).</summary>
    public Task DeleteByFilterAsync(string collection, QdrantFilter filter, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(collection)}/points/delete?wait=true", QdrantRequests.DeleteByFilter(filter), ct);

    /// <summary>Deletes the points with these ids (unknown ids are ignored; waits until applied).</summary>
    public Task DeleteByIdsAsync(string collection, IEnumerable<Guid> ids, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(collection)}/points/delete?wait=true", QdrantRequests.DeleteByIds(ids), ct);

    /// <summary>The points with these ids that exist (in no particular order), with payload and optionally the dense vector.</summary>
    public async Task<IReadOnlyList<QdrantRecord>> GetPointsAsync(string collection, IEnumerable<Guid> ids, bool withVector = false, CancellationToken ct = default)
    {
        var result = await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(collection)}/points", QdrantRequests.GetPoints(ids, withVector), ct);
        return (result?.AsArray() ?? []).Select(ToRecord).ToList();
    }

    /// <summary>One page of the points matching <paramref name="filter"/> (all points when null), ordered by id, from <paramref name="offset"/> on.</summary>
    public async Task<QdrantScrollPage> ScrollAsync(string collection, QdrantFilter? filter, int limit, JsonNode? offset = null, bool withVector = false,
        CancellationToken ct = default)
    {
        var result = await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(collection)}/points/scroll", QdrantRequests.Scroll(filter, limit, offset, withVector), ct);
        var points = (result?["points"]?.AsArray() ?? []).Select(ToRecord).ToList();
        var next = result?["next_page_offset"];
        return new QdrantScrollPage(points, next is null || next.GetValueKind() == JsonValueKind.Null ? null : next.DeepClone());
    }

    /// <summary>Search by the sparse (term) vector alone: keyword search, IDF-weighted.</summary>
    public Task<IReadOnlyList<QdrantHit>> SparseQueryAsync(string collection, SparseVector sparse, int limit, QdrantFilter? filter = null,
        QdrantSearchOptions? options = null, CancellationToken ct = default) =>
        QueryCoreAsync(collection, QdrantRequests.SparseQuery(sparse, limit, filter, options), ct);

    /// <summary>Dense nearest-neighbour search with a payload filter and paging/threshold/vector options.</summary>
    public Task<IReadOnlyList<QdrantHit>> QueryAsync(string collection, ReadOnlyMemory<float> dense, int limit, QdrantFilter? filter, QdrantSearchOptions options,
        CancellationToken ct = default) =>
        QueryCoreAsync(collection, QdrantRequests.Query(dense.Span, limit, filter, options), ct);

    /// <summary>Hybrid search (dense and sparse prefetches fused by RRF) with paging/threshold/vector options.</summary>
    public Task<IReadOnlyList<QdrantHit>> HybridQueryAsync(string collection, ReadOnlyMemory<float> dense, SparseVector sparse, int limit,
        QdrantFilter? filter, QdrantSearchOptions options, CancellationToken ct = default) =>
        QueryCoreAsync(collection, QdrantRequests.HybridQuery(dense.Span, sparse, limit, filter, options: options), ct);

    /// <summary>Dense nearest-neighbour search with an optional payload filter.</summary>
    public Task<IReadOnlyList<QdrantHit>> QueryAsync(string collection, ReadOnlyMemory<float> dense, int limit, QdrantFilter? filter = null, CancellationToken ct = default) =>
        QueryCoreAsync(collection, QdrantRequests.Query(dense.Span, limit, filter), ct);

    /// <summary>Hybrid search: dense and sparse prefetches fused by RRF on the server.</summary>
    public Task<IReadOnlyList<QdrantHit>> HybridQueryAsync(string collection, ReadOnlyMemory<float> dense, SparseVector sparse, int limit,
        QdrantFilter? filter = null, CancellationToken ct = default) =>
        QueryCoreAsync(collection, QdrantRequests.HybridQuery(dense.Span, sparse, limit, filter), ct);

    private async Task<IReadOnlyList<QdrantHit>> QueryCoreAsync(string collection, JsonObject body, CancellationToken ct)
    {
        var result = await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(collection)}/points/query", body, ct);
        var points = result?["points"]?.AsArray() ?? [];
        return points.Select(p => new QdrantHit(p!["id"]!.ToString(), p["score"]?.GetValue<double>() ?? 0, p["payload"] as JsonObject, DenseOf(p))).ToList();
    }

    private static QdrantRecord ToRecord(JsonNode? p) =>
        new(p?["id"]?.ToString() ?? throw new GlmException("Qdrant returned a point without an id"), p["payload"] as JsonObject, DenseOf(p));

    /// <summary>The dense vector of a returned point: <c>vector</c> is the named-vector object (or a bare array for an unnamed vector).</summary>
    private static float[]? DenseOf(JsonNode? point) => point?["vector"] switch
    {
        JsonObject named => (named[QdrantRequests.DenseVector] as JsonArray)?.Select(v => v!.GetValue<float>()).ToArray(),
        JsonArray bare => bare.Select(v => v!.GetValue<float>()).ToArray(),
        _ => null,
    };

    private async Task<JsonNode?> SendAsync(HttpMethod method, string relative, JsonObject? body, CancellationToken ct)
    {
        var baseUrl = _options.BaseUrl.AbsoluteUri.EndsWith('/') ? _options.BaseUrl : new Uri(_options.BaseUrl.AbsoluteUri + "/");
        var url = new Uri(baseUrl, relative);
        string? json = body?.ToJsonString();
        HttpResponseMessage response;
        try
        {
            response = await _retry.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(method, url);
                if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
                if (_options.ApiKey is { } key) request.Headers.Add("api-key", key);
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
                return await _http.SendAsync(request, token);
            }, ct);
        }
        catch (Exception e) when (e is HttpRequestException or Polly.Timeout.TimeoutRejectedException)
        {
            throw new GlmException($"Qdrant at {_options.BaseUrl} is unreachable ({method} {url.AbsolutePath}: {e.Message}) after "
                + $"{_options.MaxRetries + 1} attempts; start Qdrant or set the right URL", e);
        }
        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                if (method == HttpMethod.Delete && response.StatusCode == HttpStatusCode.NotFound) return null;
                throw new GlmException($"Qdrant {method} {url.AbsolutePath} failed with HTTP {(int)response.StatusCode}: {ErrorText(text)}");
            }
            try { return string.IsNullOrWhiteSpace(text) ? null : JsonNode.Parse(text)?["result"]; }
            catch (JsonException e)
            {
                throw new GlmException($"Qdrant {method} {url.AbsolutePath}: response is not JSON ({e.Message}); expected the {{result, status, time}} envelope", e);
            }
        }
    }

    private static string ErrorText(string body)
    {
        try { return JsonNode.Parse(body)?["status"]?["error"]?.GetValue<string>() ?? body; }
        catch (JsonException) { return body.Length > 300 ? body[..300] : body; }
    }

    /// <summary>Disposes the HttpClient when this client created it.</summary>
    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
