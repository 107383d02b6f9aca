using System.CommandLine;
using Glm.Engine;
using Glm.Engine.Diagnostics;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm logits</c>: write the logits at every position as a float32 .npy [n, vocab].</summary>
internal static class LogitsVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var ids = new Option<string>("--ids") { Description = "Token ids, e.g. 1,2,3.", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output .npy file.", Required = true };
        var mode = new Option<string>("--mode") { Description = "full: one forward pass; incremental: one token at a time through the KV cache.", DefaultValueFactory = _ => "full" };
        mode.AcceptOnlyFromAmong("full", "incremental");
        var cmd = new Command("logits", "Write float32 logits [n, vocab] at every position of --ids to a NumPy .npy file.");
        model.AddTo(cmd);
        cmd.Add(ids);
        cmd.Add(output);
        cmd.Add(mode);
        cmd.SetAction(parse =>
        {
            var tokenIds = VerbHelpers.ParseIds(parse.GetValue(ids)!);
            using var glm = model.Load(parse);
            var logits = glm.ComputeLogits(tokenIds, parse.GetValue(mode) == "incremental");
            string path = parse.GetValue(output)!;
            NpyWriter.Write(path, logits);
            console.Error.WriteLine($"wrote {path}: float32 [{logits.GetLength(0)}, {logits.GetLength(1)}]");
            return 0;
        });
        return cmd;
    }
}
