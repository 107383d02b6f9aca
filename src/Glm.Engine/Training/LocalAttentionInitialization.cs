using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Training;

/// <summary>How a from-scratch GLM's weights start (<see cref="GlmPretrainingOptions.Initialization"/>).</summary>
public enum GlmInitialization
{
    /// <summary>Megatron/THUDM: every matrix and embedding N(0, 0.02²), LayerNorm weight 1, biases 0.</summary>
    Megatron,

    /// <summary>
    /// Megatron, then positional embeddings and query/key projections that make every head attend locally from step 0
    /// (<see cref="LocalAttentionInitialization"/>). The architecture is unchanged: the tables stay learned.
    /// </summary>
    LocalAttention,
}

/// <summary>
/// A structured start for GLM's learned 2-D positions, so that a blank's first Part-B token can read the blank's neighbours
/// before training has found them. From the Megatron start, attention is uniform over hundreds of Part-A keys and the one
/// token per blank that needs a neighbour sends it too weak a gradient: the first-token loss stays at the unigram level
/// (glm-zh-small card). Here the hidden dimensions are split in two at initialisation:
/// <list type="bullet">
/// <item>the first half is positional: the position table holds sinusoids in its first quarter and the block-position table in
/// its second quarter (frequencies 1 … 1/max_sequence_length), so nearby positions have similar rows and the two coordinates
/// do not interfere; the word embeddings start at zero there and N(0, 0.02²) in the second half, and each table's rows are as
/// long as a word row;</item>
/// <item>each head's query and key projections start as the same random orthonormal projection of the positional half times
/// √α, plus the Megatron noise (as in "mimetic" initialisation, Trockman &amp; Kolter 2023, W_q·W_kᵀ ≈ αI, but on positions
/// only, so a token does not simply attend to itself or to copies of its own word).</item>
/// </list>
/// Every head then starts as a soft sliding window: a Part-A token attends to the tokens around it, and Part B's <c>sop</c>,
/// which sits at the blank's position id, to the [MASK] and the tokens beside it. The architecture is unchanged: the tables
/// and projections are ordinary learned weights from the first step on.
/// </summary>
public static class LocalAttentionInitialization
{
    /// <summary>Default α: at head dim 64 and 512 positions a Part-A query starts with about half of its attention on the
    /// four tokens within two positions of it, and <c>sop</c> with about a third on the [MASK] and a quarter beside it.</summary>
    public const double DefaultQueryKeyGain = 2.0;

    /// <summary>
    /// Rewrites the embeddings and adds the query/key projections in place. <paramref name="model"/> must be an original-GLM
    /// model with trainable weights, freshly initialised (<see cref="RandomWeights"/>' Megatron start).
    /// </summary>
    public static void Apply(GlmModel model, double queryKeyGain = DefaultQueryKeyGain, long seed = 0, double embeddingStd = RandomWeights.DefaultStd)
    {
        if (model.Network is not GlmBlockModel network)
            throw new GlmException($"local-attention initialisation needs an original-GLM model; got layout {model.Config.Layout}.");
        if (!(queryKeyGain >= 0) || double.IsInfinity(queryKeyGain))
            throw new GlmException($"local-attention query/key gain = {queryKeyGain}; expected a finite number >= 0.");
        var cfg = network.Config;
        int hidden = cfg.HiddenSize, half = hidden / 2, quarter = hidden / 4, headDim = cfg.HeadDim, rows = cfg.MaxPositions + 1;
        if (hidden % 8 != 0)
            throw new GlmException($"local-attention initialisation puts sine/cosine pairs in two quarters of hidden_size {hidden}; expected a multiple of 8.");
        var parameters = network.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        parameters[GlmBlockNames.WordEmbeddings].narrow(1, 0, half).zero_();
        // A word row is N(0, σ²) over H/2 dims: norm σ√(H/2). Sin/cos pairs of amplitude A over H/4 dims: norm A√(H/8).
        double amplitude = embeddingStd * 2;
        CopyInto(parameters[GlmBlockNames.PositionEmbeddings], Sinusoids(rows, hidden, 0, quarter, rows) * amplitude);
        CopyInto(parameters[GlmBlockNames.BlockPositionEmbeddings], Sinusoids(rows, hidden, quarter, quarter, rows) * amplitude);

        using var generator = new Generator((ulong)seed ^ 0x10CA1A77E7UL);
        double gain = Math.Sqrt(queryKeyGain);
        int projected = Math.Min(headDim, half); // a single head wider than the positional half gets zero rows beyond it
        for (int layer = 0; layer < cfg.NumLayers; layer++)
        {
            var qkv = parameters[$"{GlmBlockNames.Layer(layer)}.attention.query_key_value.weight"];
            for (int head = 0; head < cfg.NumHeads; head++)
            {
                var projection = OrthonormalRows(projected, half, generator) * gain;
                AddInto(qkv.narrow(0, (long)head * headDim, projected).narrow(1, 0, half), projection);           // Q rows
                AddInto(qkv.narrow(0, hidden + (long)head * headDim, projected).narrow(1, 0, half), projection);  // K rows
            }
        }
    }

    /// <summary>
    /// [rows, width] zeros with sin/cos pairs (position·ω_i) in columns [offset, offset + count), ω_i geometric from 1 down to
    /// 1/<paramref name="longestWavelength"/>.
    /// </summary>
    internal static Tensor Sinusoids(int rows, int width, int offset, int count, int longestWavelength)
    {
        int pairs = count / 2;
        var table = new float[rows * width];
        for (int i = 0; i < pairs; i++)
        {
            double omega = Frequency(i, pairs, longestWavelength);
            for (int p = 0; p < rows; p++)
            {
                table[p * width + offset + 2 * i] = (float)Math.Sin(p * omega);
                table[p * width + offset + 2 * i + 1] = (float)Math.Cos(p * omega);
            }
        }
        return tensor(table, new long[] { rows, width });
    }

    /// <summary>ω of sin/cos pair <paramref name="pair"/> of <paramref name="pairs"/>: geometric from 1 down to 1/<paramref name="longestWavelength"/>.</summary>
    internal static double Frequency(int pair, int pairs, int longestWavelength) =>
        pairs == 1 ? 1 : Math.Exp(-Math.Log(longestWavelength) * pair / (pairs - 1));

    /// <summary>[count, width] with orthonormal rows (count ≤ width), drawn from <paramref name="generator"/>.</summary>
    internal static Tensor OrthonormalRows(int count, int width, Generator generator)
    {
        var (q, _) = linalg.qr(randn(new long[] { width, count }, generator: generator));
        return q.t();
    }

    private static void CopyInto(Tensor target, Tensor values) => target.copy_(values.to(target.dtype, target.device));

    private static void AddInto(Tensor target, Tensor values) => target.add_(values.to(target.dtype, target.device));
}
