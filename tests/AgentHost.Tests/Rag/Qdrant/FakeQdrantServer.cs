using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace AgentHost.Tests.Rag.Qdrant;

/// <summary>
/// An in-memory stand-in for the Qdrant REST API behind an HttpMessageHandler: records every request, validates each JSON body
/// against the official OpenAPI schema (failing the request with HTTP 422 and collecting the errors), and answers in Qdrant's
/// <c>{result, status, time}</c> envelope. Points are stored as sent; get/scroll/delete honour ids and <c>must</c> conditions with
/// <c>match.value</c>/<c>match.any</c>/<c>match.text</c>. Queries return the filtered points in payload-key order with scores 1, 1/2, 1/3, … unless
/// <see cref="QueryResult"/> overrides them.
/// </summary>
internal sealed class FakeQdrantServer : HttpMessageHandler
{
    private readonly Lazy<OpenApiSchemaValidator> _validator = new(() => OpenApiSchemaValidator.Load(RagPaths.Shared("data/qdrant/openapi.json")));
    private readonly Dictionary<string, SortedDictionary<string, JsonObject>> _collections = [];

    /// <summary>Serializer options that leave CJK text unescaped, for comparing JSON in assertions.</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public List<(HttpMethod Method, string Path, JsonNode? Body)> Requests { get; } = [];
    public List<string> SchemaErrors { get; } = [];
    public Dictionary<string, int> CreatedDimensions { get; } = [];

    /// <summary>Overrides the answer of <c>points/query</c> (the <c>result</c> JSON).</summary>
    public Func<JsonNode, string>? QueryResult { get; set; }

    public void AddCollection(string name) => _collections[name] = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, JsonObject> Points(string collection) => _collections[collection];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        string path = request.RequestUri!.AbsolutePath;
        string? text = request.Content is null ? null : await request.Content.ReadAsStringAsync(ct);
        var body = text is null ? null : JsonNode.Parse(text);
        Requests.Add((request.Method, path, body));
        if (text is not null)
        {
            var errors = _validator.Value.ValidateRequestBody(request.Method.Method, path, text);
            if (errors.Count > 0)
            {
                SchemaErrors.AddRange(errors.Select(e => $"{request.Method} {path}: {e}"));
                return Reply(HttpStatusCode.UnprocessableEntity, null, "request body does not match the OpenAPI schema");
            }
        }
        var m = Regex.Match(path, "^/collections(?:/(?<c>[^/]+)(?<rest>/.*)?)?$");
        if (!m.Success) return Reply(HttpStatusCode.NotFound, null, $"no route {path}");
        string name = Uri.UnescapeDataString(m.Groups["c"].Value), rest = m.Groups["rest"].Value;
        if (name.Length == 0) return Reply(HttpStatusCode.OK, new JsonObject { ["collections"] = new JsonArray(_collections.Keys.Select(k => (JsonNode)new JsonObject { ["name"] = k }).ToArray()) });
        if (rest == "/exists") return Reply(HttpStatusCode.OK, new JsonObject { ["exists"] = _collections.ContainsKey(name) });
        if (rest == "" && request.Method == HttpMethod.Put)
        {
            _collections[name] = new(StringComparer.Ordinal);
            CreatedDimensions[name] = body!["vectors"]!["dense"]!["size"]!.GetValue<int>();
            return Reply(HttpStatusCode.OK, JsonValue.Create(true));
        }
        if (rest == "" && request.Method == HttpMethod.Delete)
            return _collections.Remove(name) ? Reply(HttpStatusCode.OK, JsonValue.Create(true)) : Reply(HttpStatusCode.NotFound, null, $"Collection `{name}` doesn't exist!");
        if (!_collections.TryGetValue(name, out var points)) return Reply(HttpStatusCode.NotFound, null, $"Not found: Collection `{name}` doesn't exist!");
        switch (rest)
        {
            case "/points" when request.Method == HttpMethod.Put:
                foreach (var p in body!["points"]!.AsArray()) points[p!["id"]!.ToString()] = p.DeepClone().AsObject();
                return Reply(HttpStatusCode.OK, new JsonObject { ["operation_id"] = 1, ["status"] = "completed" });
            case "/points":
                return Reply(HttpStatusCode.OK, new JsonArray(body!["ids"]!.AsArray().Select(id => id!.ToString()).Where(points.ContainsKey)
                    .Select(id => Output(points[id], body["with_vector"])).ToArray()));
            case "/points/delete":
                foreach (var id in body!["points"]?.AsArray() ?? []) points.Remove(id!.ToString());
                foreach (var id in points.Where(p => body["filter"] is { } f && Matches(p.Value, f)).Select(p => p.Key).ToList()) points.Remove(id);
                return Reply(HttpStatusCode.OK, new JsonObject { ["operation_id"] = 2, ["status"] = "completed" });
            case "/points/scroll":
            {
                int limit = body!["limit"]?.GetValue<int>() ?? 10;
                string? from = body["offset"]?.ToString();
                var matching = points.Where(p => (from is null || string.CompareOrdinal(p.Key, from) >= 0) && Matches(p.Value, body["filter"])).ToList();
                return Reply(HttpStatusCode.OK, new JsonObject
                {
                    ["points"] = new JsonArray(matching.Take(limit).Select(p => Output(p.Value, body["with_vector"])).ToArray()),
                    ["next_page_offset"] = matching.Count > limit ? matching[limit].Key : null,
                });
            }
            case "/points/query":
            {
                if (QueryResult is { } result) return Reply(HttpStatusCode.OK, JsonNode.Parse(result(body!)));
                var filter = body!["filter"] ?? body["prefetch"]?[0]?["filter"];
                int offset = body["offset"]?.GetValue<int>() ?? 0, limit = body["limit"]?.GetValue<int>() ?? 10;
                var hits = points.Values.Where(p => Matches(p, filter)).OrderBy(p => p["payload"]?["key"]?.ToString(), StringComparer.Ordinal).Select((p, i) => (Point: p, Score: 1.0 / (i + 1))).Skip(offset).Take(limit);
                return Reply(HttpStatusCode.OK, new JsonObject
                {
                    ["points"] = new JsonArray(hits.Select(h =>
                    {
                        var o = Output(h.Point, body["with_vector"]);
                        o["score"] = h.Score;
                        o["version"] = 1;
                        return (JsonNode)o;
                    }).ToArray()),
                });
            }
            default:
                return Reply(HttpStatusCode.NotFound, null, $"no route {request.Method} {path}");
        }
    }

    private static JsonObject Output(JsonObject point, JsonNode? withVector)
    {
        var o = new JsonObject { ["id"] = point["id"]!.DeepClone(), ["payload"] = point["payload"]?.DeepClone() };
        if (withVector is JsonArray names && point["vector"] is JsonObject vectors)
            o["vector"] = new JsonObject(names.Select(n => n!.GetValue<string>()).Where(vectors.ContainsKey)
                .Select(n => KeyValuePair.Create(n, vectors[n]?.DeepClone())));
        return o;
    }

    private static bool Matches(JsonObject point, JsonNode? filter)
    {
        foreach (var condition in filter?["must"]?.AsArray() ?? [])
        {
            var value = point["payload"]?[condition!["key"]!.GetValue<string>()];
            var match = condition!["match"]!;
            bool ok = match["value"] is { } v ? value?.ToJsonString() == v.ToJsonString()
                : match["any"] is JsonArray any ? any.Any(a => a!.ToJsonString() == value?.ToJsonString())
                : match["text"] is { } t && value is JsonValue s && s.GetValue<string>().Contains(t.GetValue<string>(), StringComparison.Ordinal);
            if (!ok) return false;
        }
        return true;
    }

    private static HttpResponseMessage Reply(HttpStatusCode status, JsonNode? result, string? error = null)
    {
        var envelope = error is null
            ? new JsonObject { ["result"] = result, ["status"] = "ok", ["time"] = 0.001 }
            : new JsonObject { ["status"] = new JsonObject { ["error"] = error }, ["time"] = 0.001 };
        return new HttpResponseMessage(status) { Content = new StringContent(envelope.ToJsonString(), Encoding.UTF8, "application/json") };
    }
}
