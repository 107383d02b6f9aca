using System.CommandLine;
using System.Text.Json;
using Glm.Engine;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm tokenize</c>: print the ids of a text as a JSON array.</summary>
internal static class TokenizeVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var text = new Option<string?>("--text") { Description = "Text to tokenize." };
        var file = new Option<string?>("--text-file") { Description = "UTF-8 file to tokenize." };
        var cmd = new Command("tokenize", "Print the token ids of a text (the text alone, no prefix tokens) as a JSON array.");
        model.AddTo(cmd);
        cmd.Add(text);
        cmd.Add(file);
        cmd.SetAction(parse =>
        {
            string? t = parse.GetValue(text), f = parse.GetValue(file);
            if ((t is null) == (f is null)) throw new GlmException("tokenize needs exactly one of --text TEXT or --text-file FILE.");
            using var glm = model.Load(parse);
            var tok = VerbHelpers.RequireTokenizer(glm, "tokenizing");
            console.Out.WriteLine(JsonSerializer.Serialize(tok.Encode(t ?? VerbHelpers.ReadText(f!))));
            return 0;
        });
        return cmd;
    }
}
