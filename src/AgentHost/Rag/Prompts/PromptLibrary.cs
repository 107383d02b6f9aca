using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using Glm.Engine;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.Rag.Prompts;

/// <summary>
/// Prompt templates on disk in the Semantic Kernel layout: one folder per prompt holding <c>skprompt.txt</c> (the template,
/// <c>{{$variable}}</c> syntax) and <c>config.json</c> (<see cref="PromptTemplateConfig"/>: description, input_variables,
/// execution_settings). Rendered with SK's <see cref="KernelPromptTemplateFactory"/>. Loaded at run time, so users can edit
/// them or point <c>--prompts DIR</c> at their own copy.
/// </summary>
public sealed partial class PromptLibrary
{
    /// <summary>System prompt for answering.</summary>
    public const string SystemPrompt = "system";
    /// <summary>Question + numbered context → answer with [n] citations.</summary>
    public const string Qa = "qa";
    /// <summary>Fixed answer when nothing relevant was retrieved.</summary>
    public const string NoAnswer = "no_answer";
    /// <summary>Summary of one chunk (map step).</summary>
    public const string Map = "map";
    /// <summary>Summary of partial summaries (reduce step).</summary>
    public const string Reduce = "reduce";
    /// <summary>Turns a question into a search query.</summary>
    public const string QueryRewrite = "query_rewrite";
    /// <summary>System message of the knowledge-base agent (glm chat --kb) when the model can call tools.</summary>
    public const string Agent = "agent";

    /// <summary>Every prompt the host uses.</summary>
    public static IReadOnlyList<string> Names { get; } = [SystemPrompt, Qa, NoAnswer, Map, Reduce, QueryRewrite, Agent];

    private readonly ConcurrentDictionary<string, PromptTemplateConfig> _cache = new();
    private readonly KernelPromptTemplateFactory _factory = new() { AllowDangerouslySetContent = true };
    private readonly Kernel _kernel = new();

    /// <summary>Folder holding one sub-folder per prompt.</summary>
    public string Directory { get; }

    /// <summary>Uses the templates under <paramref name="directory"/> (checked when a prompt is first loaded).</summary>
    public PromptLibrary(string directory) => Directory = Path.GetFullPath(directory);

    [GeneratedRegex(@"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")]
    private static partial Regex VariableReference();

    /// <summary>Loads and checks one prompt: both files present, config.json valid, every <c>{{$var}}</c> declared.</summary>
    /// <exception cref="GlmException">Names the file and what is wrong.</exception>
    public PromptTemplateConfig Load(string name) => _cache.GetOrAdd(name, LoadUncached);

    private PromptTemplateConfig LoadUncached(string name)
    {
        if (!System.IO.Directory.Exists(Directory))
            throw new GlmException($"prompts folder {Directory} not found; pass --prompts DIR or set Rag:PromptsDir to a folder with {string.Join(", ", Names)}");
        string folder = Path.Combine(Directory, name);
        string templatePath = Path.Combine(folder, "skprompt.txt"), configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(templatePath))
            throw new GlmException($"{templatePath}: prompt template '{name}' is missing; expected {name}/skprompt.txt and {name}/config.json under {Directory}");
        if (!File.Exists(configPath))
            throw new GlmException($"{configPath}: prompt config for '{name}' is missing; expected an SK config.json next to {templatePath}");
        PromptTemplateConfig config;
        try { config = PromptTemplateConfig.FromJson(File.ReadAllText(configPath)); }
        catch (Exception e) when (e is JsonException or ArgumentException or NotSupportedException)
        {
            throw new GlmException($"{configPath}: malformed prompt config ({e.Message})", e);
        }
        config.Template = File.ReadAllText(templatePath);
        config.Name ??= name;
        if (string.IsNullOrWhiteSpace(config.Template)) throw new GlmException($"{templatePath}: prompt template '{name}' is empty");
        var declared = config.InputVariables.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        foreach (Match m in VariableReference().Matches(config.Template))
            if (!declared.Contains(m.Groups[1].Value))
                throw new GlmException($"{templatePath}: uses {{{{${m.Groups[1].Value}}}}} but {configPath} does not declare it in input_variables (declared: {(declared.Count == 0 ? "none" : string.Join(", ", declared))})");
        try { _factory.Create(config); }
        catch (KernelException e) { throw new GlmException($"{templatePath}: malformed template ({e.Message})", e); }
        return config;
    }

    /// <summary>Checks that every prompt the host uses loads.</summary>
    public void ValidateAll()
    {
        foreach (var name in Names) Load(name);
    }

    /// <summary>Renders prompt <paramref name="name"/> with <paramref name="arguments"/>; required variables must be given.</summary>
    public async Task<string> RenderAsync(string name, IReadOnlyDictionary<string, object?> arguments, CancellationToken cancellationToken = default)
    {
        var config = Load(name);
        foreach (var v in config.InputVariables)
            if (v.IsRequired && v.Default is null && !arguments.ContainsKey(v.Name))
                throw new GlmException($"{Path.Combine(Directory, name, "config.json")}: variable '{v.Name}' is required but the host did not supply it");
        var kernelArguments = new KernelArguments();
        foreach (var (key, value) in arguments) kernelArguments[key] = value;
        var template = _factory.Create(config);
        string text = await template.RenderAsync(_kernel, kernelArguments, cancellationToken).ConfigureAwait(false);
        return text.Trim();
    }

    /// <summary>Chat options from the prompt's default execution settings (max_tokens, temperature, top_p, …), or null.</summary>
    public ChatOptions? OptionsFor(string name)
    {
        var settings = Load(name).DefaultExecutionSettings;
        return settings?.ToChatOptions(null);
    }
}
