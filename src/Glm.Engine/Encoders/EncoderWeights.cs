using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Encoders;

/// <summary>Which head a checkpoint carries on top of the encoder.</summary>
public enum EncoderHead
{
    /// <summary>Bare <c>BertModel</c>/<c>XLMRobertaModel</c> (embedding models).</summary>
    None,
    /// <summary><c>XLMRobertaForSequenceClassification</c>: <c>classifier.dense.*</c>, <c>classifier.out_proj.*</c>.</summary>
    RobertaClassifier,
    /// <summary><c>BertForSequenceClassification</c>: pooler + <c>classifier.*</c>.</summary>
    BertClassifier,
}

/// <summary>Checkpoint names and shapes of BERT / XLM-R encoders, and random weights in that layout (tests, benchmarks).</summary>
public static class EncoderWeights
{
    /// <summary>Every tensor name and shape of an encoder with <paramref name="head"/>, names prefixed by <paramref name="prefix"/>.</summary>
    public static Dictionary<string, long[]> ExpectedShapes(EncoderConfig c, string prefix = "", bool pooler = false, EncoderHead head = EncoderHead.None)
    {
        long h = c.HiddenSize, f = c.IntermediateSize;
        var d = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            [prefix + "embeddings.word_embeddings.weight"] = [c.VocabSize, h],
            [prefix + "embeddings.position_embeddings.weight"] = [c.MaxPositions, h],
            [prefix + "embeddings.token_type_embeddings.weight"] = [c.TypeVocabSize, h],
            [prefix + "embeddings.LayerNorm.weight"] = [h],
            [prefix + "embeddings.LayerNorm.bias"] = [h],
        };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"{prefix}encoder.layer.{i}.";
            foreach (var (name, rows, cols) in new[]
                     {
                         ("attention.self.query", h, h), ("attention.self.key", h, h), ("attention.self.value", h, h),
                         ("attention.output.dense", h, h), ("intermediate.dense", f, h), ("output.dense", h, f),
                     })
            {
                d[p + name + ".weight"] = [rows, cols];
                d[p + name + ".bias"] = [rows];
            }
            foreach (var norm in new[] { "attention.output.LayerNorm", "output.LayerNorm" })
            {
                d[p + norm + ".weight"] = [h];
                d[p + norm + ".bias"] = [h];
            }
        }
        if (pooler || head == EncoderHead.BertClassifier)
        {
            d[prefix + "pooler.dense.weight"] = [h, h];
            d[prefix + "pooler.dense.bias"] = [h];
        }
        if (head == EncoderHead.RobertaClassifier)
        {
            d["classifier.dense.weight"] = [h, h];
            d["classifier.dense.bias"] = [h];
            d["classifier.out_proj.weight"] = [c.NumLabels, h];
            d["classifier.out_proj.bias"] = [c.NumLabels];
        }
        else if (head == EncoderHead.BertClassifier)
        {
            d["classifier.weight"] = [c.NumLabels, h];
            d["classifier.bias"] = [c.NumLabels];
        }
        return d;
    }

    /// <summary>
    /// Random fp32 CPU tensors for <see cref="ExpectedShapes"/>: N(0, <paramref name="std"/>) matrices and embeddings,
    /// LayerNorm weights 1 + N(0, 0.1), biases N(0, 0.02). Deterministic for a seed. The caller owns the tensors.
    /// </summary>
    public static Dictionary<string, Tensor> Random(EncoderConfig c, long seed, string prefix = "", bool pooler = false,
        EncoderHead head = EncoderHead.None, double std = 0.05)
    {
        TorchRuntime.EnsureInitialized();
        var gen = new Generator((ulong)seed);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, shape) in ExpectedShapes(c, prefix, pooler, head))
        {
            var t = randn(shape, generator: gen);
            if (name.Contains("LayerNorm.weight", StringComparison.Ordinal)) t = t.mul_(0.1).add_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) t = t.mul_(0.02);
            else t = t.mul_(std);
            result[name] = t;
        }
        return result;
    }
}
