namespace AgentHost.Cli.Verbs;

/// <summary>
/// An <see cref="IProgress{T}"/> that calls back synchronously on the reporting flow. <see cref="Progress{T}"/> posts to the
/// thread pool, so its last lines can arrive after the verb has returned (or in another order than reported).
/// </summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
