using Microsoft.Extensions.Logging;

namespace AgentHost.Hosting;

/// <summary>Writes log lines ("info: Category: message") to a <see cref="TextWriter"/> (the CLI's stderr).</summary>
public sealed class TextWriterLoggerProvider(TextWriter writer, LogLevel minimum) : ILoggerProvider
{
    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Logger(writer, minimum, categoryName);

    /// <inheritdoc />
    public void Dispose() { }

    private sealed class Logger(TextWriter writer, LogLevel minimum, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string level = logLevel switch
            {
                LogLevel.Trace => "trce", LogLevel.Debug => "dbug", LogLevel.Information => "info",
                LogLevel.Warning => "warn", LogLevel.Error => "fail", _ => "crit",
            };
            string name = category[(category.LastIndexOf('.') + 1)..];
            lock (writer)
            {
                writer.WriteLine($"{level}: {name}: {formatter(state, exception)}");
                if (exception is not null) writer.WriteLine(exception.ToString());
            }
        }
    }
}
