using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Hosting;

/// <summary>
/// Per-flow (AsyncLocal) hooks for embedding the CLI in tests or another host: extra DI registrations (e.g. a scripted chat
/// client), a settings file instead of appsettings.json next to the program, and the reader for confirmations. Unset in
/// normal runs.
/// </summary>
public static class RagHostHooks
{
    private static readonly AsyncLocal<Action<IServiceCollection>?> s_configureServices = new();
    private static readonly AsyncLocal<string?> s_settingsFile = new();
    private static readonly AsyncLocal<TextReader?> s_input = new();

    /// <summary>Registrations applied after the defaults (later registrations win).</summary>
    public static Action<IServiceCollection>? ConfigureServices => s_configureServices.Value;

    /// <summary>Configuration file read instead of appsettings.json next to the program.</summary>
    public static string? SettingsFile => s_settingsFile.Value;

    /// <summary>Where confirmations and <c>glm chat</c> input are read from (default: the terminal's stdin).</summary>
    public static TextReader? Input => s_input.Value;

    /// <summary>Sets the hooks for the calling flow until the returned scope is disposed.</summary>
    public static IDisposable Use(Action<IServiceCollection>? configureServices = null, string? settingsFile = null, TextReader? input = null)
    {
        var previous = (s_configureServices.Value, s_settingsFile.Value, s_input.Value);
        s_configureServices.Value = configureServices;
        s_settingsFile.Value = settingsFile;
        s_input.Value = input;
        return new Scope(() => (s_configureServices.Value, s_settingsFile.Value, s_input.Value) = previous);
    }

    private sealed class Scope(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
