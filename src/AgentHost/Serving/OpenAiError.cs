using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace AgentHost.Serving;

/// <summary>An error answered as OpenAI does: <c>{"error":{"message","type","param","code"}}</c> with an HTTP status.</summary>
public sealed class OpenAiError : Exception
{
    /// <summary>Creates an error with an HTTP status, an OpenAI error type and optional param and code.</summary>
    public OpenAiError(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    /// <summary>HTTP status code.</summary>
    public int Status { get; }
    /// <summary>OpenAI error type (invalid_request_error, authentication_error, rate_limit_error, server_error …).</summary>
    public string Type { get; }
    /// <summary>The request field at fault, if any.</summary>
    public string? Param { get; }
    /// <summary>A machine-readable code, if any.</summary>
    public string? Code { get; }

    /// <summary>400 for a field: <c>invalid_request_error</c> naming <paramref name="param"/>.</summary>
    public static OpenAiError BadField(string param, string message, string? code = "invalid_value") => new(400, message, param: param, code: code);

    /// <summary>Writes the error body and status (unless the response has started).</summary>
    public async Task WriteAsync(HttpResponse response)
    {
        if (response.HasStarted) return;
        response.StatusCode = Status;
        if (Status == 413) response.Headers.Connection = "close"; // the unread body makes the connection unusable
        response.ContentType = "application/json";
        await response.WriteAsync(JsonSerializer.Serialize(Body())).ConfigureAwait(false);
    }

    /// <summary>The JSON body object.</summary>
    public object Body() => new { error = new { message = Message, type = Type, param = Param, code = Code } };
}
