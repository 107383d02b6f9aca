using System.CommandLine;
using AgentHost.Cli.Verbs;
using Glm.Engine;

namespace AgentHost.Cli;

/// <summary>Builds and runs the `glm` command line.</summary>
public static class GlmCommandLine
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen verb; returns the process exit code.</summary>
    public static Task<int> RunAsync(string[] args) => RunAsync(args, Console.Out, Console.Error);

    /// <summary>Runs with explicit output writers (tests capture them).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var console = new CliConsole(output, error);
        var root = Build(console);
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        try
        {
            return await parse.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
        }
        catch (GlmException ex)
        {
            error.WriteLine($"error: {ex.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled.");
            return 130;
        }
    }

    /// <summary>The root command with every verb.</summary>
    public static RootCommand Build(CliConsole console)
    {
        var root = new RootCommand("glm — run, train and serve GLM-family models (ChatGLM3, GLM-4, GLM) in pure .NET.");
        root.Add(GenerateVerb.Create(console));
        root.Add(ChatVerb.Create(console));
        root.Add(LogitsVerb.Create(console));
        root.Add(TokenizeVerb.Create(console));
        root.Add(PerplexityVerb.Create(console));
        root.Add(BenchVerb.Create(console));
        root.Add(TrainTokenizerVerb.Create(console));
        root.Add(PretrainVerb.Create(console));
        root.Add(EvalPretrainVerb.Create(console));
        root.Add(FillVerb.Create(console));
        root.Add(ProbeBlanksVerb.Create(console));
        root.Add(ServeVerb.Create(console));
        root.Add(IngestVerb.Create(console));
        root.Add(AskVerb.Create(console));
        root.Add(SummarizeVerb.Create(console));
        root.Add(KbVerb.Create(console));
        root.Add(EvalRagVerb.Create(console));
        root.Add(BuildQaVerb.Create(console));
        root.Add(FinetuneVerb.Create(console));
        root.Add(EvalFinetuneVerb.Create(console));
        root.Add(MergeVerb.Create(console));
        root.Add(BaselineVerb.Create(console));
        root.Add(QuantizeVerb.Create(console));
        root.Add(ConvertVerb.Create(console));
        return root;
    }
}

/// <summary>Where verbs write: normal output and diagnostics (kept apart so output can be piped).</summary>
public sealed record CliConsole(TextWriter Out, TextWriter Error)
{
    /// <summary>True when output goes to a real terminal (progress bars and colours are shown only then).</summary>
    public bool IsInteractive => ReferenceEquals(Out, Console.Out) && !Console.IsOutputRedirected;
}
