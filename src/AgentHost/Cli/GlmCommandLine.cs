namespace AgentHost.Cli;

/// <summary>Builds and runs the `glm` command line.</summary>
public static class GlmCommandLine
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen verb; returns the process exit code.</summary>
    public static Task<int> RunAsync(string[] args)
    {
        Console.Error.WriteLine("glm: no verbs are wired yet.");
        return Task.FromResult(2);
    }
}
