using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.Generation;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm eval-pretrain</c>: held-out bits per character and blank filling of a from-scratch GLM vs n-gram baselines.</summary>
internal static class EvalPretrainVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var corpus = new Option<string>("--corpus") { Description = "The corpus folder the model was trained on (same 2% hold-out rule).", Required = true };
        var cache = new Option<string?>("--token-cache") { Description = "Folder with train.tok/valid.tok from glm pretrain (created if missing)." };
        var windows = new Option<int>("--windows") { DefaultValueFactory = _ => 200 };
        var spans = new Option<int>("--spans") { DefaultValueFactory = _ => 200 };
        var context = new Option<int>("--context") { Description = "Part-A tokens of each scored window (a blank's window is --context + --target tokens).", DefaultValueFactory = _ => 64 };
        var target = new Option<int>("--target") { Description = "Tokens scored in Part B after each window's context.", DefaultValueFactory = _ => 64 };
        var samples = new Option<string[]>("--sample") { Description = "Texts to complete / fill for the model card ([MASK] marks a blank)." };
        var cmd = new Command("eval-pretrain", "Bits per character and 1–3 token blank filling on held-out text, next to unigram and bigram baselines.");
        model.AddTo(cmd);
        cmd.Add(corpus); cmd.Add(cache); cmd.Add(windows); cmd.Add(spans); cmd.Add(context); cmd.Add(target); cmd.Add(samples);
        cmd.SetAction(async (parse, ct) =>
        {
            using var glm = model.Load(parse);
            var tokenizer = VerbHelpers.RequireTokenizer(glm, "evaluation");
            int contextTokens = parse.GetValue(context), targetTokens = parse.GetValue(target);
            if (contextTokens < 16 || targetTokens < 8)
                throw new GlmException($"--context {contextTokens} / --target {targetTokens}: expected at least 16 context and 8 target tokens (a blank sits 8 tokens or more from either end of its window).");
            if (contextTokens + targetTokens + 3 > glm.Config.MaxPositions)
                throw new GlmException($"--context {contextTokens} + --target {targetTokens} + 3 special tokens exceed the model's {glm.Config.MaxPositions} positions; expected a shorter window.");
            var split = CorpusSplit.Load(parse.GetValue(corpus)!);
            string cacheDir = parse.GetValue(cache) ?? Path.Combine(Path.GetTempPath(), "glmsk-eval-cache");
            var train = TokenizedCorpus.LoadOrBuild(split.Train, tokenizer, Path.Combine(cacheDir, "train.tok"), ct: ct);
            var valid = TokenizedCorpus.LoadOrBuild(split.Validation, tokenizer, Path.Combine(cacheDir, "valid.tok"), ct: ct);
            var r = PretrainingEvaluation.Run(glm, train, valid, parse.GetValue(windows), contextTokens, targetTokens, parse.GetValue(spans),
                progress: new SyncProgress<string>(s => console.Error.WriteLine("... " + s)), ct: ct);
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine($"| model | bits per character | blank filling, exact match (1–3 tokens): greedy | beam search (8, 1–3 tokens) | left-to-right search (left + right context) |");
            console.Out.WriteLine("|---|---:|---:|---:|---:|");
            console.Out.WriteLine(string.Format(inv, "| unigram (add-one) | {0:F3} | – | – | – |", r.UnigramBitsPerCharacter));
            console.Out.WriteLine(string.Format(inv, "| bigram (interpolated Kneser–Ney) | {0:F3} | – | – | {1:P1} |", r.BigramBitsPerCharacter, r.BigramSpanExactMatch));
            console.Out.WriteLine(string.Format(inv, "| {0} | {1:F3} | {2:P1} | {3:P1} | {4:P1} |", Path.GetFileName(glm.Source), r.ModelBitsPerCharacter,
                r.ModelSpanExactMatch, r.ModelSpanExactMatchSearch, r.ModelSpanExactMatchLeftToRight));
            console.Out.WriteLine(string.Format(inv, "({0} windows of {4} + {5} tokens, {1:N0} target tokens, {2:N0} characters; {3} masked spans)", r.Windows, r.TargetTokens, r.TargetCharacters, r.Spans, contextTokens, targetTokens));
            foreach (var text in parse.GetValue(samples) ?? Array.Empty<string>())
            {
                string input = text.Contains("[MASK]") || text.Contains("[gMASK]") ? text : text + "[gMASK]";
                string filled = await glm.FillBlanksAsync(input, new GenerationOptions { MaxNewTokens = 48 }, ct);
                console.Out.WriteLine($"- `{text}` → {filled}");
                if (text.Contains("[MASK]")) console.Out.WriteLine($"  left-to-right search: {glm.FillBlanksLeftToRight(text)}");
            }
            return 0;
        });
        return cmd;
    }
}
