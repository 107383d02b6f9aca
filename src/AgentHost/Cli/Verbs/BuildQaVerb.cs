using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.FineTuning.GroundedQa;
using Glm.Engine.Tokenization;
using Glm.Engine.Training.Data;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm build-qa</c>: grounded-QA chat conversations (passage + question → answer span) from a corpus, TRAIN from its training
/// split (plus a share of CMRC 2018 trial questions), VALID from its held-out split; writes train.jsonl, valid.jsonl, README.md.
/// </summary>
internal static class BuildQaVerb
{
    public static Command Create(CliConsole console)
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus folder (UTF-8 .txt, split as for pretraining: the last 2% of each file is held out).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder for train.jsonl, valid.jsonl and README.md.", Required = true };
        var train = new Option<int>("--train") { DefaultValueFactory = _ => 4000, Description = "Training conversations." };
        var valid = new Option<int>("--valid") { DefaultValueFactory = _ => 300, Description = "Validation conversations (held-out text only)." };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed of passage order and template choice." };
        var maxChars = new Option<int>("--max-passage-chars") { DefaultValueFactory = _ => 320, Description = "Longest passage in characters." };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 512, Description = "Longest conversation in tokens of --tokenizer's chat format (prompt + answer + stop)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Model or tokenizer folder whose tokenizer and chat format measure length (default: the bundled model)." };
        var cmrc = new Option<string?>("--cmrc") { Description = "CMRC 2018 SQuAD-style JSON for natural questions in TRAIN (default: ../shared/data/eval/cmrc2018/cmrc2018_trial.json next to --corpus's data folder if present; 'none' to skip)." };
        var cmrcShare = new Option<double>("--cmrc-share") { DefaultValueFactory = _ => 0.1, Description = "Share of TRAIN taken from CMRC questions that fit." };
        var cmd = new Command("build-qa", "Build grounded question-answering chat data (train.jsonl / valid.jsonl) from a corpus, for glm finetune --task chat and glm eval --task qa.");
        foreach (var o in new Option[] { corpus, output, train, valid, seed, maxChars, maxTokens, tokenizer, cmrc, cmrcShare }) cmd.Add(o);
        cmd.SetAction(parse =>
        {
            var options = new GroundedQaOptions
            {
                TrainCount = parse.GetValue(train), ValidCount = parse.GetValue(valid), Seed = parse.GetValue(seed),
                MaxPassageChars = parse.GetValue(maxChars), MaxTokens = parse.GetValue(maxTokens), CmrcShare = parse.GetValue(cmrcShare),
            };
            options.Validate();
            string root = parse.GetValue(corpus)!, outDir = parse.GetValue(output)!;
            string tokDir = parse.GetValue(tokenizer) ?? ModelOptions.FindBundledModel();
            var tok = TokenizerFactory.Load(tokDir);
            var format = TokenizerFactory.CreateChatFormat(tok) ?? throw new GlmException($"{tokDir}: the tokenizer has no chat format; pass --tokenizer with a GLM model folder.");
            int stop = format.StopIds[0];
            int Count(IReadOnlyList<ChatTurn> turns) => format.BuildPrompt(turns.Take(turns.Count - 1).ToList(), null, addGenerationPrompt: true).Count
                + tok.Encode(turns[^1].Content.Trim()).Count + 1;
            string? cmrcPath = parse.GetValue(cmrc);
            if (cmrcPath is null)
            {
                string guess = Path.GetFullPath(Path.Combine(root, "..", "eval", "cmrc2018", "cmrc2018_trial.json"));
                cmrcPath = File.Exists(guess) ? guess : null;
            }
            else if (cmrcPath == "none") cmrcPath = null;
            var questions = cmrcPath is null || options.CmrcShare == 0 ? null : CmrcReader.Load(cmrcPath);
            var split = CorpusSplit.Load(root);
            var set = GroundedQaBuilder.Build(split, options, questions, Count);
            Directory.CreateDirectory(outDir);
            GroundedQaBuilder.WriteJsonl(Path.Combine(outDir, "train.jsonl"), set.Train, options.SystemPrompt);
            GroundedQaBuilder.WriteJsonl(Path.Combine(outDir, "valid.jsonl"), set.Valid, options.SystemPrompt);
            string trainStats = GroundedQaBuilder.Stats("train", set.Train), validStats = GroundedQaBuilder.Stats("valid", set.Valid);
            double meanTokens(IReadOnlyList<GroundedQaItem> items) => items.Count == 0 ? 0 : items.Average(i => Count(GroundedQaBuilder.ToTurns(i, options.SystemPrompt)));
            string tokens = string.Format(CultureInfo.InvariantCulture, "mean tokens per conversation ({0}): train {1:F0}, valid {2:F0}; limit {3}",
                Path.GetFileName(Path.TrimEndingDirectorySeparator(tokDir)), meanTokens(set.Train), meanTokens(set.Valid), options.MaxTokens);
            File.WriteAllText(Path.Combine(outDir, "README.md"), Readme(root, cmrcPath ?? "not used", options, trainStats, validStats, tokens));
            console.Out.WriteLine(trainStats);
            console.Out.WriteLine(validStats);
            console.Out.WriteLine(tokens);
            if (set.Train.Count < options.TrainCount || set.Valid.Count < options.ValidCount)
                console.Error.WriteLine($"warning: fewer conversations than asked (train {set.Train.Count}/{options.TrainCount}, valid {set.Valid.Count}/{options.ValidCount}): the split has too few usable passages.");
            console.Out.WriteLine($"wrote {Path.Combine(outDir, "train.jsonl")}, {Path.Combine(outDir, "valid.jsonl")}, {Path.Combine(outDir, "README.md")}");
            return 0;
        });
        return cmd;
    }

    private static string Readme(string corpus, string cmrc, GroundedQaOptions o, string train, string valid, string tokens) => $$"""
        # Grounded QA conversations

        Built by `glm build-qa --corpus {{corpus}} --train {{o.TrainCount}} --valid {{o.ValidCount}} --seed {{o.Seed}} --max-passage-chars {{o.MaxPassageChars}} --max-tokens {{o.MaxTokens}} --cmrc-share {{o.CmrcShare.ToString(CultureInfo.InvariantCulture)}}`.

        - {{train}}
        - {{valid}}
        - {{tokens}}

        Each line is a JSON object with `messages` (system, user, assistant) and `meta` (`source`, `template`); user = `资料：<passage>\n问题：<question>`,
        assistant = the answer, always a span of the passage. TRAIN passages come from the corpus training split only, VALID from the
        held-out split only (CorpusSplit: the last 2 % of each file), so they share no text. Templates (see `QaTemplates`): cloze
        (a clause blanked, `资料中“…____…”处是什么？`), who-said (`NAME道：“…”` → `谁说了“…”？`, heuristic), how-many (numeral +
        classifier → `…多少<classifier>…？`), cmrc (natural questions).

        CMRC 2018 ({{cmrc}}): Cui et al., "A Span-Extraction Dataset for Chinese Machine Reading Comprehension",
        EMNLP-IJCNLP 2019, licensed CC BY-SA 4.0; the `cmrc` lines of train.jsonl are a derived copy and carry the same licence.
        The corpus texts keep their own licences (see the corpus PROVENANCE.md).
        """;
}
