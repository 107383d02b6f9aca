using Glm.Engine.Modeling;
using Glm.Engine.Tests.Checkpoints;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;
using TorchSharp;
using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Tests.Training;

public class LocalAttentionGraftTests
{
    private static readonly GlmSpecialTokens Tokens = new(Cls, Mask, SMask, GMask, Sop, Eop, Eos, Eos);
    private const int Hidden = 128, Heads = 4, Layers = 3, Positions = 128;

    private static GlmConfig Config() => GlmPretrainer.OwnModelConfig(vocabSize: 72, hidden: Hidden, layers: Layers, heads: Heads, maxSequenceLength: Positions, Tokens);

    /// <summary>A Megatron start with LayerNorms that are no longer 1/0 and embeddings with a common direction, as after training.</summary>
    private static GlmModel Trained()
    {
        var model = GlmModel.CreateRandom(Config(), new GlmLoadOptions { DType = "fp32", Seed = 7 }, "test");
        var p = ((GlmBlockModel)model.Network).named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        using var noGrad = no_grad();
        var g = new Generator(3);
        for (int layer = 0; layer < Layers; layer++)
        {
            p[$"{GlmBlockNames.Layer(layer)}.input_layernorm.weight"].copy_(rand(Hidden, generator: g) * 1.2 + 0.1);
            p[$"{GlmBlockNames.Layer(layer)}.input_layernorm.bias"].copy_(randn(Hidden, generator: g) * 0.1);
        }
        // Training leaves some directions of the embedding space nearly unused: shrink a random half of them.
        var basis = LocalAttentionInitialization.OrthonormalRows(Hidden, Hidden, g);
        var shrink = basis.t().matmul(diag(cat(new[] { ones(Hidden / 2), full(Hidden / 2, 0.1f) }))).matmul(basis);
        foreach (var table in new[] { GlmBlockNames.WordEmbeddings, GlmBlockNames.PositionEmbeddings, GlmBlockNames.BlockPositionEmbeddings })
            p[table].copy_(p[table].matmul(shrink));
        p[GlmBlockNames.WordEmbeddings].add_(randn(Hidden, generator: g).matmul(shrink) * 0.05);
        return model;
    }

    private static Dictionary<string, Tensor> Weights(GlmModel model) => model.NamedWeights().ToDictionary(w => w.Name, w => w.Tensor.clone());

    [Fact]
    public void TheGraftMakesTrainedHeadsAttendNearTheirPosition()
    {
        using var model = Trained();
        var before = FirstLayerAttention.Locality(Weights(model), Hidden, Heads, Positions, 72);
        var report = LocalAttentionGraft.Apply(model, seed: 1);
        var after = FirstLayerAttention.Locality(Weights(model), Hidden, Heads, Positions, 72);
        double uniform = 4.0 / Positions;
        Assert.True(before.Neighbours < 1.5 * uniform, $"before: {before.Neighbours:P1} within ±2 positions");
        Assert.True(after.Neighbours > 10 * uniform, $"after the graft: {after.Neighbours:P1} within ±2 positions (uniform {uniform:P1}); {report}");
        Assert.True(after.Self + after.Neighbours > 0.8, $"after the graft: {after.Self:P1} on the query itself, {after.Neighbours:P1} beside it; expected a window of ±2");
        Assert.Equal(Hidden / Heads, report.Dimensions); // capped at the head size
    }

    [Fact]
    public void OnlyThePositionTableAndTheGraftedLayersQueryAndKeyRowsChange()
    {
        using var model = Trained();
        var before = Weights(model);
        LocalAttentionGraft.Apply(model, seed: 1, layers: 1, dimensions: 32);
        var after = Weights(model);
        var changed = before.Keys.Where(n => !before[n].allclose(after[n], rtol: 0, atol: 0)).Order().ToList();
        Assert.Equal(new[]
        {
            GlmBlockNames.Layer(0) + ".attention.query_key_value.bias", GlmBlockNames.Layer(0) + ".attention.query_key_value.weight",
            GlmBlockNames.PositionEmbeddings,
        }.Order(), changed);
        var qkv = after[GlmBlockNames.Layer(0) + ".attention.query_key_value.weight"] - before[GlmBlockNames.Layer(0) + ".attention.query_key_value.weight"];
        Assert.Equal(0f, qkv.narrow(0, 2 * Hidden, Hidden).abs().max().item<float>()); // values untouched
        // The sinusoids live in a subspace LayerNorm keeps: every added position row sums to zero over the hidden dims.
        var added = after[GlmBlockNames.PositionEmbeddings] - before[GlmBlockNames.PositionEmbeddings];
        Assert.True(added.sum(1).abs().max().item<float>() < 1e-5f);
        Assert.True(added.norm(1).min().item<float>() > 0);
    }

    [Fact]
    public void TheAddedQueryKeyTermReadsTheLayerNormsInputAndCancelsItsBias()
    {
        // Fed the added sinusoid rows alone, each head's added query and key parts are the same vectors, and their products
        // depend only on the distance between positions, whatever LayerNorm's weight and bias are.
        using var model = Trained();
        var before = Weights(model);
        LocalAttentionGraft.Apply(model, seed: 1, layers: 1);
        var after = Weights(model);
        using var scope = NewDisposeScope();
        string layer = GlmBlockNames.Layer(0), qkvName = $"{layer}.attention.query_key_value";
        var sinusoidRows = after[GlmBlockNames.PositionEmbeddings].narrow(0, 0, 40) - before[GlmBlockNames.PositionEmbeddings].narrow(0, 0, 40);
        var h = F.layer_norm(sinusoidRows, new long[] { Hidden }, after[$"{layer}.input_layernorm.weight"], after[$"{layer}.input_layernorm.bias"]);
        var added = F.linear(h, after[qkvName + ".weight"] - before[qkvName + ".weight"], after[qkvName + ".bias"] - before[qkvName + ".bias"]);
        int d = Hidden / Heads;
        for (int head = 0; head < Heads; head++)
        {
            var q = added.narrow(1, head * d, d);
            var k = added.narrow(1, Hidden + head * d, d);
            Assert.True(q.allclose(k, rtol: 1e-4, atol: 1e-4), $"head {head}: query and key parts differ");
            var scores = q.matmul(k.t());
            Assert.True(scores.narrow(0, 0, 39).narrow(1, 0, 39).allclose(scores.narrow(0, 1, 39).narrow(1, 1, 39), rtol: 1e-3, atol: 1e-2), $"head {head}: not a function of the distance");
            Assert.True(scores[10, 10].item<float>() > scores[10, 11].item<float>() && scores[10, 11].item<float>() > scores[10, 15].item<float>(), $"head {head}: not decreasing with distance");
        }
    }

    [Fact]
    public void AShiftRotatesSinusoidsToTheNeighbouringPosition()
    {
        const int d = 16, rows = 50;
        var table = LocalAttentionInitialization.Sinusoids(rows, d, 0, d, rows).to(float64);
        foreach (int offset in new[] { -1, 1, 3 })
        {
            var shifted = table.narrow(0, 5, 40).matmul(LocalAttentionGraft.Shift(d, offset, rows).t());
            Assert.True(shifted.allclose(table.narrow(0, 5 + offset, 40), rtol: 0, atol: 1e-6), $"offset {offset}");
        }
    }

    [Fact]
    public void NeighbourHeadsLookOnePositionLeftAndRightAndTheOtherHeadsKeepTheirWeights()
    {
        using var model = Trained();
        var before = Weights(model);
        var report = LocalAttentionGraft.Apply(model, seed: 1, neighbourHeads: true);
        var after = Weights(model);
        Assert.Equal(Hidden / Heads, report.CopiedDirections);
        double left = FirstLayerAttention.AtOffset(after, Hidden, Heads, Positions, 72, head: 0, offset: -1);
        double right = FirstLayerAttention.AtOffset(after, Hidden, Heads, Positions, 72, head: 1, offset: 1);
        Assert.True(left > 0.3 && left > 3 * FirstLayerAttention.AtOffset(after, Hidden, Heads, Positions, 72, head: 0, offset: 1), $"look-left head: {left:P1} one position left");
        Assert.True(right > 0.3 && right > 3 * FirstLayerAttention.AtOffset(after, Hidden, Heads, Positions, 72, head: 1, offset: -1), $"look-right head: {right:P1} one position right");

        int d = Hidden / Heads;
        string qkv = GlmBlockNames.Layer(0) + ".attention.query_key_value.weight", dense = GlmBlockNames.Layer(0) + ".attention.dense.weight";
        var changedRows = (after[qkv] - before[qkv]).abs().sum(1).gt(0);
        var expected = zeros(3 * Hidden, dtype: ScalarType.Bool);
        foreach (int block in new[] { 0, Hidden, 2 * Hidden }) expected.narrow(0, block, 2 * d).fill_(true); // Q, K, V of heads 0 and 1
        Assert.True(changedRows.eq(expected).all().item<bool>());
        Assert.True(after[dense].narrow(1, 2 * d, Hidden - 2 * d).eq(before[dense].narrow(1, 2 * d, Hidden - 2 * d)).all().item<bool>());
        // The copy writes back along orthonormal directions at one common scale.
        var written = after[dense].narrow(1, 0, d);
        var gram = written.t().matmul(written);
        Assert.True(gram.allclose(eye(d) * gram[0, 0].item<float>(), rtol: 0, atol: 1e-4 * gram[0, 0].item<float>()));
        foreach (var name in before.Keys.Where(n => n.StartsWith(GlmBlockNames.Layer(1)) || n.StartsWith(GlmBlockNames.Layer(2))))
            Assert.True(before[name].eq(after[name]).all().item<bool>(), name);
    }

    [Fact]
    public void BadSettingsAreRejectedWithTheirValues()
    {
        using var model = Trained();
        Assert.Contains("layers = 4", Assert.Throws<GlmException>(() => LocalAttentionGraft.Apply(model, layers: 4)).Message);
        Assert.Contains("dimensions = 7", Assert.Throws<GlmException>(() => LocalAttentionGraft.Apply(model, dimensions: 7)).Message);
        Assert.Contains("share = 1", Assert.Throws<GlmException>(() => LocalAttentionGraft.Apply(model, share: 1)).Message);
        Assert.Contains("gain = -1", Assert.Throws<GlmException>(() => LocalAttentionGraft.Apply(model, queryKeyGain: -1)).Message);
    }

    private static GlmPretrainingOptions ContinuedRun(string output, string from, GlmInitialization init) => new()
    {
        OutputFolder = output, Model = Config(), SpecialTokens = Tokens, Steps = 1, BatchSize = 2, LearningRate = 1e-9, MinLearningRate = 0,
        WarmupSteps = 0, EvalEvery = 1, EvalSamples = 2, CheckpointEvery = 0, PeakMeasureSeconds = 0, Seed = 5, CharactersPerToken = 1,
        Collator = new BlankInfillingOptions { SpanProbability = 1, SentenceProbability = 0 }, StartFrom = from, Initialization = init,
    };

    private static List<int[]> Samples() =>
        Enumerable.Range(0, 4).Select(s => new[] { Cls }.Concat(Enumerable.Range(0, 30).Select(i => FirstText + (s + i) % 9)).ToArray()).ToList();

    [Fact]
    public void APretrainingRunStartsFromAModelsWeightsAndReportsTheStartingEvaluation()
    {
        using var dir = new CheckpointTempDir();
        string source = Path.Combine(dir.Path, "source");
        using (var model = Trained()) model.Save(source);
        var samples = new ListSampleSource(Samples());

        var plain = new GlmPretrainer(ContinuedRun(Path.Combine(dir.Path, "plain"), source, GlmInitialization.Megatron)).Run(samples, samples);
        Assert.Equal(new[] { 0, 1 }, plain.Evaluations.Select(e => e.Step));
        using (var start = GlmModel.Load(source, new GlmLoadOptions { DType = "fp32" }))
        using (var trained = GlmModel.Load(plain.ModelFolder!, new GlmLoadOptions { DType = "fp32" }))
        {
            var a = Weights(start); var b = Weights(trained);
            Assert.All(a.Keys, name => Assert.True(a[name].allclose(b[name], rtol: 0, atol: 1e-5), name)); // lr 1e-9: the source's weights
        }

        var grafted = new GlmPretrainer(ContinuedRun(Path.Combine(dir.Path, "graft"), source, GlmInitialization.LocalAttention)).Run(samples, samples);
        using var graftedModel = GlmModel.Load(grafted.ModelFolder!, new GlmLoadOptions { DType = "fp32" });
        using var original = GlmModel.Load(source, new GlmLoadOptions { DType = "fp32" });
        Assert.False(Weights(graftedModel)[GlmBlockNames.PositionEmbeddings].allclose(Weights(original)[GlmBlockNames.PositionEmbeddings], rtol: 0, atol: 1e-4));
    }

    [Fact]
    public void AModelWithOtherBlankTokensIsRefused()
    {
        using var dir = new CheckpointTempDir();
        string source = Path.Combine(dir.Path, "source");
        using (var model = GlmModel.CreateRandom(Config() with { BlankTokens = new GlmBlankTokenIds(Mask, SMask, GMask, Eop, Sop) },
                   new GlmLoadOptions { DType = "fp32", Seed = 1 }, "test"))
            model.Save(source);
        var ex = Assert.Throws<GlmException>(() =>
            new GlmPretrainer(ContinuedRun(Path.Combine(dir.Path, "run"), source, GlmInitialization.Megatron)).Run(new ListSampleSource(Samples()), null));
        Assert.Contains(source, ex.Message);
        Assert.Contains("blank tokens", ex.Message);
    }
}
