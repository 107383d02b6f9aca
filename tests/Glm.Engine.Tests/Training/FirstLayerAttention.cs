using Glm.Engine.Modeling;
using TorchSharp;
using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Tests.Training;

/// <summary>
/// Where a GLM's first layer sends Part-A queries, computed from the weights alone (word + position + block-position 0
/// embeddings of random ids, the layer's own input LayerNorm, its query/key rows).
/// </summary>
internal static class FirstLayerAttention
{
    /// <summary>Mean attention share on the four keys within two positions of the query, and on the query itself (uniform: 4/positions and 1/positions).</summary>
    public static (double Neighbours, double Self) Locality(IReadOnlyDictionary<string, Tensor> w, int hidden, int heads, int positions, int vocab)
    {
        using var scope = NewDisposeScope();
        var attention = Weights(w, hidden, heads, positions, vocab);
        var index = arange(positions);
        var distance = (index.view(-1, 1) - index.view(1, -1)).abs();
        var near = distance.le(2).logical_and(distance.gt(0));
        return ((attention * near).sum(-1).mean().item<float>(), attention.diagonal(0, 1, 2).mean().item<float>());
    }

    /// <summary>Mean attention share of one head's queries on the key <paramref name="offset"/> positions away.</summary>
    public static double AtOffset(IReadOnlyDictionary<string, Tensor> w, int hidden, int heads, int positions, int vocab, int head, int offset)
    {
        using var scope = NewDisposeScope();
        var attention = Weights(w, hidden, heads, positions, vocab)[head];
        return attention.diagonal(offset).mean().item<float>();
    }

    /// <summary>[heads, query, key] attention weights of the first layer.</summary>
    private static Tensor Weights(IReadOnlyDictionary<string, Tensor> w, int hidden, int heads, int positions, int vocab)
    {
        var ids = randint(FirstText, vocab, new long[] { positions }, generator: new Generator(11));
        var x = w[GlmBlockNames.WordEmbeddings].index_select(0, ids) + w[GlmBlockNames.PositionEmbeddings].narrow(0, 0, positions)
                + w[GlmBlockNames.BlockPositionEmbeddings][0];
        string layer = GlmBlockNames.Layer(0);
        var h = F.layer_norm(x, new long[] { hidden }, w[$"{layer}.input_layernorm.weight"], w[$"{layer}.input_layernorm.bias"]);
        var qkv = F.linear(h, w[$"{layer}.attention.query_key_value.weight"], w[$"{layer}.attention.query_key_value.bias"]);
        int d = hidden / heads;
        var q = qkv.narrow(1, 0, hidden).view(positions, heads, d).transpose(0, 1);
        var k = qkv.narrow(1, hidden, hidden).view(positions, heads, d).transpose(0, 1);
        return q.matmul(k.transpose(1, 2)).div(Math.Sqrt(d)).softmax(-1);
    }
}
