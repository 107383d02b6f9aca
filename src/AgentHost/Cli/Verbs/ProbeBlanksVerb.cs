using System.CommandLine;
using System.Globalization;
using Glm.Engine.Runtime;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm probe-blanks</c>: a few hundred pretraining steps on <see cref="SyntheticChains"/>, where a blank's first token is
/// fixed by its left neighbour, reporting that token's held-out loss. It tells in minutes on a CPU whether a training setup
/// (initialisation, sample length, learning rate) learns to read Part A at all, which on the real corpus takes a GPU run.
/// </summary>
internal static class ProbeBlanksVerb
{
    public static Command Create(CliConsole console)
    {
        var (init, initGain) = PretrainVerb.InitializationOptions("local-attention");
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens per sample ([CLS] included).", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 600 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 16 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 4 };
        var hidden = new Option<int>("--hidden") { DefaultValueFactory = _ => 256 };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 4 };
        var spanProb = new Option<double>("--span-prob") { Description = "Share of [MASK] span batches; the rest are [gMASK] document batches.", DefaultValueFactory = _ => 1.0 };
        var evalEvery = new Option<int>("--eval-every") { DefaultValueFactory = _ => 100 };
        var dtype = new Option<string>("--dtype") { Description = "fp32 or bf16 (mixed precision).", DefaultValueFactory = _ => "bf16" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 1234 };
        var output = new Option<string?>("--out") { Description = "Run folder to keep (checkpoint, model, loss.png); default: a temporary folder, removed afterwards." };
        var cmd = new Command("probe-blanks", "Pretrain a small GLM on synthetic chains (each token fixes the next) and report the loss of every blank's first token: does this setup learn to read a blank's neighbours?");
        foreach (var o in new Option[] { init, initGain, seqLen, steps, batch, lr, layers, hidden, heads, spanProb, evalEvery, dtype, threads, seed, output })
            cmd.Add(o);
        cmd.SetAction(async (parse, ct) =>
        {
            TorchRuntime.KeepOpenMpSpinning = true;
            var chains = new SyntheticChains();
            int length = parse.GetValue(seqLen);
            string? keep = parse.GetValue(output);
            string outDir = keep ?? Path.Combine(Path.GetTempPath(), "glm-probe-blanks-" + Guid.NewGuid().ToString("N"));
            var options = new GlmPretrainingOptions
            {
                OutputFolder = outDir, SpecialTokens = chains.Tokens,
                Model = GlmPretrainer.OwnModelConfig(chains.VocabSize, parse.GetValue(hidden), parse.GetValue(layers), parse.GetValue(heads), length, chains.Tokens),
                Collator = new BlankInfillingOptions { SpanProbability = parse.GetValue(spanProb), SentenceProbability = 0 },
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), MinLearningRate = parse.GetValue(lr) / 10,
                WarmupSteps = Math.Min(50, parse.GetValue(steps) / 10), DType = parse.GetValue(dtype)!, Threads = parse.GetValue(threads), Seed = parse.GetValue(seed),
                Initialization = PretrainVerb.ParseInitialization(parse.GetValue(init)),
                QueryKeyGain = parse.GetValue(initGain), EvalEvery = parse.GetValue(evalEvery), EvalSamples = 64, CheckpointEvery = 0, Resume = keep is not null,
                PeakMeasureSeconds = 0, CharactersPerToken = 1,
            };
            var inv = CultureInfo.InvariantCulture;
            double chance = Math.Log(chains.AlphabetSize), optimum = chance / chains.Period;
            console.Out.WriteLine(string.Format(inv, "synthetic chains: alphabet {0}, a random token every {1}; first Part-B token: chance {2:F2} nats, optimum ≈ {3:F2}",
                chains.AlphabetSize, chains.Period, chance, optimum));
            var progress = new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Event == TrainingEvent.Evaluation && p.Evaluation is { } e)
                    console.Out.WriteLine(string.Format(inv, "eval step {0}: loss {1:F3}  first Part-B token {2:F3}  ({3:F0} tok/s)", e.Step, e.Loss, e.FirstTokenLoss ?? double.NaN, p.TokensPerSecond));
                else if (p.Event == TrainingEvent.Started && p.Message is not null)
                    console.Error.WriteLine($"[started] {p.Message}");
            });
            try
            {
                var result = await new GlmPretrainer(options).RunAsync(new ListSampleSource(chains.Samples(20_000, length, seed: 1)),
                    new ListSampleSource(chains.Samples(64, length, seed: 99)), progress, ct);
                double first = result.Evaluations.LastOrDefault()?.FirstTokenLoss ?? double.NaN;
                console.Out.WriteLine(string.Format(inv, "{0} after {1} steps: first Part-B token {2:F3} nats ({3})", result.Interrupted ? "interrupted" : "finished",
                    result.StepsCompleted, first, first < (chance + optimum) / 2 ? "reads the neighbour" : "does not read the neighbour yet"));
                return result.Interrupted ? 130 : 0;
            }
            finally
            {
                if (keep is null && Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
            }
        });
        return cmd;
    }
}
