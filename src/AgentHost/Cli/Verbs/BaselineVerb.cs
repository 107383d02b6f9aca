using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.FineTuning;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm baseline</c>: model-free reference numbers for the fine-tuning tasks — bag-of-characters logistic regression
/// (classification), lead-N (summarisation / title generation) and copy-the-source (translation).
/// </summary>
internal static class BaselineVerb
{
    public static Command Create(CliConsole console)
    {
        var task = new Option<string>("--task") { Description = "cls (bag-of-characters logistic regression), ts (lead-N characters) or translate (copy the source).", Required = true };
        var train = new Option<string?>("--train") { Description = "cls: training data, TSV …⇥text⇥label or JSONL {\"text\",\"label\"}." };
        var eval = new Option<string[]>("--eval") { Description = "Evaluation file(s); cls: as --train; ts/translate: seq2seq JSONL/TSV.", Required = true, AllowMultipleArgumentsPerToken = true };
        var sourceField = new Option<string>("--source-field") { DefaultValueFactory = _ => Seq2SeqFields.DefaultSource, Description = "ts/translate: source field (see glm finetune --task seq2seq)." };
        var targetField = new Option<string>("--target-field") { DefaultValueFactory = _ => Seq2SeqFields.DefaultTarget, Description = "ts/translate: target field." };
        var firstClause = new Option<bool>("--first-clause") { Description = "ts: the source's first clause (as --extract-clause splits it) instead of lead-N." };
        var lead = new Option<int>("--lead") { Description = "ts: N, the number of leading source characters (0 = mean length from --length-from)." };
        var lengthFrom = new Option<string?>("--length-from") { Description = "ts: TSV file whose --length-column gives the mean target length N (e.g. CSL cls_ctg/train.tsv, column 2 = titles)." };
        var lengthColumn = new Option<int>("--length-column") { DefaultValueFactory = _ => -1, Description = "ts: 1-based column of --length-from; negative counts from the end (−1 = last)." };
        var ngram = new Option<int>("--ngram") { DefaultValueFactory = _ => 1, Description = "cls: longest character n-gram feature." };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 5, Description = "cls: training epochs." };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 0.05, Description = "cls: Adam learning rate." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42, Description = "cls: shuffling seed." };
        var cmd = new Command("baseline", "Model-free baselines: cls (bag-of-characters logistic regression: accuracy, macro-F1), ts (lead-N: ROUGE-L, BLEU), translate (copy source: BLEU, ROUGE-L).");
        foreach (var o in new Option[] { task, train, eval, sourceField, targetField, lead, firstClause, lengthFrom, lengthColumn, ngram, epochs, lr, seed }) cmd.Add(o);
        cmd.SetAction((parse, ct) =>
        {
            var inv = CultureInfo.InvariantCulture;
            var evalFiles = parse.GetValue(eval)!;
            var fields = new Seq2SeqFields(parse.GetValue(sourceField)!, parse.GetValue(targetField)!);
            switch (parse.GetValue(task))
            {
                case "cls":
                {
                    string trainPath = parse.GetValue(train) ?? throw new GlmException("--task cls needs --train (TSV …⇥text⇥label or JSONL).");
                    var options = new BagOfCharsOptions { MaxNGram = parse.GetValue(ngram), Epochs = parse.GetValue(epochs), LearningRate = parse.GetValue(lr), Seed = parse.GetValue(seed) };
                    var evalSets = evalFiles.Select(f => (File: f, Rows: LabelledTextData.Load(f))).ToList(); // validate every file before training
                    var clock = Stopwatch.StartNew();
                    var trainRows = LabelledTextData.Load(trainPath);
                    var classifier = BagOfCharsClassifier.Train(trainRows, options);
                    console.Out.WriteLine(string.Format(inv, "trained on {0} examples, {1} classes, {2} features in {3:F1} s", trainRows.Count, classifier.Labels.Count, classifier.FeatureCount, clock.Elapsed.TotalSeconds));
                    foreach (var (file, rows) in evalSets)
                    {
                        var index = classifier.Labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
                        int unseen = -1; // labels absent from training get their own (never predicted) ids
                        var gold = rows.Select(r => index.TryGetValue(r.Label, out int i) ? i : index[r.Label] = unseen--).ToList();
                        var predicted = rows.Select(r => classifier.Predict(r.Text)).ToList();
                        console.Out.WriteLine(string.Format(inv, "{0}: accuracy {1:F4}, macro_f1 {2:F4} ({3} examples)", file,
                            ClassificationMetrics.Accuracy(gold, predicted), ClassificationMetrics.MacroF1(gold, predicted), rows.Count));
                    }
                    break;
                }
                case "ts":
                {
                    if (parse.GetValue(firstClause))
                    {
                        foreach (var file in evalFiles)
                            Report(console, file, Seq2SeqData.Load(file, fields), e => Seq2SeqExtraction.Clauses(e.Source) is { Count: > 0 } c ? c[0] : "");
                        break;
                    }
                    int n = parse.GetValue(lead);
                    if (n < 0) throw new GlmException($"--lead {n}: expected ≥ 1, or 0 with --length-from.");
                    if (n == 0)
                    {
                        string from = parse.GetValue(lengthFrom) ?? throw new GlmException("--task ts needs --lead N or --length-from FILE (mean target length).");
                        n = TextBaselines.MeanCharacterLength(ReadColumn(from, parse.GetValue(lengthColumn)));
                        console.Out.WriteLine($"N = {n} (mean character length of column {parse.GetValue(lengthColumn)} of {from})");
                    }
                    foreach (var file in evalFiles)
                        Report(console, file, Seq2SeqData.Load(file, fields), e => TextBaselines.Lead(e.Source, n));
                    break;
                }
                case "translate":
                    foreach (var file in evalFiles)
                        Report(console, file, Seq2SeqData.Load(file, fields), e => e.Source);
                    break;
                case var other:
                    throw new GlmException($"--task '{other}': expected cls, ts or translate.");
            }
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static void Report(CliConsole console, string file, IReadOnlyList<Seq2SeqExample> examples, Func<Seq2SeqExample, string> hypothesis)
    {
        var inv = CultureInfo.InvariantCulture;
        var hyps = examples.Select(hypothesis).ToList();
        var refs = examples.Select(e => e.Target).ToList();
        var rouge = TextMetrics.MeanRougeL(hyps, refs);
        var bleu = TextMetrics.CorpusBleu(hyps, refs);
        console.Out.WriteLine(string.Format(inv, "{0}: rouge_l {1:F2} (P {2:F2}, R {3:F2}), bleu {4:F2} (precisions {5}; BP {6:F3}; hyp/ref chars {7}/{8}) ({9} examples)",
            file, 100 * rouge.F, 100 * rouge.Precision, 100 * rouge.Recall, bleu.Score, string.Join("/", bleu.Precisions.Select(p => p.ToString("F1", inv))),
            bleu.BrevityPenalty, bleu.HypothesisLength, bleu.ReferenceLength, examples.Count));
    }

    /// <summary>The cells of one TSV column (1-based; negative from the end) with file:line errors.</summary>
    private static List<string> ReadColumn(string path, int column)
    {
        if (!File.Exists(path)) throw new GlmException($"--length-from '{path}' does not exist.");
        if (column == 0) throw new GlmException("--length-column 0: expected a 1-based column, or negative from the end.");
        var cells = new List<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var cols = line.Split('\t');
            int i = column > 0 ? column - 1 : cols.Length + column;
            if (i < 0 || i >= cols.Length) throw new GlmException($"{path}:{lineNo}: {cols.Length} column(s); --length-column {column} is outside.");
            cells.Add(cols[i]);
        }
        return cells;
    }
}
