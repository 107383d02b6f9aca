using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Training;

/// <summary>
/// <see cref="LocalAttentionInitialization"/> for a model that has already been trained (continued pretraining,
/// <see cref="GlmPretrainingOptions.StartFrom"/>): a trained model's hidden dimensions are all in use, so instead of
/// reserving half of them, the graft finds the <see cref="DefaultDimensions"/> directions of the embedding sum
/// (word + position + block position) with the least energy, orthogonal to the all-ones direction that LayerNorm removes,
/// and
/// <list type="bullet">
/// <item>adds sinusoids of the position to the position table in that subspace, sized so that they make up
/// <see cref="DefaultShare"/> of a typical normalised input's length (the other directions shrink by √(1 − share²) at each
/// LayerNorm);</item>
/// <item>adds to each head's query and key projection in the first <c>layers</c> layers the same random orthonormal
/// projection of that subspace, written through the layer's input LayerNorm (divided by its weight, its bias cancelled in
/// the projection's bias), so that the added query·key term is exactly α' × (positional part)·(positional part) with α' chosen
/// to give the positional part the attention logits of a fresh <see cref="LocalAttentionInitialization"/> start.</item>
/// </list>
/// Every grafted head keeps its learned content term and gains a soft sliding window around its own position; a blank's
/// first Part-B token, which sits at the blank's position id, starts attending to the [MASK] and the tokens beside it.
/// </summary>
public static class LocalAttentionGraft
{
    /// <summary>Width of the positional subspace (sin/cos pairs at geometric frequencies), at most half of hidden_size.</summary>
    public const int DefaultDimensions = 64;
    /// <summary>Share of a normalised first-layer input's length taken by the positional part.</summary>
    public const double DefaultShare = 0.3;
    /// <summary>Layers whose heads are grafted (from the first).</summary>
    public const int DefaultLayers = 2;

    /// <summary>What <see cref="Apply"/> changed, for the run log.</summary>
    public sealed record Report(int Dimensions, int Layers, double Share, double Amplitude, double EffectiveGain, double SubspaceEnergy, double TotalEnergy)
    {
        /// <inheritdoc/>
        public override string ToString() =>
            $"local-attention graft: {Dimensions} positional dims holding {SubspaceEnergy / TotalEnergy:P2} of the embeddings' energy, " +
            $"sinusoid rows of length {Amplitude:G3} ({Share:P0} of a normalised input), query/key gain {EffectiveGain:G3} in the first {Layers} layer(s)";
    }

    /// <summary>
    /// Grafts in place. <paramref name="model"/> must be an original-GLM model with trainable (fp32) weights;
    /// <paramref name="dimensions"/> 0 means <see cref="DefaultDimensions"/> or half of hidden_size if that is less.
    /// </summary>
    public static Report Apply(GlmModel model, double queryKeyGain = LocalAttentionInitialization.DefaultQueryKeyGain, long seed = 0,
        int layers = DefaultLayers, int dimensions = 0, double share = DefaultShare)
    {
        if (model.Network is not GlmBlockModel network)
            throw new GlmException($"the local-attention graft needs an original-GLM model; got layout {model.Config.Layout}.");
        var cfg = network.Config;
        if (dimensions == 0) dimensions = Math.Min(DefaultDimensions, cfg.HiddenSize / 4 * 2);
        if (!(queryKeyGain >= 0) || double.IsInfinity(queryKeyGain))
            throw new GlmException($"local-attention query/key gain = {queryKeyGain}; expected a finite number >= 0.");
        if (dimensions < 2 || dimensions % 2 != 0 || dimensions > cfg.HiddenSize / 2)
            throw new GlmException($"local-attention graft dimensions = {dimensions}; expected an even number in [2, hidden_size/2 = {cfg.HiddenSize / 2}].");
        if (layers < 1 || layers > cfg.NumLayers)
            throw new GlmException($"local-attention graft layers = {layers}; expected 1 … {cfg.NumLayers}.");
        if (!(share > 0 && share < 1))
            throw new GlmException($"local-attention graft share = {share}; expected a number in (0, 1).");

        int hidden = cfg.HiddenSize, headDim = cfg.HeadDim, rows = cfg.MaxPositions + 1;
        var p = network.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var words = p[GlmBlockNames.WordEmbeddings].to(float64).cpu();
        var positions = p[GlmBlockNames.PositionEmbeddings].to(float64).cpu();
        var blocks = p[GlmBlockNames.BlockPositionEmbeddings].to(float64).cpu();

        // LayerNorm subtracts each row's mean: work in the space orthogonal to the all-ones vector.
        var centre = eye(hidden, dtype: float64) - ones(hidden, hidden, dtype: float64) / hidden;
        Tensor Centred(Tensor t) => t.matmul(centre);
        var secondMoment = SecondMoment(Centred(words)) + SecondMoment(Centred(positions)) + SecondMoment(Centred(blocks.narrow(0, 0, 2)));
        // Push the all-ones direction to the top of the spectrum so it is never chosen.
        var ones1 = ones(hidden, 1, dtype: float64) / Math.Sqrt(hidden);
        var (eigenvalues, eigenvectors) = linalg.eigh(secondMoment + ones1.matmul(ones1.t()) * (secondMoment.trace() + 1));
        var subspace = eigenvectors.narrow(1, 0, dimensions); // [H, d], ascending eigenvalues
        double subspaceEnergy = eigenvalues.narrow(0, 0, dimensions).sum().item<double>();

        // Typical energy of a centred first-layer input: a word, a Part-A position (block 0), averaged over both.
        double totalEnergy = Centred(words).pow(2).sum(1).mean().item<double>() + Centred(positions).pow(2).sum(1).mean().item<double>()
                             + Centred(blocks.narrow(0, 0, 1)).pow(2).sum().item<double>();
        double length = Math.Sqrt(share * share * totalEnergy / (1 - share * share));
        double amplitude = length / Math.Sqrt(dimensions / 2.0);
        var sinusoids = LocalAttentionInitialization.Sinusoids(rows, dimensions, 0, dimensions, rows).to(float64) * amplitude; // [rows, d]
        p[GlmBlockNames.PositionEmbeddings].add_(sinusoids.matmul(subspace.t()).to(float32).to(p[GlmBlockNames.PositionEmbeddings].device));

        // A fresh local-attention start gives the positional part a third of the normalised input's energy; match its logits.
        double effectiveGain = queryKeyGain / (3 * share * share);
        using var generator = new Generator((ulong)seed ^ 0x6AF7_10CA1UL);
        int projected = Math.Min(headDim, dimensions);
        for (int layer = 0; layer < layers; layer++)
        {
            string prefix = GlmBlockNames.Layer(layer);
            var gamma = p[$"{prefix}.input_layernorm.weight"].to(float64).cpu();
            var beta = p[$"{prefix}.input_layernorm.bias"].to(float64).cpu();
            if (gamma.abs().min().item<double>() < 1e-4)
                throw new GlmException($"layer {layer}'s input LayerNorm has a weight near 0; the local-attention graft cannot write through it.");
            var throughNorm = subspace.t() / gamma.unsqueeze(0); // [d, H]: reads Uᵀx̂ from the LayerNorm's output
            var weight = p[$"{prefix}.attention.query_key_value.weight"];
            var bias = p[$"{prefix}.attention.query_key_value.bias"];
            for (int head = 0; head < cfg.NumHeads; head++)
            {
                var added = LocalAttentionInitialization.OrthonormalRows(projected, dimensions, generator).to(float64).matmul(throughNorm) * Math.Sqrt(effectiveGain);
                var shift = -added.matmul(beta);
                foreach (long row in new[] { (long)head * headDim, hidden + (long)head * headDim }) // Q rows, K rows
                {
                    weight.narrow(0, row, projected).add_(added.to(float32).to(weight.device));
                    bias.narrow(0, row, projected).add_(shift.to(float32).to(bias.device));
                }
            }
        }
        return new Report(dimensions, layers, share, length, effectiveGain, subspaceEnergy, secondMoment.trace().item<double>());
    }

    private static Tensor SecondMoment(Tensor rows) => rows.t().matmul(rows) / rows.shape[0];
}
