using Glm.Engine.Modeling;
using Glm.Engine.Tests.Checkpoints;
using Glm.Engine.Training;
using Glm.Engine.Training.Data;
using TorchSharp;
using static Glm.Engine.Tests.Modeling.GlmBlockTestSupport;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Training;

public class LocalAttentionInitializationTests
{
    private static readonly GlmSpecialTokens Tokens = new(Cls, Mask, SMask, GMask, Sop, Eop, Eos, Eos);
    private const int Hidden = 128, Heads = 2, Positions = 128;

    private static GlmConfig Config() => GlmPretrainer.OwnModelConfig(vocabSize: 72, hidden: Hidden, layers: 2, heads: Heads, maxSequenceLength: Positions, Tokens);

    private static GlmModel Fresh(bool local, double gain = LocalAttentionInitialization.DefaultQueryKeyGain)
    {
        var model = GlmModel.CreateRandom(Config(), new GlmLoadOptions { DType = "fp32", Seed = 5 }, "test");
        if (local) LocalAttentionInitialization.Apply(model, gain, seed: 5);
        return model;
    }

    private static Dictionary<string, Tensor> Weights(GlmModel model) => model.NamedWeights().ToDictionary(w => w.Name, w => w.Tensor);

    [Fact]
    public void PositionsAndBlockPositionsOwnTheFirstHalfOfTheEmbeddingInDisjointQuarters()
    {
        using var model = Fresh(local: true);
        var w = Weights(model);
        var positions = w[GlmBlockNames.PositionEmbeddings];
        var blocks = w[GlmBlockNames.BlockPositionEmbeddings];
        var words = w[GlmBlockNames.WordEmbeddings];
        const int quarter = Hidden / 4;
        Assert.Equal(0f, positions.narrow(1, quarter, Hidden - quarter).abs().max().item<float>());
        Assert.Equal(0f, blocks.narrow(1, 0, quarter).abs().max().item<float>());
        Assert.Equal(0f, blocks.narrow(1, 2 * quarter, Hidden - 2 * quarter).abs().max().item<float>());
        Assert.Equal(0f, words.narrow(1, 0, 2 * quarter).abs().max().item<float>());
        Assert.True(words.narrow(1, 2 * quarter, Hidden - 2 * quarter).std().item<float>() is > 0.018f and < 0.022f);
        // Row p, pair 0 is (sin p, cos p) × 0.04; the slowest pair has wavelength max_sequence_length + 1.
        Assert.Equal(0.04f * MathF.Sin(3), positions[3, 0].item<float>(), 6);
        Assert.Equal(0.04f * MathF.Cos(3), blocks[3, quarter + 1].item<float>(), 6);
        // Every row as long as a word row's expected length, 0.02·√(H/2).
        foreach (var table in new[] { positions, blocks })
        {
            var norms = table.norm(1).to_type(ScalarType.Float64);
            Assert.Equal(0.02 * Math.Sqrt(Hidden / 2), norms.min().item<double>(), 5);
            Assert.Equal(0.02 * Math.Sqrt(Hidden / 2), norms.max().item<double>(), 5);
        }
    }

    [Fact]
    public void EachHeadsQueryAndKeyGainTheSameScaledOrthonormalProjectionOfThePositionalHalf()
    {
        const double gain = 3.0;
        using var plain = Fresh(local: false);
        using var local = Fresh(local: true, gain);
        int d = Hidden / Heads;
        for (int layer = 0; layer < 2; layer++)
        {
            string name = $"{GlmBlockNames.Layer(layer)}.attention.query_key_value.weight";
            var added = Weights(local)[name] - Weights(plain)[name];
            Assert.Equal(0f, added.narrow(1, Hidden / 2, Hidden / 2).abs().max().item<float>()); // word half untouched
            for (int head = 0; head < Heads; head++)
            {
                var q = added.narrow(0, head * d, d);
                var k = added.narrow(0, Hidden + head * d, d);
                Assert.True(q.allclose(k, rtol: 0, atol: 1e-6), $"layer {layer} head {head}: query and key parts differ");
                Assert.True(q.matmul(q.t()).allclose(eye(d) * gain, rtol: 0, atol: 1e-4), $"layer {layer} head {head}: not √α × orthonormal rows");
            }
            Assert.Equal(0f, added.narrow(0, 2 * Hidden, Hidden).abs().max().item<float>()); // values untouched
        }
    }

    [Fact]
    public void FromTheStartQueriesAttendNearTheirOwnPositionWhereMegatronIsUniform()
    {
        using var plain = Fresh(local: false);
        using var local = Fresh(local: true);
        double uniform = 4.0 / Positions;
        var megatron = FirstLayerAttention.Locality(Weights(plain), Hidden, Heads, Positions, 72);
        var structured = FirstLayerAttention.Locality(Weights(local), Hidden, Heads, Positions, 72);
        Assert.True(megatron.Neighbours < 1.5 * uniform, $"Megatron start: {megatron.Neighbours:P1} of the attention within ±2 positions");
        Assert.True(structured.Neighbours > 10 * uniform, $"local-attention start: {structured.Neighbours:P1} of the attention within ±2 positions (uniform {uniform:P1})");
        Assert.True(structured.Self < structured.Neighbours, $"local-attention start: {structured.Self:P1} on the query itself, {structured.Neighbours:P1} beside it");
    }

    [Fact]
    public void ThePretrainerAppliesItToAFreshRunAndRejectsABadGain()
    {
        using var dir = new CheckpointTempDir();
        var options = new GlmPretrainingOptions
        {
            OutputFolder = dir.Path, Model = Config(), SpecialTokens = Tokens, Steps = 1, BatchSize = 2, LearningRate = 1e-9, MinLearningRate = 0,
            WarmupSteps = 0, EvalEvery = 0, CheckpointEvery = 0, PeakMeasureSeconds = 0, Seed = 5,
            Collator = new BlankInfillingOptions { SpanProbability = 1, SentenceProbability = 0 },
            Initialization = GlmInitialization.LocalAttention,
        };
        var samples = Enumerable.Range(0, 4).Select(s => new[] { Cls }.Concat(Enumerable.Range(0, 30).Select(i => FirstText + (s + i) % 9)).ToArray()).ToList();
        var result = new GlmPretrainer(options).Run(new ListSampleSource(samples), null);
        using var trained = GlmModel.Load(result.ModelFolder!, new GlmLoadOptions { DType = "fp32" });
        var expected = LocalAttentionInitialization.Sinusoids(Positions + 1, Hidden, 0, Hidden / 4, Positions + 1) * 0.04;
        Assert.True(Weights(trained)[GlmBlockNames.PositionEmbeddings].allclose(expected, rtol: 0, atol: 1e-6));

        var ex = Assert.Throws<GlmException>(() => new GlmPretrainer(options with { QueryKeyGain = -1 }));
        Assert.Contains("QueryKeyGain = -1", ex.Message);
    }
}
