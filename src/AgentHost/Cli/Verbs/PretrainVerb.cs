using Glm.Engine.Runtime;
using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.Modeling;
using Glm.Engine.Tokenization.Training;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm pretrain</c>: GLM from scratch with autoregressive blank infilling; resumes from its own checkpoints.</summary>
internal static class PretrainVerb
{
    public static Command Create(CliConsole console)
    {
        var corpus = new Option<string>("--corpus") { Description = "Folder of UTF-8 .txt files; a fixed 2% tail of each is held out.", Required = true };
        var tokenizerDir = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.tiktoken (from glm train-tokenizer).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Run folder: checkpoint/, model/ (final), best-model/ (lowest held-out loss), loss.png, token cache.", Required = true };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 4 };
        var hidden = new Option<int>("--hidden") { DefaultValueFactory = _ => 256 };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 4 };
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens per packed sample ([CLS] included).", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 2000 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 16 };
        var accumulation = new Option<int>("--grad-accum") { DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var minLr = new Option<double>("--min-lr") { DefaultValueFactory = _ => 1e-4 };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 100 };
        var evalEvery = new Option<int>("--eval-every") { DefaultValueFactory = _ => 200 };
        var evalSamples = new Option<int>("--eval-samples") { DefaultValueFactory = _ => 64 };
        var checkpointEvery = new Option<int>("--checkpoint-every") { DefaultValueFactory = _ => 100 };
        var dtype = new Option<string>("--dtype") { Description = "fp32 or bf16 (mixed precision).", DefaultValueFactory = _ => "fp32" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 1234 };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu" };
        var spanProb = new Option<double>("--span-prob") { Description = "Share of batches with [MASK] span infilling (GLM: 0.4).", DefaultValueFactory = _ => 0.4 };
        var sentenceProb = new Option<double>("--sentence-prob") { Description = "Share of batches with [sMASK] sentence infilling (GLM: 0.3); the rest use [gMASK] document infilling.", DefaultValueFactory = _ => 0.3 };
        var lengthWarmup = new Option<int>("--seq-len-warmup") { Description = "Steps over which samples grow from --seq-len-start tokens to --seq-len (0 = off). Short samples help a from-scratch model learn to read the blank's neighbours on synthetic text; see the glm-zh-small model card for the corpus.", DefaultValueFactory = _ => 0 };
        var lengthStart = new Option<int>("--seq-len-start") { Description = "Sample length ([CLS] included) at the first step of --seq-len-warmup.", DefaultValueFactory = _ => 32 };
        var startFrom = new Option<string?>("--from") { Description = "Continued pretraining: start a fresh run from this GLM model folder's weights (same tokenizer; --layers/--hidden/--heads are taken from its config.json). With --init local-attention the trained weights get a local-attention graft (see the glm-zh-small model card)." };
        var graftLayers = new Option<int>("--graft-layers") { Description = "With --from and --init local-attention: how many layers, from the first, get the graft.", DefaultValueFactory = _ => LocalAttentionGraft.DefaultLayers };
        var neighbourHeads = new Option<bool>("--graft-neighbour-heads") { Description = "With the graft: the first layer's heads 0 and 1 start as look-left / look-right heads that copy the neighbouring word into each token (the blank's sop sees its neighbours' words)." };
        var (init, initGain) = InitializationOptions("megatron");
        var cmd = new Command("pretrain", "Train a GLM from scratch on a corpus (blank infilling: spans, sentences, documents). Re-running the same command resumes.");
        foreach (var o in new Option[] { corpus, tokenizerDir, output, layers, hidden, heads, seqLen, steps, batch, accumulation, lr, minLr, warmup,
                     evalEvery, evalSamples, checkpointEvery, dtype, threads, seed, device, spanProb, sentenceProb, lengthWarmup, lengthStart, init, initGain, startFrom, graftLayers, neighbourHeads })
            cmd.Add(o);
        cmd.SetAction(async (parse, ct) =>
        {
            TorchRuntime.KeepOpenMpSpinning = true; // training is back-to-back libtorch ops
            string outDir = parse.GetValue(output)!, tokDir = parse.GetValue(tokenizerDir)!;
            var tokenizer = OwnBpeTokenizer.Load(tokDir);
            var tokens = GlmSpecialTokens.FromTokenizer(tokenizer);
            var split = CorpusSplit.Load(parse.GetValue(corpus)!);
            console.Error.WriteLine($"corpus: {split.Train.Count} training and {split.Validation.Count} validation documents");
            var progressTok = new SyncProgress<(int Done, int Total)>(p => { if (p.Done == p.Total) console.Error.WriteLine($"tokenized {p.Total} documents"); });
            var trainIds = TokenizedCorpus.LoadOrBuild(split.Train, tokenizer, Path.Combine(outDir, "data", "train.tok"), progressTok, ct);
            var validIds = TokenizedCorpus.LoadOrBuild(split.Validation, tokenizer, Path.Combine(outDir, "data", "valid.tok"), progressTok, ct);
            int sampleLength = parse.GetValue(seqLen);
            // One epoch of packed samples in a seeded random order: books are long single documents, and reading them in
            // file order trains on one style for thousands of steps (held-out loss jumped at every change of book).
            var train = new ListSampleSource(ShuffledEpoch(trainIds, sampleLength, tokens, (ulong)parse.GetValue(seed)));
            var validStream = new PackedSampleStream(validIds, sampleLength, tokens);
            var validSamples = Enumerable.Range(0, parse.GetValue(evalSamples)).Select(_ => validStream.Next()).ToList();

            string? fromDir = parse.GetValue(startFrom);
            var config = fromDir is null
                ? GlmPretrainer.OwnModelConfig(tokenizer.VocabSize, parse.GetValue(hidden), parse.GetValue(layers), parse.GetValue(heads), sampleLength + 1, tokens)
                : StartingConfig(fromDir, tokenizer.VocabSize, sampleLength);
            var options = new GlmPretrainingOptions
            {
                OutputFolder = outDir, Model = config, SpecialTokens = tokens,
                Collator = new BlankInfillingOptions { SpanProbability = parse.GetValue(spanProb), SentenceProbability = parse.GetValue(sentenceProb) },
                SentenceEndTokenIds = BlankInfillingCollator.FindSentenceEndTokenIds(tokenizer),
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), GradientAccumulation = parse.GetValue(accumulation),
                LearningRate = parse.GetValue(lr), MinLearningRate = parse.GetValue(minLr), WarmupSteps = parse.GetValue(warmup),
                SequenceLengthWarmupSteps = parse.GetValue(lengthWarmup), SequenceLengthWarmupStart = parse.GetValue(lengthStart),
                Initialization = ParseInitialization(parse.GetValue(init)),
                StartFrom = fromDir, GraftLayers = parse.GetValue(graftLayers), GraftNeighbourHeads = parse.GetValue(neighbourHeads),
                QueryKeyGain = parse.GetValue(initGain),
                EvalEvery = parse.GetValue(evalEvery), EvalSamples = validSamples.Count, CheckpointEvery = parse.GetValue(checkpointEvery),
                DType = parse.GetValue(dtype)!, Threads = parse.GetValue(threads), Seed = parse.GetValue(seed), Device = parse.GetValue(device)!,
                CountCharacters = ids => tokenizer.Decode(ids.Where(i => !tokenizer.IsSpecial(i)), skipSpecialTokens: true).EnumerateRunes().LongCount(),
                TokenizerFiles = new[] { Path.Combine(tokDir, BpeTokenizerTrainer.RankFileName), Path.Combine(tokDir, BpeTokenizerTrainer.ConfigFileName) },
            };
            var inv = CultureInfo.InvariantCulture;
            var progress = new SyncProgress<TrainingProgress>(p =>
            {
                switch (p.Event)
                {
                    case TrainingEvent.Evaluation when p.Evaluation is { } e:
                        console.Out.WriteLine(string.Format(inv, "eval step {0}: loss {1:F4}  bits/char {2:F4}  first Part-B token {3:F4}", e.Step, e.Loss, e.BitsPerCharacter ?? double.NaN, e.FirstTokenLoss ?? double.NaN));
                        break;
                    case TrainingEvent.Step when p.Step % 10 == 0 || p.Step == 1:
                        console.Out.WriteLine(string.Format(inv, "step {0}/{1}  loss {2:F4}  lr {3:E2}  |g| {4:F2}  {5:F0} tok/s  {6:F1} GFLOP/s ({7:P1} of measured GEMM peak {8:F0})",
                            p.Step, p.TotalSteps, p.Loss, p.LearningRate, p.GradientNorm, p.TokensPerSecond, p.AchievedGFlops,
                            p.PeakGFlops > 0 ? p.AchievedGFlops / p.PeakGFlops : double.NaN, p.PeakGFlops));
                        break;
                    case TrainingEvent.Checkpoint or TrainingEvent.Finished or TrainingEvent.Started when p.Message is not null:
                        console.Error.WriteLine($"[{p.Event.ToString().ToLowerInvariant()}] {p.Message}");
                        break;
                }
            });
            var result = await new GlmPretrainer(options).RunAsync(train, new ListSampleSource(validSamples), progress, ct);
            console.Out.WriteLine(string.Format(inv, "{0} after {1} steps; {2:N0} parameters; {3:F0} tok/s; {4:F1} GFLOP/s = {5:P1} of the {6:F0} GFLOP/s GEMM peak measured in this run; loss curve {7}",
                result.Interrupted ? "interrupted" : "finished", result.StepsCompleted, result.Parameters, result.TokensPerSecond,
                result.AchievedGFlops, result.PeakRatio, result.PeakGFlops, result.LossCurvePng));
            return result.Interrupted ? 130 : 0;
        });
        return cmd;
    }

    /// <summary>The config of a <c>--from</c> folder, checked against the tokenizer and the sample length before any work.</summary>
    private static GlmConfig StartingConfig(string folder, int tokenizerVocab, int sampleLength)
    {
        if (!File.Exists(Path.Combine(folder, "config.json")))
            throw new GlmException($"--from {folder}: no config.json there; expected a GLM model folder (e.g. models/glm-zh-small or a run's best-model/).");
        var config = GlmConfig.Load(folder);
        if (config.Layout != GlmLayout.OriginalGlm)
            throw new GlmException($"--from {folder}: model_type {config.ModelType}; expected an original-GLM model (model_type glm) to continue pretraining.");
        if (config.VocabSize != tokenizerVocab)
            throw new GlmException($"--from {folder}: vocab_size {config.VocabSize}, but the tokenizer has {tokenizerVocab} tokens; expected the tokenizer the model was trained with.");
        if (config.MaxPositions < sampleLength + 1)
            throw new GlmException($"--from {folder}: max_sequence_length {config.MaxPositions} is shorter than --seq-len {sampleLength} + 1; expected --seq-len {config.MaxPositions - 1} or less.");
        return config;
    }

    /// <summary><c>--init</c> (megatron | local-attention) and <c>--init-gain</c>, shared with <c>probe-blanks</c>.</summary>
    internal static (Option<string> Init, Option<double> Gain) InitializationOptions(string defaultInit)
    {
        var init = new Option<string>("--init") { Description = "How a fresh run's weights start: megatron (N(0, 0.02²), as THUDM/GLM) or local-attention (sinusoidal rows in the learned position tables, in a half of the hidden dimensions that the word embeddings leave empty, and query/key projections near α·I on that half: every head starts as a soft sliding window, so a blank's first Part-B token can read the blank's neighbours; measured in the glm-zh-small model card). Ignored when resuming.", DefaultValueFactory = _ => defaultInit };
        init.AcceptOnlyFromAmong("megatron", "local-attention");
        var gain = new Option<double>("--init-gain") { Description = "α of --init local-attention.", DefaultValueFactory = _ => LocalAttentionInitialization.DefaultQueryKeyGain };
        return (init, gain);
    }

    /// <summary>The value of <c>--init</c> (already restricted to the two names).</summary>
    internal static GlmInitialization ParseInitialization(string? value) =>
        value == "local-attention" ? GlmInitialization.LocalAttention : GlmInitialization.Megatron;

    private static List<int[]> ShuffledEpoch(IReadOnlyList<int[]> documents, int sampleLength, GlmSpecialTokens tokens, ulong seed)
    {
        var stream = new PackedSampleStream(documents, sampleLength, tokens);
        var samples = new List<int[]>();
        while (stream.Cursor.Epoch == 0) samples.Add(stream.Next());
        new GlmRandom(seed).Shuffle(samples);
        return samples;
    }
}
