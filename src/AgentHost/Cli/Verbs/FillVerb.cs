using System.CommandLine;
using Glm.Engine;
using Glm.Engine.Generation;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm fill --text "…[MASK]…" [--method search|native]</c>: fill the blanks of a text with an original-GLM model.</summary>
internal static class FillVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var text = new Option<string>("--text") { Description = "Text with one or more [MASK]/[sMASK]/[gMASK] blanks, filled first to last.", Required = true };
        var method = new Option<string>("--method")
        {
            Description = "search: the 1..--max-tokens token fill that best explains the text on both sides, read left to right " +
                          "(GlmModel.BestBlankFillLeftToRight; what the model card measures); native: GLM's own decoding of each blank from Part A, greedy.",
            DefaultValueFactory = _ => "search",
        };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Longest fill: tokens per blank (search: 1..this; native: stop after this many).", DefaultValueFactory = _ => 3 };
        var cmd = new Command("fill", "Fill the [MASK] blanks of a text with an original-GLM model (the bundled one by default).");
        model.AddTo(cmd);
        cmd.Add(text); cmd.Add(method); cmd.Add(maxTokens);
        cmd.SetAction(async (parse, ct) =>
        {
            string chosen = parse.GetValue(method)!, input = parse.GetValue(text)!;
            int limit = parse.GetValue(maxTokens);
            if (chosen is not ("search" or "native")) throw new GlmException($"--method '{chosen}': expected search or native.");
            if (limit < 1) throw new GlmException($"--max-tokens {limit}: expected ≥ 1.");
            using var glm = model.Load(parse); // both fill methods refuse models that are not original GLM, naming the layout
            string filled = chosen == "search"
                ? glm.FillBlanksLeftToRight(input, limit)
                : await glm.FillBlanksAsync(input, new GenerationOptions { MaxNewTokens = limit }, ct);
            console.Out.WriteLine(filled);
            return 0;
        });
        return cmd;
    }
}
