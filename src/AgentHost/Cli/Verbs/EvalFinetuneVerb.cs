using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.FineTuning;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm eval</c>: cloze accuracy/macro-F1, chat validation loss, or seq2seq loss/perplexity + greedy ROUGE-L/BLEU of a model,
/// optionally with a LoRA adapter.
/// </summary>
internal static class EvalFinetuneVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var task = new FineTuneTaskOptions();
        var data = new Option<string>("--data") { Description = "Evaluation data (chat JSONL, cloze TSV/JSONL, or seq2seq JSONL/TSV).", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply." };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 8, Description = "Examples per forward pass." };
        var examples = new Option<int>("--examples") { DefaultValueFactory = _ => 3, Description = "seq2seq: generated examples to print." };
        var cmd = new Command("eval", "Evaluate a (fine-tuned) model: cloze accuracy and macro-F1, chat SFT loss and perplexity, or seq2seq ROUGE-L, BLEU and perplexity.");
        model.AddTo(cmd);
        task.AddTo(cmd);
        cmd.Add(data);
        cmd.Add(adapter);
        cmd.Add(batch);
        cmd.Add(examples);
        QaEvalTask.AddTo(cmd, task);
        cmd.SetAction((parse, ct) =>
        {
            if (QaEvalTask.Applies(parse, task)) // grounded QA: generation-based EM / F1 (QaEvalTask.cs)
            {
                using var qaModel = model.Load(parse);
                using var qaLora = parse.GetValue(adapter) is string qa ? LoraAdapterSet.Load(qaModel, qa) : null;
                return Task.FromResult(QaEvalTask.RunAsync(console, qaModel, parse.GetValue(data)!, parse, ct).GetAwaiter().GetResult());
            }
            var kind = task.Kind(parse);
            var clozeTask = kind == FineTuneTaskKind.Cloze ? task.ClozeTask(parse) : null;
            var seq2seqOptions = kind == FineTuneTaskKind.Seq2Seq ? task.Seq2Seq.EvalOptions(parse, defaultLimit: -1) : null;
            using var glm = model.Load(parse);
            using var lora = parse.GetValue(adapter) is string a ? LoraAdapterSet.Load(glm, a) : null;
            string path = parse.GetValue(data)!;
            var inv = CultureInfo.InvariantCulture;
            FineTuneEvaluation result;
            if (seq2seqOptions is not null)
            {
                var report = Seq2SeqTask.Score(glm, task.Seq2Seq.Samples(parse, glm, path), seq2seqOptions, parse.GetValue(batch));
                PrintSeq2Seq(console, report, parse.GetValue(examples));
                return Task.FromResult(0);
            }
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
            console.Out.WriteLine(string.Format(inv, "loss: {0:F4}", result.Loss));
            foreach (var (name, value) in result.Metrics) console.Out.WriteLine(string.Format(inv, "{0}: {1:F4}", name, value));
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static void PrintSeq2Seq(CliConsole console, Seq2SeqReport report, int examples)
    {
        var inv = CultureInfo.InvariantCulture;
        console.Out.WriteLine(string.Format(inv, "loss: {0:F4} (nats per target token, {1} tokens incl. eop)", report.Loss, report.ScoredTokens));
        console.Out.WriteLine(string.Format(inv, "perplexity: {0:F4}", report.Perplexity));
        if (report.RougeL is { } r)
            console.Out.WriteLine(string.Format(inv, "rouge_l: {0:F2} (P {1:F2}, R {2:F2}; character level, mean over {3} generated examples)",
                100 * r.F, 100 * r.Precision, 100 * r.Recall, report.Predictions.Count));
        if (report.Bleu is { } b)
            console.Out.WriteLine(string.Format(inv, "bleu: {0:F2} (character 1-4-gram precisions {1}; BP {2:F3}, hyp/ref length {3}/{4})",
                b.Score, string.Join("/", b.Precisions.Select(p => p.ToString("F1", inv))), b.BrevityPenalty, b.HypothesisLength, b.ReferenceLength));
        foreach (var p in report.Predictions.Take(Math.Max(0, examples)))
        {
            console.Out.WriteLine($"--- source: {Clip(p.Source, 120)}");
            console.Out.WriteLine($"    reference: {p.Reference}");
            console.Out.WriteLine($"    generated: {p.Hypothesis}");
        }
    }

    private static string Clip(string s, int n) => s.Length <= n ? s : s[..n] + "…";
}
