using System.CommandLine;
using Glm.Engine;
using Glm.Engine.Generation;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm chat</c>: interactive multi-turn chat with the model's own template, streaming.</summary>
internal static class ChatVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var sampling = new SamplingOptions();
        var system = new Option<string?>("--system") { Description = "System prompt." };
        var cmd = new Command("chat", "Interactive multi-turn chat (type /exit or an empty line at EOF to leave, /reset to clear history).");
        model.AddTo(cmd);
        sampling.AddTo(cmd);
        cmd.Add(system);
        cmd.SetAction(async (parse, ct) =>
        {
            var options = sampling.Build(parse, defaultTemperature: 0.8f, defaultTopP: 0.8f);
            using var glm = model.Load(parse);
            var session = ChatSession.Create(glm, parse.GetValue(system));
            console.Error.WriteLine($"chatting with {glm.Source} — /exit to leave, /reset to start over.");
            while (!ct.IsCancellationRequested)
            {
                console.Out.Write("\n你: ");
                console.Out.Flush();
                string? line = Console.In.ReadLine();
                if (line is null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset") { session.Reset(); continue; }
                if (string.IsNullOrWhiteSpace(line)) continue;
                console.Out.Write("GLM: ");
                await foreach (var delta in session.SendAsync(line, options, ct))
                {
                    console.Out.Write(delta);
                    console.Out.Flush();
                }
                console.Out.WriteLine();
            }
            return 0;
        });
        return cmd;
    }
}
