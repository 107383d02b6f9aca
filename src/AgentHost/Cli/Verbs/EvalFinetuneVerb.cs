using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.FineTuning;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm eval</c>: cloze accuracy/macro-F1 or chat validation loss of a model, optionally with a LoRA adapter.</summary>
internal static class EvalFinetuneVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var task = new FineTuneTaskOptions();
        var data = new Option<string>("--data") { Description = "Evaluation data (chat JSONL, or cloze TSV/JSONL).", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply." };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 8, Description = "Examples per forward pass." };
        var cmd = new Command("eval", "Evaluate a (fine-tuned) model: cloze accuracy and macro-F1, or chat SFT loss and perplexity.");
        model.AddTo(cmd);
        task.AddTo(cmd);
        cmd.Add(data);
        cmd.Add(adapter);
        cmd.Add(batch);
        QaEvalTask.AddTo(cmd, task);
        cmd.SetAction((parse, ct) =>
        {
            if (QaEvalTask.Applies(parse, task)) // grounded QA: generation-based EM / F1 (QaEvalTask.cs)
            {
                using var qaModel = model.Load(parse);
                using var qaLora = parse.GetValue(adapter) is string qa ? LoraAdapterSet.Load(qaModel, qa) : null;
                return Task.FromResult(QaEvalTask.RunAsync(console, qaModel, parse.GetValue(data)!, parse, ct).GetAwaiter().GetResult());
            }
            bool cloze = task.IsCloze(parse);
            var clozeTask = cloze ? task.ClozeTask(parse) : null;
            using var glm = model.Load(parse);
            using var lora = parse.GetValue(adapter) is string a ? LoraAdapterSet.Load(glm, a) : null;
            string path = parse.GetValue(data)!;
            FineTuneEvaluation result;
            if (clozeTask is not null)
            {
                var verbalizers = clozeTask.EncodeVerbalizers(VerbHelpers.RequireTokenizer(glm, "cloze classification"));
                result = ClozeClassificationTask.Score(glm, FineTuneTaskOptions.ClozeSamples(glm, clozeTask, path), verbalizers, 0, parse.GetValue(batch));
            }
            else
            {
                using var noGrad = TorchSharp.torch.no_grad();
                result = new ChatSftTask([], FineTuneTaskOptions.ChatSamples(glm, path), glm.Config.PadTokenId).Evaluate(glm, 0, parse.GetValue(batch));
            }
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine(string.Format(inv, "loss: {0:F4}", result.Loss));
            foreach (var (name, value) in result.Metrics) console.Out.WriteLine(string.Format(inv, "{0}: {1:F4}", name, value));
            return Task.FromResult(0);
        });
        return cmd;
    }
}
