using System.CommandLine;
using System.Text.Json;
using Glm.Engine;
using Glm.Engine.Generation;
using Glm.Engine.Modeling;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm generate</c>: continue a prompt, streaming text.</summary>
internal static class GenerateVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Text to continue." };
        var ids = new Option<string?>("--ids") { Description = "Token ids to continue, e.g. 1,2,3 (instead of --prompt)." };
        var sampling = new SamplingOptions();
        var printIds = new Option<bool>("--print-ids") { Description = "Print the generated ids as a JSON array after the text." };
        var cmd = new Command("generate", "Continue a prompt with the model, streaming the text.");
        model.AddTo(cmd);
        cmd.Add(prompt);
        cmd.Add(ids);
        sampling.AddTo(cmd);
        cmd.Add(printIds);
        cmd.SetAction(async (parse, ct) =>
        {
            string? text = parse.GetValue(prompt), idText = parse.GetValue(ids);
            if ((text is null) == (idText is null))
                throw new GlmException("generate needs exactly one of --prompt TEXT or --ids 1,2,3.");
            var options = sampling.Build(parse);
            using var glm = model.Load(parse);
            var promptIds = idText is not null ? VerbHelpers.ParseIds(idText) : VerbHelpers.PromptIds(glm, text!).ToArray();
            var generated = new List<int>();
            var finish = FinishReason.None;
            // Original GLM continues text through its document-level blank: [CLS] prompt [gMASK], then Part B.
            var stream = glm.Config.Layout == GlmLayout.OriginalGlm && text is not null
                ? glm.GenerateBlankAsync(VerbHelpers.GlmContinuationPartA(glm, text), options, ct)
                : glm.GenerateAsync(promptIds, options, ct);
            await foreach (var chunk in stream)
            {
                console.Out.Write(chunk.TextDelta);
                console.Out.Flush();
                if (chunk.TokenId >= 0 && chunk.Finish is FinishReason.None or FinishReason.Length) generated.Add(chunk.TokenId);
                finish = chunk.Finish;
            }
            console.Out.WriteLine();
            if (parse.GetValue(printIds)) console.Out.WriteLine(JsonSerializer.Serialize(generated));
            console.Error.WriteLine($"[{generated.Count} tokens, finish: {finish.ToString().ToLowerInvariant()}]");
            return 0;
        });
        return cmd;
    }
}

/// <summary>Sampling options shared by generate and chat.</summary>
internal sealed class SamplingOptions
{
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 256 };
    public Option<bool> Greedy { get; } = new("--greedy") { Description = "Greedy decoding (the default unless --temperature is given)." };
    public Option<float?> Temperature { get; } = new("--temperature", "-t") { Description = "Sampling temperature (> 0 samples)." };
    public Option<float?> TopP { get; } = new("--top-p") { Description = "Nucleus sampling mass in (0, 1]." };
    public Option<int?> TopK { get; } = new("--top-k") { Description = "Sample only among the K most likely tokens." };
    public Option<float?> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "> 1 discourages repeating tokens." };
    public Option<ulong?> Seed { get; } = new("--seed") { Description = "Seed for reproducible sampling." };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop when this text appears (repeatable).", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command cmd)
    {
        cmd.Add(MaxNewTokens); cmd.Add(Greedy); cmd.Add(Temperature); cmd.Add(TopP); cmd.Add(TopK);
        cmd.Add(RepetitionPenalty); cmd.Add(Seed); cmd.Add(Stop);
    }

    public GenerationOptions Build(ParseResult parse, float defaultTemperature = 0f, float defaultTopP = 1f)
    {
        bool greedy = parse.GetValue(Greedy);
        float? temperature = parse.GetValue(Temperature);
        if (greedy && temperature is > 0)
            throw new GlmException("--greedy and --temperature > 0 contradict each other; choose one.");
        var options = new GenerationOptions
        {
            MaxNewTokens = parse.GetValue(MaxNewTokens),
            Temperature = greedy ? 0f : temperature ?? defaultTemperature,
            TopP = parse.GetValue(TopP) ?? defaultTopP,
            TopK = parse.GetValue(TopK) ?? 0,
            RepetitionPenalty = parse.GetValue(RepetitionPenalty) ?? 1f,
            Seed = parse.GetValue(Seed),
            StopStrings = parse.GetValue(Stop) ?? Array.Empty<string>(),
        };
        options.Validate();
        return options;
    }
}
