using System.CommandLine;
using System.Globalization;
using Glm.Engine;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm perplexity</c>: perplexity per token and bits per character of a text file.</summary>
internal static class PerplexityVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var file = new Option<string>("--text-file") { Description = "UTF-8 text to score.", Required = true };
        var context = new Option<int>("--context") { Description = "Sliding-window size in tokens (stride = half of it).", DefaultValueFactory = _ => 1024 };
        var cmd = new Command("perplexity", "Perplexity per token and bits per character (total NLL in bits / characters) with a sliding window.");
        model.AddTo(cmd);
        cmd.Add(file);
        cmd.Add(context);
        cmd.SetAction((parse, ct) =>
        {
            string text = VerbHelpers.ReadText(parse.GetValue(file)!);
            using var glm = model.Load(parse);
            var ids = VerbHelpers.RequireTokenizer(glm, "scoring text").Encode(text);
            long chars = text.EnumerateRunes().LongCount();
            var result = glm.ComputePerplexity(ids, chars, parse.GetValue(context), cancellationToken: ct);
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine(string.Format(inv, "tokens: {0}  scored: {1}  characters: {2}", result.Tokens, result.ScoredTokens, result.Characters));
            console.Out.WriteLine(string.Format(inv, "perplexity per token: {0:F4}", result.Perplexity));
            console.Out.WriteLine(string.Format(inv, "bits per character: {0:F4}", result.BitsPerCharacter));
            return Task.FromResult(0);
        });
        return cmd;
    }
}
