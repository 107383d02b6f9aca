using Glm.Engine.Runtime;
using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.FineTuning;
using Glm.Engine.Training;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm finetune</c>: LoRA or full fine-tuning on chat SFT JSONL, cloze classification or seq2seq data.</summary>
internal static class FinetuneVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var task = new FineTuneTaskOptions();
        var train = new Option<string>("--train") { Description = "Training data: chat JSONL ({\"messages\":[...]}), cloze TSV (…⇥text⇥label) / JSONL ({\"text\",\"label\"}), or seq2seq JSONL ({\"source\",\"target\"}) / TSV (…⇥source⇥target).", Required = true };
        var eval = new Option<string?>("--eval") { Description = "Validation data (same format) for evaluation, early stopping and best/." };
        var output = new Option<string>("--out") { Description = "Output folder (adapter/ or model/, best/, checkpoint/, loss.png).", Required = true };
        var method = new Option<string>("--method") { Description = "lora or full.", DefaultValueFactory = _ => "lora" };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 100, Description = "Optimizer steps." };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 4, Description = "Examples per micro-batch." };
        var accum = new Option<int>("--grad-accum") { DefaultValueFactory = _ => 1, Description = "Micro-batches per step." };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-4, Description = "Peak learning rate." };
        var minLr = new Option<double>("--min-lr") { Description = "Final learning rate of the cosine decay." };
        var warmup = new Option<int>("--warmup") { Description = "Linear warm-up steps." };
        var decay = new Option<double>("--weight-decay") { Description = "AdamW weight decay." };
        var clip = new Option<double>("--clip") { DefaultValueFactory = _ => 1.0, Description = "Gradient-norm clip (0 = off)." };
        var evalEvery = new Option<int>("--eval-every") { Description = "Evaluate every N steps (0 = at the end)." };
        var patience = new Option<int>("--patience") { Description = "Early stopping after N evaluations without improvement (0 = off)." };
        var ckptEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every N steps (0 = at the end)." };
        var resume = new Option<bool>("--resume") { Description = "Continue from <out>/checkpoint." };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 42, Description = "Seed of data order, adapter init and dropout." };
        var rank = new Option<int>("--lora-r") { DefaultValueFactory = _ => 8, Description = "LoRA rank." };
        var alpha = new Option<double>("--lora-alpha") { DefaultValueFactory = _ => 16, Description = "LoRA alpha (scaling alpha/r)." };
        var dropout = new Option<double>("--lora-dropout") { DefaultValueFactory = _ => 0.05, Description = "LoRA dropout." };
        var targets = new Option<string>("--lora-targets") { DefaultValueFactory = _ => "query_key_value", Description = "Target modules: names separated by | (suffix match) or a full-match regex." };
        var cmd = new Command("finetune", "Fine-tune a model (LoRA or full) on chat SFT, cloze classification or seq2seq (conditional generation) data.");
        model.AddTo(cmd);
        task.AddTo(cmd);
        foreach (var o in new Option[] { train, eval, output, method, steps, batch, accum, lr, minLr, warmup, decay, clip, evalEvery, patience, ckptEvery, resume, seed, rank, alpha, dropout, targets })
            cmd.Add(o);
        cmd.SetAction((parse, ct) =>
        {
            TorchRuntime.KeepOpenMpSpinning = true; // training is back-to-back libtorch ops
            var fineTuneMethod = parse.GetValue(method) switch
            {
                "lora" => FineTuneMethod.Lora,
                "full" => FineTuneMethod.Full,
                var m => throw new GlmException($"--method '{m}': expected lora or full."),
            };
            var options = new FineTunerOptions
            {
                OutputFolder = parse.GetValue(output)!, Method = fineTuneMethod, Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch),
                GradientAccumulation = parse.GetValue(accum), LearningRate = parse.GetValue(lr), MinLearningRate = parse.GetValue(minLr),
                WarmupSteps = parse.GetValue(warmup), WeightDecay = parse.GetValue(decay), GradientClip = parse.GetValue(clip),
                EvalEvery = parse.GetValue(evalEvery), EarlyStoppingPatience = parse.GetValue(patience), CheckpointEvery = parse.GetValue(ckptEvery),
                Resume = parse.GetValue(resume), Seed = parse.GetValue(seed),
                Lora = new LoraConfig { Rank = parse.GetValue(rank), Alpha = parse.GetValue(alpha), Dropout = parse.GetValue(dropout), TargetModules = parse.GetValue(targets)! },
            };
            var tuner = new FineTuner(options); // validates before the model loads
            var kind = task.Kind(parse);
            var clozeTask = kind == FineTuneTaskKind.Cloze ? task.ClozeTask(parse) : null;
            var seq2seqEval = kind == FineTuneTaskKind.Seq2Seq ? task.Seq2Seq.EvalOptions(parse, defaultLimit: 100) : null;
            using var glm = model.Load(parse);
            string? evalPath = parse.GetValue(eval);
            FineTuningTask work;
            if (seq2seqEval is not null)
                work = new Seq2SeqTask(task.Seq2Seq.Samples(parse, glm, parse.GetValue(train)!, training: true),
                    evalPath is null ? null : task.Seq2Seq.Samples(parse, glm, evalPath), seq2seqEval);
            else if (clozeTask is not null)
            {
                var verbalizers = clozeTask.EncodeVerbalizers(VerbHelpers.RequireTokenizer(glm, "cloze classification"));
                work = new ClozeClassificationTask(FineTuneTaskOptions.ClozeSamples(glm, clozeTask, parse.GetValue(train)!),
                    evalPath is null ? null : FineTuneTaskOptions.ClozeSamples(glm, clozeTask, evalPath), verbalizers);
            }
            else
                work = new ChatSftTask(FineTuneTaskOptions.ChatSamples(glm, parse.GetValue(train)!),
                    evalPath is null ? null : FineTuneTaskOptions.ChatSamples(glm, evalPath), glm.Config.PadTokenId);
            var inv = CultureInfo.InvariantCulture;
            var progress = new SyncProgress<TrainingProgress>(r => console.Out.WriteLine(r.Event switch
            {
                TrainingEvent.Step => string.Format(inv, "step {0}/{1}  loss {2:F4}  lr {3:E2}  grad {4:F3}", r.Step, r.TotalSteps, r.Loss, r.LearningRate, r.GradientNorm),
                TrainingEvent.Evaluation => string.Format(inv, "eval @ {0}: loss {1:F4}; {2}", r.Step, r.Evaluation?.Loss, r.Message),
                _ => $"{r.Event.ToString().ToLowerInvariant()}: {r.Message}",
            }));
            var outcome = tuner.Run(glm, work, progress, ct);
            outcome.Adapters?.Dispose();
            console.Out.WriteLine($"output: {outcome.Result.OutputFolder ?? "(interrupted)"}; loss curve: {outcome.Result.LossCurvePng}");
            return Task.FromResult(outcome.Result.Interrupted ? 130 : 0);
        });
        return cmd;
    }
}
