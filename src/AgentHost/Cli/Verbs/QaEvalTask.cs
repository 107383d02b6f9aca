using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.FineTuning;
using Glm.Engine.FineTuning.GroundedQa;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm eval --task qa</c>: greedy answers in the model's chat format, scored by exact match and character F1 (CMRC-style
/// normalisation), plus the share of answers that ended with the turn's stop token, and a few examples. Hooked into
/// <see cref="EvalFinetuneVerb"/> before its own task dispatch.
/// </summary>
internal static class QaEvalTask
{
    private const string MaxNewTokensName = "--max-new-tokens";
    private const string ExamplesName = "--examples";

    /// <summary>Adds the options qa needs unless the command already has options of those names.</summary>
    public static void AddTo(Command command, FineTuneTaskOptions task)
    {
        task.Task.Description += " qa: grounded QA by greedy generation (exact match, character F1, stop rate).";
        if (!command.Options.Any(o => o.Name == MaxNewTokensName))
            command.Add(new Option<int>(MaxNewTokensName) { DefaultValueFactory = _ => 64, Description = "Greedy generation budget per answer." });
        if (!command.Options.Any(o => o.Name == ExamplesName))
            command.Add(new Option<int>(ExamplesName) { DefaultValueFactory = _ => 3, Description = "Generated examples to print." });
    }

    /// <summary>True when --task is qa.</summary>
    public static bool Applies(ParseResult parse, FineTuneTaskOptions task) => parse.GetValue(task.Task) == "qa";

    /// <summary>Runs the evaluation and prints the scores.</summary>
    public static async Task<int> RunAsync(CliConsole console, GlmModel glm, string path, ParseResult parse, CancellationToken ct)
    {
        var examples = ChatSftData.Load(path);
        int maxNew = parse.GetValue<int>(MaxNewTokensName), show = parse.GetValue<int>(ExamplesName);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var result = await GroundedQaEvaluator.EvaluateAsync(glm, examples, maxNew, (i, _) =>
        {
            if ((i + 1) % 50 == 0) console.Error.WriteLine($"... {i + 1}/{examples.Count} answered, {sw.Elapsed:mm\\:ss}");
        }, ct).ConfigureAwait(false);
        var inv = CultureInfo.InvariantCulture;
        console.Out.WriteLine(string.Format(inv, "questions: {0}", result.Count));
        console.Out.WriteLine(string.Format(inv, "exact_match: {0:F2}", result.ExactMatch));
        console.Out.WriteLine(string.Format(inv, "f1: {0:F2} (character level, longest common substring, CMRC-style normalisation)", result.F1));
        console.Out.WriteLine(string.Format(inv, "stopped: {0:F2} (% of answers ending with the turn's stop token within {1} tokens)", result.StoppedRate, maxNew));
        foreach (var p in result.Predictions.Take(Math.Max(0, show)))
        {
            console.Out.WriteLine($"--- {Clip(p.Question.Replace('\n', ' '), 160)}");
            console.Out.WriteLine($"    reference: {p.Reference}");
            console.Out.WriteLine(string.Format(inv, "    predicted: {0}{1}  (EM {2:F0}, F1 {3:F2})", p.Prediction, p.Stopped ? "" : " [no stop]", p.ExactMatch, p.F1));
        }
        return 0;
    }

    private static string Clip(string s, int n) => s.Length <= n ? s : s[..n] + "…";
}
