using Glm.Engine.Modeling;
using Glm.Engine.Tokenization;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.FineTuning;

/// <summary>Validation settings of <see cref="Seq2SeqTask"/>.</summary>
public sealed record Seq2SeqEvalOptions
{
    /// <summary>Early-stopping metric: <c>rouge_l</c> or <c>bleu</c> (greedy generation, higher is better) or <c>loss</c>.</summary>
    public string PrimaryMetric { get; init; } = "rouge_l";
    /// <summary>Greedy generation budget per example (tokens, eop excluded).</summary>
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>eop is not allowed before this many generated tokens (HF's <c>min_new_tokens</c>); 0 = off.</summary>
    public int MinNewTokens { get; init; }
    /// <summary>Generate for at most this many validation examples (the first ones); 0 = no generation (loss only).</summary>
    public int GenerateLimit { get; init; } = 100;
    /// <summary>Greedy generation never repeats an n-gram of its own output of this size (<see cref="Generation.NoRepeatNgram"/>); 0 = off.</summary>
    public int NoRepeatNgram { get; init; }
    /// <summary>
    /// Copy constraint of generation (<see cref="Generation.SourceVocabulary"/>): tokens made of source characters, or one
    /// contiguous source span; <see cref="Generation.CopyConstraint.None"/> by default.
    /// </summary>
    public Generation.CopyConstraint Copy { get; init; }
    /// <summary>
    /// Instead of generating, pick the source clause the model scores as the most likely filler (<see cref="Seq2SeqExtraction"/>).
    /// </summary>
    public bool ExtractClause { get; init; }

    /// <summary>Checks the fields; throws naming field and value.</summary>
    public void Validate()
    {
        if (PrimaryMetric is not ("rouge_l" or "bleu" or "loss")) throw new GlmException($"seq2seq metric '{PrimaryMetric}'; expected rouge_l, bleu or loss.");
        if (MaxNewTokens < 1) throw new GlmException($"seq2seq MaxNewTokens = {MaxNewTokens}; expected ≥ 1.");
        if (MinNewTokens < 0 || MinNewTokens > MaxNewTokens) throw new GlmException($"seq2seq MinNewTokens = {MinNewTokens}; expected 0 … MaxNewTokens ({MaxNewTokens}).");
        if (GenerateLimit < 0) throw new GlmException($"seq2seq GenerateLimit = {GenerateLimit}; expected ≥ 0.");
        if (NoRepeatNgram < 0) throw new GlmException($"seq2seq NoRepeatNgram = {NoRepeatNgram}; expected 0 (off) or an n-gram size ≥ 1.");
        if (ExtractClause && (Copy != Generation.CopyConstraint.None || NoRepeatNgram > 0)) throw new GlmException("seq2seq ExtractClause picks a source clause; Copy and NoRepeatNgram only apply to generation.");
        if (PrimaryMetric != "loss" && GenerateLimit == 0) throw new GlmException($"seq2seq metric {PrimaryMetric} needs GenerateLimit ≥ 1 (generation); use metric loss to skip generation.");
    }
}

/// <summary>One generated example.</summary>
/// <param name="Source">Source text.</param>
/// <param name="Reference">Reference target.</param>
/// <param name="Hypothesis">Greedy generation, or the extracted clause (<see cref="Seq2SeqEvalOptions.ExtractClause"/>).</param>
public sealed record Seq2SeqPrediction(string Source, string Reference, string Hypothesis);

/// <summary>Scores of a seq2seq evaluation.</summary>
/// <param name="Loss">Mean NLL per Part-B token (target tokens and eop), nats.</param>
/// <param name="Perplexity">exp(Loss).</param>
/// <param name="ScoredTokens">Part-B tokens scored.</param>
/// <param name="RougeL">Mean character ROUGE-L P/R/F over the generated examples (null without generation).</param>
/// <param name="Bleu">Corpus character BLEU of the generated examples (null without generation).</param>
/// <param name="Predictions">The generated examples, in data order.</param>
public sealed record Seq2SeqReport(double Loss, double Perplexity, long ScoredTokens, PrfScore? RougeL, BleuScore? Bleu, IReadOnlyList<Seq2SeqPrediction> Predictions)
{
    /// <summary>The report as a metrics dictionary (rouge_l and bleu on a 0–100 scale).</summary>
    public Dictionary<string, double> Metrics()
    {
        var m = new Dictionary<string, double> { ["loss"] = Loss, ["perplexity"] = Perplexity };
        if (RougeL is not null)
        {
            m["rouge_l"] = 100 * RougeL.F;
            m["rouge_l_p"] = 100 * RougeL.Precision;
            m["rouge_l_r"] = 100 * RougeL.Recall;
        }
        if (Bleu is not null) m["bleu"] = Bleu.Score;
        return m;
    }
}

/// <summary>
/// Conditional generation on an original-GLM model (<see cref="Seq2SeqEncoder"/> builds the samples): the loss is the mean
/// NLL of the Part-B tokens (target + eop); validation reports loss and perplexity on all validation examples and, when
/// generation is on, greedy-decodes the first <see cref="Seq2SeqEvalOptions.GenerateLimit"/> of them for character ROUGE-L
/// (primary metric by default) and BLEU (<see cref="TextMetrics"/>).
/// </summary>
public sealed class Seq2SeqTask : FineTuningTask
{
    private readonly IReadOnlyList<Seq2SeqSample> _train;
    private readonly IReadOnlyList<Seq2SeqSample>? _eval;
    private readonly Seq2SeqEvalOptions _options;

    /// <summary>Creates the task; <paramref name="eval"/> may be null (no validation).</summary>
    public Seq2SeqTask(IReadOnlyList<Seq2SeqSample> train, IReadOnlyList<Seq2SeqSample>? eval, Seq2SeqEvalOptions? options = null)
    {
        _options = options ?? new Seq2SeqEvalOptions();
        _options.Validate();
        _train = train;
        _eval = eval;
    }

    /// <inheritdoc/>
    public override int TrainCount => _train.Count;
    /// <inheritdoc/>
    public override bool HasEvaluation => _eval is { Count: > 0 };
    /// <inheritdoc/>
    public override string PrimaryMetric => _options.PrimaryMetric;
    /// <inheritdoc/>
    public override bool HigherIsBetter => _options.PrimaryMetric != "loss";

    /// <inheritdoc/>
    public override Tensor Loss(GlmModel model, IReadOnlyList<int> indices)
    {
        var (sum, count) = SummedNll(model, indices.Select(i => _train[i]).ToList());
        return sum / Math.Max(1, count);
    }

    /// <inheritdoc/>
    public override FineTuneEvaluation Evaluate(GlmModel model, int step, int batchSize)
    {
        if (_eval is not { Count: > 0 }) throw new GlmException("no validation data; pass eval samples to evaluate.");
        var report = ScoreUngated(model, _eval, _options, batchSize);
        return new FineTuneEvaluation(step, report.Loss, report.Metrics());
    }

    /// <summary>
    /// Loss, perplexity and (when <see cref="Seq2SeqEvalOptions.GenerateLimit"/> &gt; 0) greedy generations with ROUGE-L and
    /// BLEU of <paramref name="samples"/>. Holds the model exclusively while it runs.
    /// </summary>
    public static Seq2SeqReport Score(GlmModel model, IReadOnlyList<Seq2SeqSample> samples, Seq2SeqEvalOptions options, int batchSize = 8)
    {
        options.Validate();
        model.ForwardGate.Wait();
        try { return ScoreUngated(model, samples, options, batchSize); }
        finally { model.ForwardGate.Release(); }
    }

    private static Seq2SeqReport ScoreUngated(GlmModel model, IReadOnlyList<Seq2SeqSample> samples, Seq2SeqEvalOptions options, int batchSize)
    {
        if (samples.Count == 0) throw new GlmException("seq2seq evaluation: no examples.");
        using var noGrad = torch.no_grad();
        double nll = 0;
        long count = 0;
        foreach (var chunk in samples.Chunk(Math.Max(1, batchSize)))
        {
            using var scope = NewDisposeScope();
            var (s, c) = SummedNll(model, chunk);
            nll += s.item<float>();
            count += c;
        }
        double loss = nll / Math.Max(1, count);
        var predictions = new List<Seq2SeqPrediction>();
        PrfScore? rouge = null;
        BleuScore? bleu = null;
        if (options.GenerateLimit > 0)
        {
            var tokenizer = model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer; seq2seq generation metrics need one to decode text.");
            var vocabulary = options.Copy != Generation.CopyConstraint.None ? SourceVocabularyOf(model) : null;
            foreach (var sample in samples.Take(options.GenerateLimit))
            {
                string hypothesis;
                if (options.ExtractClause) hypothesis = Seq2SeqExtraction.BestClause(model, sample.PartA, sample.Source);
                else
                {
                    // The constraint follows what the model sees: Part A as encoded (a cut source loses its cut characters).
                    var constraint = vocabulary?.For(options.Copy, tokenizer.Decode(sample.PartA, skipSpecialTokens: true));
                    hypothesis = tokenizer.Decode(GreedyBlank(model, sample.PartA, options.MaxNewTokens, options.NoRepeatNgram, constraint, options.MinNewTokens), skipSpecialTokens: true);
                }
                predictions.Add(new Seq2SeqPrediction(sample.Source, sample.Reference, hypothesis));
            }
            var hyps = predictions.Select(p => p.Hypothesis).ToList();
            var refs = predictions.Select(p => p.Reference).ToList();
            rouge = TextMetrics.MeanRougeL(hyps, refs);
            bleu = TextMetrics.CorpusBleu(hyps, refs);
        }
        return new Seq2SeqReport(loss, Math.Exp(loss), count, rouge, bleu, predictions);
    }

    /// <summary>Summed Part-B NLL of <paramref name="batch"/> and how many tokens it covers (right-padded batch).</summary>
    internal static (Tensor Sum, long Count) SummedNll(GlmModel model, IReadOnlyList<Seq2SeqSample> batch)
    {
        if (model.Config.Layout != GlmLayout.OriginalGlm || model.Network is not GlmBlockModel network)
            throw new GlmException($"seq2seq fine-tuning needs an original-GLM model (blank infilling); {model.Source} has layout {model.Config.Layout}.");
        var tokens = model.BlankTokens ?? throw new GlmException($"{model.Source}: no GLM blank tokens (mask, sop, eop); seq2seq needs them.");
        var samples = batch.Select(s => Seq2SeqEncoder.Collate(s, tokens)).ToList();
        int longest = samples.Max(s => s.Length);
        if (longest > model.MaxContext)
            throw new GlmException($"a seq2seq sample has {longest} tokens; the model has {model.MaxContext} positions. Lower --max-length.");
        return GlmTrainingStep.MaskedNll(network, BlankInfillingBatch.FromSamples(samples, BlankInfillingMode.Document));
    }

    /// <summary>
    /// Greedy Part-B generation for <paramref name="partA"/> (as <see cref="GlmModel.GenerateBlank(IReadOnlyList{int}, Generation.GenerationOptions?)"/>
    /// with greedy decoding, KV cache, stop at eop) without taking the model's gate, so it can run inside a fine-tuning run.
    /// With <paramref name="noRepeatNgram"/> &gt; 0 the argmax skips tokens that would repeat an n-gram of the output so far;
    /// with <paramref name="constraint"/> it picks only among the ids the constraint leaves open (<see cref="Generation.SourceVocabulary"/>).
    /// </summary>
    internal static int[] GreedyBlank(GlmModel model, int[] partA, int maxNewTokens, int noRepeatNgram = 0, Generation.IDecodeConstraint? constraint = null,
        int minNewTokens = 0)
    {
        var tokens = model.BlankTokens ?? throw new GlmException($"{model.Source}: no GLM blank tokens; generation needs sop and eop.");
        int mask = Array.FindIndex(partA, tokens.MaskIds.Contains);
        if (mask < 0) throw new GlmException($"a seq2seq Part A of {partA.Length} tokens has no mask token; expected [gMASK].");
        int budget = Math.Min(maxNewTokens, model.MaxContext - 1);
        var device = model.Device;
        var network = model.Network;
        var result = new List<int>();
        using var noGrad = torch.no_grad();
        using var cache = network.CreateCache(1, partA.Length + 1 + budget);
        int n = partA.Length + 1;
        int next;
        using (var scope = NewDisposeScope())
        {
            var ids = new long[n];
            var positions = new long[2 * n];
            for (int i = 0; i < partA.Length; i++) { ids[i] = partA[i]; positions[i] = i; }
            ids[n - 1] = tokens.Sop;
            positions[n - 1] = mask;
            positions[n + n - 1] = 1;
            var logits = network.Forward(tensor(ids, new long[] { 1, n }, device: device), tensor(positions, new long[] { 1, 2, n }, device: device),
                cache, GlmTrainingStep.SepMask([partA.Length], n, device), lastOnly: true);
            next = Pick(logits, result, noRepeatNgram, constraint, result.Count < minNewTokens ? tokens.Eop : -1);
        }
        while (next != tokens.Eop && result.Count < budget)
        {
            result.Add(next);
            if (result.Count >= budget) break;
            using var scope = NewDisposeScope();
            var logits = network.Forward(tensor(new long[] { next }, new long[] { 1, 1 }, device: device),
                tensor(new long[] { mask, result.Count + 1 }, new long[] { 1, 2, 1 }, device: device), cache, null, lastOnly: true);
            next = Pick(logits, result, noRepeatNgram, constraint, result.Count < minNewTokens ? tokens.Eop : -1);
        }
        return result.ToArray();
    }

    // The argmax of the last position's logits, on the device unless n-gram blocking or a vocabulary constraint applies.
    // tooEarly: an id (eop before MinNewTokens) that may not be picked now, or −1.
    private static int Pick(Tensor logits, List<int> generated, int noRepeatNgram, Generation.IDecodeConstraint? constraint, int tooEarly)
    {
        var banned = noRepeatNgram > 0 ? Generation.NoRepeatNgram.Banned(generated, noRepeatNgram) : null;
        if ((banned is null || banned.Count == 0) && constraint is null && tooEarly < 0) return (int)logits.view(-1).argmax().item<long>();
        using var row = logits.view(-1).to(ScalarType.Float32).cpu();
        var values = row.data<float>().ToArray();
        if (banned is not null) Generation.NoRepeatNgram.Apply(values, banned);
        constraint?.Restrict(values, generated);
        // Too early to stop, unless the constraint leaves nothing else (a span at the end of the source).
        if (tooEarly >= 0)
        {
            float stop = values[tooEarly];
            values[tooEarly] = float.NegativeInfinity;
            if (values.AsSpan().IndexOfAnyExcept(float.NegativeInfinity) < 0) values[tooEarly] = stop;
        }
        return Generation.TokenSampler.ArgMax(values);
    }

    /// <summary>The copy constraints for <paramref name="model"/>'s tokenizer (eop ends the output).</summary>
    internal static Generation.SourceVocabulary SourceVocabularyOf(GlmModel model)
    {
        var tokenizer = model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer; copy-constrained generation needs one to read token texts.");
        var tokens = model.BlankTokens ?? throw new GlmException($"{model.Source}: no GLM blank tokens; generation needs sop and eop.");
        return new Generation.SourceVocabulary(tokenizer, model.Config.VocabSize, [tokens.Eop]);
    }

    /// <summary>Encodes examples with <paramref name="encoder"/> (all tokenization problems surface before training).</summary>
    public static List<Seq2SeqSample> Encode(IGlmTokenizer tokenizer, Seq2SeqEncoder encoder, IEnumerable<Seq2SeqExample> examples)
    {
        encoder.Validate();
        return examples.Select(e => encoder.Encode(tokenizer, e)).ToList();
    }
}
