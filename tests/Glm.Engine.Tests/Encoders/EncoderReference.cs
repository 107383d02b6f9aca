using Glm.Engine.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Encoders;

/// <summary>
/// A deliberately naive float64 re-implementation of the BERT/XLM-R forward pass for one unpadded sequence, written from
/// the transformers source (explicit softmax attention, 0.5·x·(1+erf(x/√2)) GELU, LayerNorm by hand), to check the engine.
/// </summary>
internal static class EncoderReference
{
    public static double[,] Hidden(Dictionary<string, Tensor> w, EncoderConfig c, int[] ids, int[]? types = null, string prefix = "")
    {
        using var scope = NewDisposeScope();
        Tensor W(string name) => w[prefix + name].to(ScalarType.Float64);
        int n = ids.Length, h = c.HiddenSize, nh = c.NumHeads, d = h / nh;
        var idT = tensor(ids.Select(i => (long)i).ToArray());
        var pos = c.Family == EncoderFamily.XlmRoberta
            ? arange(c.PadTokenId + 1, c.PadTokenId + 1 + n, dtype: ScalarType.Int64)
            : arange(n, dtype: ScalarType.Int64);
        var typeT = tensor((types ?? new int[n]).Select(i => (long)i).ToArray());
        var x = W("embeddings.word_embeddings.weight")[idT] + W("embeddings.position_embeddings.weight")[pos]
                + W("embeddings.token_type_embeddings.weight")[typeT];
        x = Norm(x, W("embeddings.LayerNorm.weight"), W("embeddings.LayerNorm.bias"), c.LayerNormEps);
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"encoder.layer.{l}.";
            Tensor Lin(Tensor t, string m) => t.matmul(W(p + m + ".weight").t()) + W(p + m + ".bias");
            Tensor Heads(Tensor t) => t.view(n, nh, d).transpose(0, 1);
            var q = Heads(Lin(x, "attention.self.query"));
            var k = Heads(Lin(x, "attention.self.key"));
            var v = Heads(Lin(x, "attention.self.value"));
            var probs = (q.matmul(k.transpose(1, 2)) / Math.Sqrt(d)).softmax(-1);
            var ctx = probs.matmul(v).transpose(0, 1).reshape(n, h);
            x = Norm(x + Lin(ctx, "attention.output.dense"), W(p + "attention.output.LayerNorm.weight"), W(p + "attention.output.LayerNorm.bias"), c.LayerNormEps);
            var inter = Lin(x, "intermediate.dense");
            inter = inter * 0.5 * (1 + special.erf(inter / Math.Sqrt(2)));
            x = Norm(x + Lin(inter, "output.dense"), W(p + "output.LayerNorm.weight"), W(p + "output.LayerNorm.bias"), c.LayerNormEps);
        }
        var flat = x.contiguous().data<double>().ToArray();
        var result = new double[n, h];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < h; j++) result[i, j] = flat[i * h + j];
        return result;
    }

    private static Tensor Norm(Tensor x, Tensor weight, Tensor bias, double eps)
    {
        var mean = x.mean(new long[] { -1 }, keepdim: true);
        var variance = (x - mean).pow(2).mean(new long[] { -1 }, keepdim: true);
        return (x - mean) / (variance + eps).sqrt() * weight + bias;
    }

    public static float[] Row(double[,] hidden, int row, bool normalize)
    {
        int h = hidden.GetLength(1);
        var v = Enumerable.Range(0, h).Select(j => hidden[row, j]).ToArray();
        return Finish(v, normalize);
    }

    public static float[] Mean(double[,] hidden, bool normalize)
    {
        int n = hidden.GetLength(0), h = hidden.GetLength(1);
        var v = Enumerable.Range(0, h).Select(j => Enumerable.Range(0, n).Sum(i => hidden[i, j]) / n).ToArray();
        return Finish(v, normalize);
    }

    private static float[] Finish(double[] v, bool normalize)
    {
        double norm = normalize ? Math.Sqrt(v.Sum(x => x * x)) : 1;
        return v.Select(x => (float)(x / norm)).ToArray();
    }

    /// <summary>y = W·x + b over double vectors (classifier heads).</summary>
    public static double[] Linear(Dictionary<string, Tensor> w, string name, double[] x)
    {
        using var scope = NewDisposeScope();
        var y = w[name + ".weight"].to(ScalarType.Float64).matmul(tensor(x)) + w[name + ".bias"].to(ScalarType.Float64);
        return y.data<double>().ToArray();
    }

    public static double[] RowD(double[,] hidden, int row) =>
        Enumerable.Range(0, hidden.GetLength(1)).Select(j => hidden[row, j]).ToArray();
}
