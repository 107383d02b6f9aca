using System.CommandLine;
using Glm.Engine;
using Glm.Engine.FineTuning;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm merge</c>: folds a PEFT LoRA adapter into the base weights and saves a plain checkpoint.</summary>
internal static class MergeVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var adapter = new Option<string>("--adapter") { Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for the merged model.", Required = true };
        var cmd = new Command("merge", "Merge a LoRA adapter into the base model (W += B·A·alpha/r) and save it with its tokenizer files.");
        model.AddTo(cmd);
        cmd.Add(adapter);
        cmd.Add(output);
        cmd.SetAction((parse, ct) =>
        {
            using var glm = model.Load(parse);
            using (var lora = LoraAdapterSet.Load(glm, parse.GetValue(adapter)!)) lora.Merge();
            string folder = parse.GetValue(output)!;
            glm.Save(folder);
            VerbHelpers.CopyTokenizerFiles(glm.Source, folder);
            console.Out.WriteLine($"merged model: {folder}");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
