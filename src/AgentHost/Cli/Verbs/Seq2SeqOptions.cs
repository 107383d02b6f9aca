using System.CommandLine;
using Glm.Engine;
using Glm.Engine.FineTuning;
using Glm.Engine.Generation;

namespace AgentHost.Cli.Verbs;

/// <summary>Options of <c>--task seq2seq</c> shared by <c>glm finetune</c> and <c>glm eval</c>.</summary>
internal sealed class Seq2SeqOptions
{
    public Option<string> SourceField { get; } = new("--source-field")
    {
        Description = "seq2seq source field: JSONL property, TSV header name, or 1-based TSV column. Default 'source' (headerless TSV: second-to-last column).",
        DefaultValueFactory = _ => Seq2SeqFields.DefaultSource,
    };
    public Option<string> TargetField { get; } = new("--target-field")
    {
        Description = "seq2seq target field: JSONL property, TSV header name, or 1-based TSV column. Default 'target' (headerless TSV: last column).",
        DefaultValueFactory = _ => Seq2SeqFields.DefaultTarget,
    };
    public Option<int> MaxLength { get; } = new("--max-length") { Description = "seq2seq: max tokens of Part A + Part B (0 = the model's context)." };
    public Option<int> MaxTargetTokens { get; } = new("--max-target-tokens") { Description = "seq2seq: target tokens kept for training/loss, the end is cut (0 = min(128, max length / 2))." };
    public Option<string> Truncate { get; } = new("--truncate") { DefaultValueFactory = _ => "right", Description = "seq2seq: which end of a too-long source is cut: right (keep the beginning) or left (keep the end)." };
    public Option<string> Metric { get; } = new("--metric") { DefaultValueFactory = _ => "rouge_l", Description = "seq2seq validation metric for best/ and early stopping: rouge_l or bleu (greedy generation), or loss." };
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens") { DefaultValueFactory = _ => 64, Description = "seq2seq: greedy generation budget per example." };
    public Option<int> MinNewTokens { get; } = new("--min-new-tokens") { Description = "seq2seq: the end token is not allowed before this many generated tokens (0 = off)." };
    public Option<int> NoRepeatNgram { get; } = new("--no-repeat-ngram")
    {
        Description = "seq2seq: greedy generation never repeats an n-gram of its own output of this many tokens (e.g. 3; breaks loops like 御御御…); 0 = off.",
    };
    public Option<string> Copy { get; } = new("--copy")
    {
        DefaultValueFactory = _ => "none",
        Description = "seq2seq generation copy constraint: none; chars (only tokens whose characters occur in the source); span (the output is one contiguous piece of the source, the model picks start and end).",
    };
    public Option<bool> ExtractClause { get; } = new("--extract-clause")
    {
        Description = "seq2seq: instead of generating, output the source clause the model scores as the most likely target (mean NLL per token).",
    };
    public Option<string> TrainTargets { get; } = new("--train-targets")
    {
        DefaultValueFactory = _ => "given",
        Description = "seq2seq training labels: given (the data's targets), clause (each example's source clause closest to its target by ROUGE-L) or span (its closest contiguous source piece); for extractive models with --extract-clause or --copy span.",
    };
    public Option<int> GenerateLimit { get; } = new("--generate-limit")
    {
        Description = "seq2seq: generate for the first N validation examples (finetune default 100, eval default all; 0 = loss only).",
    };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { SourceField, TargetField, MaxLength, MaxTargetTokens, Truncate, Metric, MaxNewTokens, MinNewTokens, NoRepeatNgram, Copy, ExtractClause, TrainTargets, GenerateLimit })
            command.Add(o);
    }

    public Seq2SeqFields Fields(ParseResult parse) => new(parse.GetValue(SourceField)!, parse.GetValue(TargetField)!);

    /// <summary>The encoder for <paramref name="model"/> (validated).</summary>
    public Seq2SeqEncoder Encoder(ParseResult parse, GlmModel model)
    {
        int max = parse.GetValue(MaxLength);
        if (max < 0 || max > model.MaxContext) throw new GlmException($"--max-length {max}: expected 0 (the model's context) … {model.MaxContext}.");
        var side = parse.GetValue(Truncate) switch
        {
            "right" => TruncationSide.Right,
            "left" => TruncationSide.Left,
            var other => throw new GlmException($"--truncate '{other}': expected right or left."),
        };
        int length = max == 0 ? model.MaxContext : max, target = parse.GetValue(MaxTargetTokens);
        if (target < 0) throw new GlmException($"--max-target-tokens {target}: expected ≥ 1, or 0 for min(128, max length / 2).");
        var encoder = new Seq2SeqEncoder { MaxLength = length, MaxTargetTokens = target == 0 ? Math.Min(128, length / 2) : target, SourceTruncation = side };
        encoder.Validate();
        return encoder;
    }

    /// <summary>Evaluation options; <paramref name="defaultLimit"/> applies when --generate-limit is not given (−1 = all).</summary>
    public Seq2SeqEvalOptions EvalOptions(ParseResult parse, int defaultLimit)
    {
        int limit = parse.GetResult(GenerateLimit) is null ? defaultLimit : parse.GetValue(GenerateLimit);
        if (parse.GetValue(NoRepeatNgram) is var n and < 0) throw new GlmException($"--no-repeat-ngram {n}: expected 0 (off) or an n-gram size ≥ 1.");
        string metric = parse.GetValue(Metric)!;
        var o = new Seq2SeqEvalOptions
        {
            PrimaryMetric = limit == 0 && parse.GetResult(Metric) is null ? "loss" : metric,
            MaxNewTokens = parse.GetValue(MaxNewTokens),
            NoRepeatNgram = parse.GetValue(NoRepeatNgram),
            MinNewTokens = parse.GetValue(MinNewTokens),
            Copy = parse.GetValue(Copy) switch
            {
                "none" => CopyConstraint.None,
                "chars" => CopyConstraint.Characters,
                "span" => CopyConstraint.Span,
                var other => throw new GlmException($"--copy '{other}': expected none, chars or span."),
            },
            ExtractClause = parse.GetValue(ExtractClause),
            GenerateLimit = limit < 0 ? int.MaxValue : limit,
        };
        o.Validate();
        return o;
    }

    /// <summary>
    /// Reads, validates (file:line errors) and tokenizes a seq2seq data file; training data (<paramref name="training"/>) gets
    /// the targets --train-targets asks for.
    /// </summary>
    public List<Seq2SeqSample> Samples(ParseResult parse, GlmModel model, string path, bool training = false)
    {
        var tokenizer = VerbHelpers.RequireTokenizer(model, "seq2seq fine-tuning");
        if (model.Config.Layout != Glm.Engine.Modeling.GlmLayout.OriginalGlm || model.BlankTokens is null)
            throw new GlmException($"{model.Source}: layout {model.Config.Layout}; --task seq2seq needs an original-GLM model with [gMASK], sop and eop.");
        var examples = Seq2SeqData.Load(path, Fields(parse));
        if (training)
            examples = parse.GetValue(TrainTargets) switch
            {
                "given" => examples,
                "clause" => Seq2SeqExtraction.WithOracleTargets(examples),
                "span" => Seq2SeqExtraction.WithOracleTargets(examples, spans: true),
                var other => throw new GlmException($"--train-targets '{other}': expected given, clause or span."),
            };
        return Seq2SeqTask.Encode(tokenizer, Encoder(parse, model), examples);
    }
}
