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
    /// Megatron, then position tables and query/key projections that make every head attend locally from step 0
    /// (<see cref="LocalAttentionInitialization"/>). The architecture is unchanged: the tables stay learned.
    /// </summary>
    LocalAttention,
}

/// <summary>
/// A structured start for GLM's learned 2-D positions, so that a blank's first Part-B token can read the blank's neighbours
/// before training has found them. From the Megatron start, attention is uniform over hundreds of Part-A keys and the one
/// token per blank that needs a neighbour sends it too weak a gradient: the first-token loss stays at the unigram level
/// (glm-zh-small card). Here
/// <list type="bullet">
/// <item>the position table holds sinusoids in the first half of the hidden dimensions and the block-position table in the
/// second half (frequencies 1 … 1/max_sequence_length, rows as long as a N(0, 0.02²) row), so nearby positions have similar
/// rows and the two coordinates do not interfere;</item>
/// <item>each head's query and key projections start as the same random orthonormal projection times √α, plus the Megatron
/// noise (Trockman &amp; Kolter 2023, "mimetic" initialisation: W_q·W_kᵀ ≈ αI). A query then scores keys by similarity of
/// their (normalised) embeddings, which for the position part peaks at the same position and its neighbours.</item>
/// </list>
/// Part B's <c>sop</c> sits at the blank's position id, so from the first step it attends to the [MASK] and the tokens
/// beside it, and later Part-B tokens (same position, next block position) to their predecessor.
/// </summary>
public static class LocalAttentionInitialization
{
    /// <summary>Default α: the score margin of a neighbouring position over a distant one is about 2α nats at head dim 64.</summary>
    public const double DefaultQueryKeyGain = 2.0;

    /// <summary>
    /// Overwrites the position tables and adds the query/key projections in place. <paramref name="model"/> must be an
    /// original-GLM model with trainable (fp32 or bf16) weights, freshly initialised.
    /// </summary>
    public static void Apply(GlmModel model, double queryKeyGain = DefaultQueryKeyGain, long seed = 0, double embeddingStd = 0.02)
    {
        if (model.Network is not GlmBlockModel network)
            throw new GlmException($"local-attention initialisation needs an original-GLM model; got layout {model.Config.Layout}.");
        if (!(queryKeyGain >= 0) || double.IsInfinity(queryKeyGain))
            throw new GlmException($"local-attention query/key gain = {queryKeyGain}; expected a finite number >= 0.");
        var cfg = network.Config;
        int hidden = cfg.HiddenSize, headDim = cfg.HeadDim, rows = cfg.MaxPositions + 1;
        if (hidden % 4 != 0)
            throw new GlmException($"local-attention initialisation splits hidden_size {hidden} into two halves of sine/cosine pairs; expected a multiple of 4.");
        var parameters = network.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // A N(0, σ²) row of length H has norm σ√H; sin/cos pairs of amplitude A over H/2 dims have norm A√(H/4).
        double amplitude = 2 * embeddingStd;
        CopyInto(parameters[GlmBlockNames.PositionEmbeddings], Sinusoids(rows, hidden, 0, hidden / 2, rows) * amplitude);
        CopyInto(parameters[GlmBlockNames.BlockPositionEmbeddings], Sinusoids(rows, hidden, hidden / 2, hidden / 2, rows) * amplitude);

        using var generator = new Generator((ulong)seed ^ 0x10CA1A77E7UL);
        double gain = Math.Sqrt(queryKeyGain);
        for (int layer = 0; layer < cfg.NumLayers; layer++)
        {
            var qkv = parameters[$"{GlmBlockNames.Layer(layer)}.attention.query_key_value.weight"];
            for (int head = 0; head < cfg.NumHeads; head++)
            {
                var projection = OrthonormalRows(headDim, hidden, generator) * gain;
                AddInto(qkv.narrow(0, (long)head * headDim, headDim), projection);              // Q rows
                AddInto(qkv.narrow(0, hidden + (long)head * headDim, headDim), projection);     // K rows
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
            double omega = pairs == 1 ? 1 : Math.Exp(-Math.Log(longestWavelength) * i / (pairs - 1));
            for (int p = 0; p < rows; p++)
            {
                table[p * width + offset + 2 * i] = (float)Math.Sin(p * omega);
                table[p * width + offset + 2 * i + 1] = (float)Math.Cos(p * omega);
            }
        }
        return tensor(table, new long[] { rows, width });
    }

    /// <summary>[count, width] with orthonormal rows (count ≤ width), drawn from <paramref name="generator"/>.</summary>
    internal static Tensor OrthonormalRows(int count, int width, Generator generator)
    {
        var (q, _) = linalg.qr(randn(new long[] { width, count }, generator: generator));
        return q.t();
    }

    private static void CopyInto(Tensor target, Tensor values) => target.copy_(values.to(target.dtype, target.device));

    private static void AddInto(Tensor target, Tensor values) => target.add_(values.to(target.dtype, target.device));
}
