using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.Tokenization.Training;
using Glm.Engine.Training.Data;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm train-tokenizer</c>: byte-level BPE on a corpus folder, with GLM's special and chat role tokens.</summary>
internal static class TrainTokenizerVerb
{
    public static Command Create(CliConsole console)
    {
        var corpus = new Option<string>("--corpus") { Description = "Folder of UTF-8 .txt files (searched recursively).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for tokenizer.tiktoken + tokenizer_config.json.", Required = true };
        var vocab = new Option<int>("--vocab-size") { Description = "Vocabulary size including 256 byte tokens and the special tokens.", DefaultValueFactory = _ => 8192 };
        var maxChars = new Option<long>("--max-chars") { Description = "Train on at most this many characters (evenly thinned; 0 = all).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("train-tokenizer", "Train our byte-level BPE tokenizer (no unknown tokens) and report characters per token on held-out text.");
        cmd.Add(corpus); cmd.Add(output); cmd.Add(vocab); cmd.Add(maxChars);
        cmd.SetAction(parse =>
        {
            string root = parse.GetValue(corpus)!, outDir = parse.GetValue(output)!;
            var files = CorpusSplit.ListCorpusFiles(root);
            var options = new BpeTrainingOptions { VocabSize = parse.GetValue(vocab), MaxTrainingChars = parse.GetValue(maxChars) };
            var sw = System.Diagnostics.Stopwatch.StartNew();
            int lastPercent = -1;
            var progress = new Progress<BpeTrainingProgress>(p =>
            {
                int percent = p.TargetMerges == 0 ? 100 : p.Merges * 100 / p.TargetMerges;
                if (p.Stage == "merge" && percent / 10 != lastPercent / 10)
                {
                    lastPercent = percent;
                    console.Error.WriteLine($"... merges {p.Merges}/{p.TargetMerges} ({percent}%), {sw.Elapsed:mm\\:ss}");
                }
            });
            var vocabulary = BpeTokenizerTrainer.TrainFromFiles(files, options, outDir, progress);
            var tokenizer = OwnBpeTokenizer.Load(outDir);
            var held = CorpusSplit.Load(root, options.HoldOutFraction).Validation;
            long chars = held.Sum(d => (long)d.Text.EnumerateRunes().Count());
            long tokens = held.Sum(d => (long)tokenizer.Encode(d.Text).Count);
            console.Out.WriteLine(string.Format(CultureInfo.InvariantCulture,
                "vocabulary: {0} ids ({1} byte-level ranks + {2} special tokens); held-out: {3:N0} characters → {4:N0} tokens = {5:F3} characters per token; trained in {6:F0} s",
                vocabulary.VocabSize, vocabulary.Ranks.Count, vocabulary.SpecialTokens.Count, chars, tokens, (double)chars / tokens, sw.Elapsed.TotalSeconds));
            return 0;
        });
        return cmd;
    }
}
