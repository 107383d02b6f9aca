using Spectre.Console;

namespace AgentHost.Cli.Verbs;

/// <summary>Progress and tables for the RAG verbs: Spectre bars on a terminal, plain lines on stderr otherwise.</summary>
internal static class RagConsole
{
    /// <summary>A Spectre console writing to the verb's output (no colours or cursor moves when not interactive).</summary>
    public static IAnsiConsole Output(CliConsole console) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(console.Out),
        Ansi = console.IsInteractive ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = console.IsInteractive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        Interactive = console.IsInteractive ? InteractionSupport.Detect : InteractionSupport.No,
    });

    /// <summary>Runs <paramref name="work"/>, which reports (stage, done, total); shows bars per stage or plain progress lines.</summary>
    public static async Task<T> RunWithProgressAsync<T>(CliConsole console, Func<Action<string, int, int>, Task<T>> work)
    {
        if (console.IsInteractive)
        {
            T result = default!;
            await AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    result = await work((stage, done, total) =>
                    {
                        if (!tasks.TryGetValue(stage, out var task)) tasks[stage] = task = ctx.AddTask(Markup.Escape(stage), maxValue: Math.Max(1, total));
                        task.MaxValue = Math.Max(1, total);
                        task.Value = Math.Min(done, task.MaxValue);
                    });
                });
            return result;
        }
        var last = new Dictionary<string, int>();
        return await work((stage, done, total) =>
        {
            int step = Math.Max(1, total / 10);
            bool first = !last.TryGetValue(stage, out int previous);
            if (first || done == total && previous != total || done - previous >= step)
            {
                console.Error.WriteLine($"{stage}: {done}/{total}");
                last[stage] = done;
            }
        });
    }
}
