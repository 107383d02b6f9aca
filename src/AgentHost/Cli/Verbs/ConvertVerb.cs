using System.CommandLine;
using Glm.Engine;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm convert</c>: re-saves a model folder in another dtype (e.g. an fp32 training output as bf16, half the bytes);
/// config.json, the tokenizer files and the weights go to <c>--out</c>.
/// </summary>
internal static class ConvertVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var output = new Option<string>("--out", "-o") { Description = "Folder for the converted model (created; must not be the source folder).", Required = true };
        var cmd = new Command("convert", "Save a model in another dtype (--dtype fp32|bf16|fp16) with its tokenizer files.");
        model.AddTo(cmd);
        cmd.Add(output);
        cmd.SetAction((parse, ct) =>
        {
            string folder = Path.GetFullPath(parse.GetValue(output)!);
            if (parse.GetValue(model.DType) is null or "auto")
                throw new GlmException("glm convert needs --dtype fp32, bf16 or fp16 (the dtype the weights are saved in).");
            using var loaded = model.Load(parse, GlmQuantization.None);
            if (string.Equals(Path.GetFullPath(loaded.Source).TrimEnd('/'), folder.TrimEnd('/'), StringComparison.Ordinal))
                throw new GlmException($"--out {folder} is the source folder; write the converted model to a new folder.");
            loaded.Save(folder);
            VerbHelpers.CopyTokenizerFiles(loaded.Source, folder);
            long bytes = Directory.EnumerateFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length);
            console.Out.WriteLine($"{loaded.Source} → {folder}: {GlmModel.DTypeName(loaded.DType)}, {bytes / 1e6:F1} MB of weights");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
