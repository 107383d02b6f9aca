using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Encoders;

/// <summary>Options of <see cref="CrossEncoderReranker"/>.</summary>
public sealed class RerankerOptions : EncoderOptions
{
    /// <summary>Map the raw relevance logit through a sigmoid into (0, 1) (default false: raw logits, as FlagEmbedding's default).</summary>
    public bool Sigmoid { get; init; }
}

/// <summary>
/// A cross-encoder reranker (bge-reranker-base/large/v2-m3 on XLM-RoBERTa; BERT rerankers): scores each query–passage pair
/// jointly. XLM-R input is <c>&lt;s&gt; q &lt;/s&gt;&lt;/s&gt; p &lt;/s&gt;</c> and the head is
/// <c>out_proj(tanh(dense(h[&lt;s&gt;])))</c>; BERT input is <c>[CLS] q [SEP] p [SEP]</c> with token types 0/1 and the head is
/// <c>classifier(pooler(h))</c>. The checkpoint must have exactly one label.
/// </summary>
public sealed class CrossEncoderReranker : IDisposable
{
    private readonly EncoderRunner _runner;
    private readonly Weights _dense, _outProj;
    private readonly EncoderHead _head;
    private readonly bool _sigmoid;

    /// <summary>The encoder's config.json.</summary>
    public EncoderConfig Config { get; }
    /// <summary>The tokenizer.</summary>
    public EncoderTokenizer Tokenizer { get; }
    /// <summary>Longest query+passage token sequence, specials included; longer pairs are truncated (longest first).</summary>
    public int MaxLength => _runner.MaxLength;

    private CrossEncoderReranker(EncoderRunner runner, EncoderConfig config, EncoderTokenizer tokenizer, EncoderHead head,
        Weights dense, Weights outProj, bool sigmoid)
    {
        _runner = runner;
        Config = config;
        Tokenizer = tokenizer;
        _head = head;
        _dense = dense;
        _outProj = outProj;
        _sigmoid = sigmoid;
    }

    /// <summary>Loads a <c>XLMRobertaForSequenceClassification</c> or <c>BertForSequenceClassification</c> folder.</summary>
    public static CrossEncoderReranker Load(string folder, RerankerOptions? options = null)
    {
        var config = EncoderConfig.Load(folder);
        var tokenizer = EncoderTokenizer.Load(folder, config.Family);
        using var checkpoint = EncoderRunner.OpenCheckpoint(folder);
        return FromWeights(config, new CheckpointWeightSource(checkpoint), tokenizer, options);
    }

    /// <summary>Builds the reranker from any weight source.</summary>
    public static CrossEncoderReranker FromWeights(EncoderConfig config, IWeightSource weights, EncoderTokenizer tokenizer,
        RerankerOptions? options = null)
    {
        options ??= new RerankerOptions();
        if (config.NumLabels != 1)
            throw new GlmException($"{weights.Description}: config.json num_labels = {config.NumLabels}; a reranker needs exactly 1 (a relevance logit).");
        if (tokenizer.VocabSize > config.VocabSize)
            throw new GlmException($"{weights.Description}: the tokenizer has {tokenizer.VocabSize} tokens but config.json vocab_size is {config.VocabSize}.");
        var (device, dtype) = EncoderRunner.Resolve(options);
        var reader = new WeightReader(weights, dtype, device);
        string prefix = EncoderNetwork.DetectPrefix(weights);
        int h = config.HiddenSize;
        EncoderNetwork? network = null;
        Weights? dense = null, outProj = null;
        try
        {
            EncoderHead head;
            if (weights.Contains("classifier.out_proj.weight"))
            {
                head = EncoderHead.RobertaClassifier;
                network = new EncoderNetwork(config, reader, prefix, pooler: false);
                dense = new Weights(reader.Read("classifier.dense.weight", h, h), reader.Read("classifier.dense.bias", h));
                outProj = new Weights(reader.Read("classifier.out_proj.weight", 1, h), reader.Read("classifier.out_proj.bias", 1));
            }
            else if (weights.Contains("classifier.weight"))
            {
                head = EncoderHead.BertClassifier;
                network = new EncoderNetwork(config, reader, prefix, pooler: true);
                dense = new Weights(reader.Read("classifier.weight", 1, h), reader.Read("classifier.bias", 1));
                outProj = dense;
            }
            else
                throw new GlmException($"{weights.Description}: no 'classifier.out_proj.weight' (XLM-RoBERTa) or 'classifier.weight' (BERT) tensor; " +
                                       "expected a sequence-classification (cross-encoder) checkpoint.");
            reader.EnsureAllUsed();
            var runner = new EncoderRunner(network, device, dtype, options, weights.Description);
            return new CrossEncoderReranker(runner, config, tokenizer, head, dense, outProj, options.Sigmoid);
        }
        catch
        {
            network?.Dispose();
            dense?.Dispose();
            outProj?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Relevance of each passage to <paramref name="query"/>, in passage order (higher = more relevant): raw logits, or
    /// sigmoid probabilities with <see cref="RerankerOptions.Sigmoid"/>. Each score depends only on its own pair.
    /// </summary>
    public float[] Score(string query, IReadOnlyList<string> passages)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(passages);
        var pairs = passages.Select((p, i) => Tokenizer.EncodePair(query,
            p ?? throw new GlmException($"passages[{i}] is null; expected a string."), MaxLength)).ToList();
        var scores = new float[passages.Count];
        _runner.Run(pairs, useTypeIds: _head == EncoderHead.BertClassifier, (hidden, _, idx) =>
        {
            Tensor logits = _head == EncoderHead.RobertaClassifier
                ? _outProj.Linear(_dense.Linear(hidden.select(1, 0)).tanh())
                : _dense.Linear(_runner.Network.Pool(hidden));
            logits = logits.to(ScalarType.Float32).reshape(-1);
            if (_sigmoid) logits = logits.sigmoid();
            var values = logits.cpu().data<float>().ToArray();
            for (int r = 0; r < idx.Length; r++) scores[idx[r]] = values[r];
        });
        return scores;
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose()
    {
        _runner.Dispose();
        _dense.Dispose();
        if (!ReferenceEquals(_outProj, _dense)) _outProj.Dispose();
    }
}
