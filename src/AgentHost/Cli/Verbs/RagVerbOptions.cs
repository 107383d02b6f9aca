using System.CommandLine;
using AgentHost.Hosting;
using Microsoft.Extensions.Hosting;

namespace AgentHost.Cli.Verbs;

/// <summary>Options the RAG verbs share; each maps onto a configuration key (command line beats GLM_* beats appsettings.json).</summary>
internal sealed class RagVerbOptions
{
    public Option<string?> KbRoot { get; } = new("--kb-root") { Description = "Folder of the knowledge bases (config Rag:KbRoot; default ~/.glmsk/kb)." };
    public Option<string?> Prompts { get; } = new("--prompts") { Description = "Folder of prompt templates overriding the shipped prompts/ (config Rag:PromptsDir)." };
    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Log details to stderr." };
    public Option<string?> Embedding { get; } = new("--embedding") { Description = "Embedding provider: none, hashing (lexical baseline), openai, glm or bge (config Embedding:Provider; glm/bge need Embedding:ModelDir)." };
    public Option<string?> Model { get; } = new("--model", "-m") { Description = "Local chat model folder or random:NAME (sets Chat:Provider=local, Chat:ModelDir)." };

    public void AddTo(Command command, bool model = false, bool embedding = false)
    {
        command.Add(KbRoot);
        command.Add(Prompts);
        command.Add(Verbose);
        if (embedding) command.Add(Embedding);
        if (model) command.Add(Model);
    }

    /// <summary>Builds the host with the parsed options as configuration overrides.</summary>
    public IHost BuildHost(ParseResult parse, CliConsole console, IDictionary<string, string?>? extra = null)
    {
        var overrides = new Dictionary<string, string?>
        {
            ["Rag:KbRoot"] = parse.GetValue(KbRoot),
            ["Rag:PromptsDir"] = parse.GetValue(Prompts),
        };
        if (parse.GetResult(Embedding) is not null) overrides["Embedding:Provider"] = parse.GetValue(Embedding);
        if (parse.GetResult(Model) is not null && parse.GetValue(Model) is { } model)
        {
            overrides["Chat:Provider"] = "local";
            overrides["Chat:ModelDir"] = model;
        }
        foreach (var (k, v) in extra ?? new Dictionary<string, string?>()) overrides[k] = v;
        return RagHost.Build(console, overrides, parse.GetValue(Verbose));
    }
}
