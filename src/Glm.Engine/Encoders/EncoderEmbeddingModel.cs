using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Encoders;

/// <summary>How token states become one sentence vector (sentence-transformers <c>1_Pooling/config.json</c>).</summary>
public enum EncoderPooling
{
    /// <summary>The first token's state ([CLS] / &lt;s&gt;); what BGE models use.</summary>
    Cls,
    /// <summary>The mean of the real (non-padding) tokens' states.</summary>
    Mean,
}

/// <summary>Options of <see cref="EncoderEmbeddingModel"/>.</summary>
public sealed class EncoderEmbeddingOptions : EncoderOptions
{
    /// <summary>
    /// Text put before every query when <c>isQuery</c> is true. Null: <c>prompts.query</c> of
    /// <c>config_sentence_transformers.json</c> if present, else <see cref="EncoderEmbeddingModel.ChineseQueryInstruction"/>
    /// for folders named like bge-*-zh*, the English one for bge-*-en*, none otherwise (bge-m3 needs none). "" = none.
    /// </summary>
    public string? QueryInstruction { get; init; }
    /// <summary>Pooling override; null reads <c>1_Pooling/config.json</c> (CLS when the folder has none, as BGE).</summary>
    public EncoderPooling? Pooling { get; init; }
    /// <summary>L2-normalise the vectors (default true, as BGE and sentence-transformers' Normalize module).</summary>
    public bool Normalize { get; init; } = true;
}

/// <summary>
/// A sentence-embedding model on a BERT or XLM-RoBERTa encoder (bge-small-zh / bge-large-zh / bge-m3 dense): tokenizes,
/// batches by length, encodes, pools (CLS or mean) and L2-normalises. Queries get the model's instruction prefix.
/// </summary>
public sealed class EncoderEmbeddingModel : IDisposable
{
    /// <summary>The query instruction BGE documents for bge-*-zh (v1 and v1.5).</summary>
    public const string ChineseQueryInstruction = "为这个句子生成表示以用于检索相关文章：";
    /// <summary>The query instruction BGE documents for bge-*-en (v1 and v1.5).</summary>
    public const string EnglishQueryInstruction = "Represent this sentence for searching relevant passages: ";

    private readonly EncoderRunner _runner;
    private readonly bool _normalize;

    /// <summary>The encoder's config.json.</summary>
    public EncoderConfig Config { get; }
    /// <summary>The tokenizer.</summary>
    public EncoderTokenizer Tokenizer { get; }
    /// <summary>Pooling in use.</summary>
    public EncoderPooling Pooling { get; }
    /// <summary>Prefix added to queries ("" for none).</summary>
    public string QueryInstruction { get; }
    /// <summary>Vector length (hidden size).</summary>
    public int Dimension => Config.HiddenSize;
    /// <summary>Longest token sequence per text, specials included.</summary>
    public int MaxLength => _runner.MaxLength;
    /// <summary>Texts per forward pass.</summary>
    public int BatchSize => _runner.BatchSize;
    /// <summary>Where the weights came from.</summary>
    public string Source { get; }

    internal EncoderNetwork Network => _runner.Network;

    private EncoderEmbeddingModel(EncoderRunner runner, EncoderConfig config, EncoderTokenizer tokenizer, EncoderPooling pooling,
        string instruction, bool normalize, string source)
    {
        _runner = runner;
        Config = config;
        Tokenizer = tokenizer;
        Pooling = pooling;
        QueryInstruction = instruction;
        _normalize = normalize;
        Source = source;
    }

    /// <summary>
    /// Loads an embedding model from a Hugging Face / sentence-transformers folder: <c>config.json</c>, weights
    /// (safetensors, sharded or .bin; tensor names with or without <c>bert.</c>/<c>roberta.</c>), <c>vocab.txt</c> or
    /// <c>sentencepiece.bpe.model</c>, and optionally <c>1_Pooling/config.json</c> (pooling),
    /// <c>sentence_bert_config.json</c> (<c>max_seq_length</c>, used when <see cref="EncoderOptions.MaxLength"/> is 0) and
    /// <c>config_sentence_transformers.json</c> (<c>prompts.query</c>).
    /// </summary>
    public static EncoderEmbeddingModel Load(string folder, EncoderEmbeddingOptions? options = null)
    {
        options ??= new EncoderEmbeddingOptions();
        var config = EncoderConfig.Load(folder);
        var tokenizer = EncoderTokenizer.Load(folder, config.Family);
        var pooling = options.Pooling ?? ReadPooling(folder);
        string instruction = options.QueryInstruction ?? DefaultInstruction(folder);
        int maxLength = options.MaxLength;
        if (maxLength == 0 && JsonFields.TryLoad(Path.Combine(folder, "sentence_bert_config.json")) is { } sbert)
            maxLength = Math.Min(sbert.IntOr("max_seq_length", 512), config.MaxSequenceLength);
        using var checkpoint = EncoderRunner.OpenCheckpoint(folder);
        return FromWeights(config, new CheckpointWeightSource(checkpoint), tokenizer,
            new EncoderEmbeddingOptions
            {
                Device = options.Device, DType = options.DType, MaxLength = maxLength, BatchSize = options.BatchSize,
                QueryInstruction = instruction, Pooling = pooling, Normalize = options.Normalize,
            });
    }

    /// <summary>
    /// Builds the model from any weight source (tests, random weights for benchmarks). No folder files are read here: a null
    /// <see cref="EncoderEmbeddingOptions.QueryInstruction"/> means none, a null pooling means CLS.
    /// </summary>
    public static EncoderEmbeddingModel FromWeights(EncoderConfig config, IWeightSource weights, EncoderTokenizer tokenizer,
        EncoderEmbeddingOptions? options = null)
    {
        options ??= new EncoderEmbeddingOptions();
        if (tokenizer.VocabSize > config.VocabSize)
            throw new GlmException($"{weights.Description}: the tokenizer has {tokenizer.VocabSize} tokens but config.json vocab_size is {config.VocabSize}; expected the tokenizer to fit the embedding table.");
        var (device, dtype) = EncoderRunner.Resolve(options);
        var reader = new WeightReader(weights, dtype, device);
        string prefix = EncoderNetwork.DetectPrefix(weights);
        var network = new EncoderNetwork(config, reader, prefix, pooler: null);
        foreach (var name in weights.Names.Where(n => n.StartsWith("cls.", StringComparison.Ordinal) || n.StartsWith("lm_head.", StringComparison.Ordinal)))
            reader.Ignore(name); // pre-training heads are not part of an embedding model
        try
        {
            reader.EnsureAllUsed();
            var runner = new EncoderRunner(network, device, dtype, options, weights.Description);
            return new EncoderEmbeddingModel(runner, config, tokenizer, options.Pooling ?? EncoderPooling.Cls,
                options.QueryInstruction ?? "", options.Normalize, weights.Description);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Embeds <paramref name="texts"/>; with <paramref name="isQuery"/> each text is prefixed by
    /// <see cref="QueryInstruction"/>. Returns one vector of <see cref="Dimension"/> floats per text, in input order
    /// (L2-normalised unless disabled). Texts longer than <see cref="MaxLength"/> tokens are truncated.
    /// </summary>
    public float[][] Embed(IReadOnlyList<string> texts, bool isQuery)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var encoded = texts.Select((t, i) => Tokenizer.Encode(
            isQuery ? QueryInstruction + (t ?? throw new GlmException($"texts[{i}] is null; expected a string.")) : t ?? throw new GlmException($"texts[{i}] is null; expected a string."),
            MaxLength)).ToList();
        var result = new float[texts.Count][];
        _runner.Run(encoded, useTypeIds: false, (hidden, mask, idx) =>
        {
            var pooled = Pool(hidden, mask).to(ScalarType.Float32);
            if (_normalize) pooled = F.normalize(pooled, p: 2, dim: -1);
            var values = pooled.cpu().data<float>().ToArray();
            for (int r = 0; r < idx.Length; r++)
                result[idx[r]] = values.AsSpan(r * Dimension, Dimension).ToArray();
        });
        return result;
    }

    /// <summary>Embeds one text.</summary>
    public float[] Embed(string text, bool isQuery) => Embed(new[] { text }, isQuery)[0];

    private Tensor Pool(Tensor hidden, Tensor mask)
    {
        if (Pooling == EncoderPooling.Cls) return hidden.select(1, 0);
        var m = mask.unsqueeze(-1).to(hidden.dtype);
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
    }

    /// <summary>Reads <c>1_Pooling/config.json</c>: CLS or mean; CLS when absent. Other modes are rejected.</summary>
    public static EncoderPooling ReadPooling(string folder)
    {
        var cfg = JsonFields.TryLoad(Path.Combine(folder, "1_Pooling", "config.json"));
        if (cfg is null) return EncoderPooling.Cls;
        bool cls = cfg.BoolOr("pooling_mode_cls_token", false), mean = cfg.BoolOr("pooling_mode_mean_tokens", false);
        foreach (var other in new[] { "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken" })
            if (cfg.BoolOr(other, false))
                throw new GlmException($"{cfg.Source}: {other} = true is not supported; expected pooling_mode_cls_token or pooling_mode_mean_tokens.");
        if (cls == mean)
            throw new GlmException($"{cfg.Source}: pooling_mode_cls_token = {cls} and pooling_mode_mean_tokens = {mean}; expected exactly one of them true.");
        return cls ? EncoderPooling.Cls : EncoderPooling.Mean;
    }

    /// <summary>The query instruction for a folder when none is configured (see <see cref="EncoderEmbeddingOptions.QueryInstruction"/>).</summary>
    public static string DefaultInstruction(string folder)
    {
        var st = JsonFields.TryLoad(Path.Combine(folder, "config_sentence_transformers.json"));
        if (st?.Json["prompts"]?["query"] is System.Text.Json.Nodes.JsonValue q && q.TryGetValue<string>(out var prompt))
            return prompt;
        string name = Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)).ToLowerInvariant();
        if (!name.Contains("bge-") || name.Contains("reranker") || name.Contains("m3")) return "";
        if (name.Contains("-zh")) return ChineseQueryInstruction;
        if (name.Contains("-en")) return EnglishQueryInstruction;
        return "";
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose() => _runner.Dispose();
}
