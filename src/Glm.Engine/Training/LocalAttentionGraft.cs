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
/// <para>With <c>neighbourHeads</c>, only the first layer's first two heads are grafted, as a look-left and a look-right head (a
/// window on every head of a trained layer drowns the content attention the other layers rely on: held-out loss 5.2 → 9.0): the
/// query's positional part is rotated by one position (sinusoids shift by a rotation of each sin/cos pair), so they attend to
/// the position before / after their own, and their value/output projections are replaced by a copy of the attended token's
/// main word-embedding directions (the top principal directions of the word table, read through the LayerNorm and written back
/// at the residual's scale). A blank's <c>sop</c> then starts with its neighbours' words in its residual stream, where the
/// trained model's continuation circuitry already knows what follows a word.</para>
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
    /// <param name="Dimensions">Width of the positional subspace.</param>
    /// <param name="Layers">Layers whose heads were grafted (all heads) when no neighbour heads were asked for.</param>
    /// <param name="Share">Share of a normalised input taken by the sinusoids.</param>
    /// <param name="Amplitude">Length of an added sinusoid row.</param>
    /// <param name="EffectiveGain">α′ of the added query·key term.</param>
    /// <param name="SubspaceEnergy">Energy of the embeddings in the chosen subspace before the graft.</param>
    /// <param name="TotalEnergy">Energy of the embeddings in all directions.</param>
    /// <param name="CopiedDirections">Word directions copied by each neighbour head (0: none).</param>
    public sealed record Report(int Dimensions, int Layers, double Share, double Amplitude, double EffectiveGain, double SubspaceEnergy, double TotalEnergy,
        int CopiedDirections = 0)
    {
        /// <inheritdoc/>
        public override string ToString() =>
            $"local-attention graft: {Dimensions} positional dims holding {SubspaceEnergy / TotalEnergy:P2} of the embeddings' energy, " +
            $"sinusoid rows of length {Amplitude:G3} ({Share:P0} of a normalised input), query/key gain {EffectiveGain:G3} " +
            (CopiedDirections > 0 ? $"on layer 0's heads 0/1 only, looking one position left/right and copying {CopiedDirections} word directions"
                                  : $"on every head of the first {Layers} layer(s)");
    }

    /// <summary>
    /// Grafts in place. <paramref name="model"/> must be an original-GLM model with trainable (fp32) weights;
    /// <paramref name="dimensions"/> 0 means <see cref="DefaultDimensions"/>, or half of hidden_size or the head size if less.
    /// </summary>
    public static Report Apply(GlmModel model, double queryKeyGain = LocalAttentionInitialization.DefaultQueryKeyGain, long seed = 0,
        int layers = DefaultLayers, int dimensions = 0, double share = DefaultShare, bool neighbourHeads = false)
    {
        if (model.Network is not GlmBlockModel network)
            throw new GlmException($"the local-attention graft needs an original-GLM model; got layout {model.Config.Layout}.");
        var cfg = network.Config;
        // Each head reads the whole positional subspace, so its added query·key term depends on the distance alone.
        if (dimensions == 0) dimensions = Math.Min(DefaultDimensions, Math.Min(cfg.HiddenSize / 4, cfg.HeadDim / 2) * 2);
        if (!(queryKeyGain >= 0) || double.IsInfinity(queryKeyGain))
            throw new GlmException($"local-attention query/key gain = {queryKeyGain}; expected a finite number >= 0.");
        if (dimensions < 2 || dimensions % 2 != 0 || dimensions > cfg.HiddenSize / 2)
            throw new GlmException($"local-attention graft dimensions = {dimensions}; expected an even number in [2, hidden_size/2 = {cfg.HiddenSize / 2}].");
        if (layers < 1 || layers > cfg.NumLayers)
            throw new GlmException($"local-attention graft layers = {layers}; expected 1 … {cfg.NumLayers}.");
        if (!(share > 0 && share < 1))
            throw new GlmException($"local-attention graft share = {share}; expected a number in (0, 1).");
        if (neighbourHeads && cfg.NumHeads < 3)
            throw new GlmException($"local-attention graft with neighbour heads needs 3 or more heads (two become look-left/look-right); the model has {cfg.NumHeads}.");

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
        var centredWords = Centred(words);
        var centredPositions = Centred(positions);
        var secondMoment = SecondMoment(centredWords) + SecondMoment(centredPositions) + SecondMoment(Centred(blocks.narrow(0, 0, 2)));
        // Push the all-ones direction to the top of the spectrum so it is never chosen.
        var ones1 = ones(hidden, 1, dtype: float64) / Math.Sqrt(hidden);
        var (eigenvalues, eigenvectors) = linalg.eigh(secondMoment + ones1.matmul(ones1.t()) * (secondMoment.trace() + 1));
        var subspace = eigenvectors.narrow(1, 0, dimensions); // [H, d], ascending eigenvalues
        double subspaceEnergy = eigenvalues.narrow(0, 0, dimensions).sum().item<double>();

        // Typical energy of a centred first-layer input: a word, a Part-A position (block 0), averaged over both.
        double totalEnergy = centredWords.pow(2).sum(1).mean().item<double>() + centredPositions.pow(2).sum(1).mean().item<double>()
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
                if (neighbourHeads && !(layer == 0 && head < 2)) continue; // the other heads keep their trained attention
                var projection = LocalAttentionInitialization.OrthonormalRows(projected, dimensions, generator).to(float64);
                // A neighbour head's query sits one position left (head 0) or right (head 1) of its token.
                int offset = neighbourHeads && layer == 0 && head < 2 ? (head == 0 ? -1 : 1) : 0;
                var keyPart = projection.matmul(throughNorm) * Math.Sqrt(effectiveGain);
                var queryPart = offset == 0 ? keyPart : projection.matmul(Shift(dimensions, offset, rows)).matmul(throughNorm) * Math.Sqrt(effectiveGain);
                AddRows(weight, bias, (long)head * headDim, queryPart, beta);
                AddRows(weight, bias, hidden + (long)head * headDim, keyPart, beta);
            }
        }
        int copied = 0;
        if (neighbourHeads)
        {
            copied = Math.Min(headDim, hidden / 2);
            CopyWordDirections(p, cfg, centredWords, copied, Math.Sqrt(totalEnergy / hidden));
        }
        return new Report(dimensions, layers, share, length, effectiveGain, subspaceEnergy, secondMoment.trace().item<double>(), copied);
    }

    /// <summary>Adds <paramref name="part"/> (which reads the LayerNorm's input) to the rows from <paramref name="firstRow"/> on, cancelling the norm's bias (<paramref name="normBias"/>).</summary>
    private static void AddRows(Tensor weight, Tensor bias, long firstRow, Tensor part, Tensor normBias)
    {
        long count = part.shape[0];
        weight.narrow(0, firstRow, count).add_(part.to(float32).to(weight.device));
        bias.narrow(0, firstRow, count).add_((-part.matmul(normBias)).to(float32).to(bias.device));
    }

    /// <summary>
    /// [d, d] map of sinusoid coordinates at position p to those at p + <paramref name="offset"/>: each (sin ωp, cos ωp) pair is
    /// rotated by ω·offset (frequencies as in <see cref="LocalAttentionInitialization.Sinusoids"/>).
    /// </summary>
    internal static Tensor Shift(int dimensions, int offset, int longestWavelength)
    {
        int pairs = dimensions / 2;
        var map = zeros(dimensions, dimensions, dtype: float64);
        for (int i = 0; i < pairs; i++)
        {
            double omega = LocalAttentionInitialization.Frequency(i, pairs, longestWavelength);
            double cos = Math.Cos(omega * offset), sin = Math.Sin(omega * offset);
            // sin(a + b) = sin a cos b + cos a sin b; cos(a + b) = cos a cos b − sin a sin b
            map[2 * i, 2 * i] = cos; map[2 * i, 2 * i + 1] = sin;
            map[2 * i + 1, 2 * i] = -sin; map[2 * i + 1, 2 * i + 1] = cos;
        }
        return map;
    }

    /// <summary>
    /// Layer 0, heads 0 and 1: values read the attended token's coordinates along the word table's top principal directions
    /// (through the input LayerNorm); the output projection writes them back along the same directions at the residual's scale.
    /// </summary>
    private static void CopyWordDirections(Dictionary<string, Tensor> p, GlmConfig cfg, Tensor centredWords, int count, double residualScale)
    {
        int hidden = cfg.HiddenSize, headDim = cfg.HeadDim;
        string prefix = GlmBlockNames.Layer(0);
        var gamma = p[$"{prefix}.input_layernorm.weight"].to(float64).cpu();
        var beta = p[$"{prefix}.input_layernorm.bias"].to(float64).cpu();
        var (_, vectors) = linalg.eigh(SecondMoment(centredWords));
        var principal = vectors.narrow(1, hidden - count, count);                 // [H, count], largest eigenvalues
        var read = principal.t() / gamma.unsqueeze(0);                            // [count, H]
        var weight = p[$"{prefix}.attention.query_key_value.weight"];
        var bias = p[$"{prefix}.attention.query_key_value.bias"];
        var dense = p[$"{prefix}.attention.dense.weight"];
        for (int head = 0; head < 2; head++)
        {
            long valueRow = 2L * hidden + (long)head * headDim;
            weight.narrow(0, valueRow, headDim).zero_();
            bias.narrow(0, valueRow, headDim).zero_();
            AddRows(weight, bias, valueRow, read, beta);
            var columns = dense.narrow(1, (long)head * headDim, headDim);
            columns.zero_();
            columns.narrow(1, 0, count).copy_((principal * residualScale).to(float32).to(dense.device));
        }
    }

    private static Tensor SecondMoment(Tensor rows) => rows.t().matmul(rows) / rows.shape[0];
}
