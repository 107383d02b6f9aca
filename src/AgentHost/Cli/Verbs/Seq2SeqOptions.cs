using System.CommandLine;
using Glm.Engine;
using Glm.Engine.FineTuning;

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
    public Option<int> NoRepeatNgram { get; } = new("--no-repeat-ngram")
    {
        Description = "seq2seq: greedy generation never repeats an n-gram of its own output of this many tokens (e.g. 3; breaks loops like 御御御…); 0 = off.",
    };
    public Option<int> GenerateLimit { get; } = new("--generate-limit")
    {
        Description = "seq2seq: generate for the first N validation examples (finetune default 100, eval default all; 0 = loss only).",
    };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { SourceField, TargetField, MaxLength, MaxTargetTokens, Truncate, Metric, MaxNewTokens, NoRepeatNgram, GenerateLimit })
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
            GenerateLimit = limit < 0 ? int.MaxValue : limit,
        };
        o.Validate();
        return o;
    }

    /// <summary>Reads, validates (file:line errors) and tokenizes a seq2seq data file.</summary>
    public List<Seq2SeqSample> Samples(ParseResult parse, GlmModel model, string path)
    {
        var tokenizer = VerbHelpers.RequireTokenizer(model, "seq2seq fine-tuning");
        if (model.Config.Layout != Glm.Engine.Modeling.GlmLayout.OriginalGlm || model.BlankTokens is null)
            throw new GlmException($"{model.Source}: layout {model.Config.Layout}; --task seq2seq needs an original-GLM model with [gMASK], sop and eop.");
        var examples = Seq2SeqData.Load(path, Fields(parse));
        return Seq2SeqTask.Encode(tokenizer, Encoder(parse, model), examples);
    }
}
