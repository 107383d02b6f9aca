using Glm.Engine.Modeling;
using Glm.Engine.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>Tiny original-GLM configs, weights with non-trivial biases/norms, and a character-level tokenizer for tests.</summary>
internal static class GlmBlockTestSupport
{
    // Control-token ids of the tiny vocabulary.
    public const int Cls = 1, Eos = 2, Mask = 3, SMask = 4, GMask = 5, Sop = 6, Eop = 7, FirstText = 8;

    public static GlmConfig TinyConfig(GeluVariant gelu = GeluVariant.Tanh, int layers = 2) => new()
    {
        Layout = GlmLayout.OriginalGlm,
        ModelType = "glm",
        NumLayers = layers,
        HiddenSize = 32,
        NumHeads = 4,
        NumKvHeads = 4,
        HeadDim = 8,
        FfnHiddenSize = 128,
        VocabSize = 72,
        NormEps = 1e-5,
        QkvBias = true,
        LinearBias = true,
        TiedEmbeddings = true,
        MaxPositions = 64,
        Gelu = gelu,
        BlankTokens = new GlmBlankTokenIds(Mask, SMask, GMask, Sop, Eop),
    };

    /// <summary>Random tensors for every name of <paramref name="cfg"/>: biases and LayerNorm parameters are non-zero too.</summary>
    public static Dictionary<string, Tensor> RandomTensors(GlmConfig cfg, long seed)
    {
        var gen = new Generator((ulong)seed);
        var d = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, shape) in GlmBlockNames.ExpectedShapes(cfg))
            d[name] = name.EndsWith("layernorm.weight", StringComparison.Ordinal)
                ? 1.0f + 0.1f * randn(shape, generator: gen)
                : 0.3f * randn(shape, generator: gen);
        return d;
    }

    public static GlmLoadOptions Fp32Cpu => new() { DType = "fp32", Device = "cpu" };

    public static GlmModel Model(GlmConfig cfg, Dictionary<string, Tensor> tensors, IGlmTokenizer? tokenizer = null) =>
        GlmModel.FromWeights(cfg, new InMemoryWeights(tensors), tokenizer, Fp32Cpu, "test");

    public static GlmModel Model(GeluVariant gelu = GeluVariant.Tanh, long seed = 7, IGlmTokenizer? tokenizer = null)
    {
        var cfg = TinyConfig(gelu);
        return Model(cfg, RandomTensors(cfg, seed), tokenizer);
    }

    public static float MaxAbsDifference(float[,] a, float[,] b, int row)
    {
        float m = 0;
        for (int j = 0; j < a.GetLength(1); j++) m = Math.Max(m, Math.Abs(a[row, j] - b[row, j]));
        return m;
    }
}

/// <summary>
/// Character-level tokenizer over a-z and space (ids 8..34) plus the GLM control tokens, so text-level blank filling can be
/// tested without a trained vocabulary.
/// </summary>
internal sealed class CharTestTokenizer : IGlmTokenizer
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz ";
    private static readonly Dictionary<string, int> Specials = new()
    {
        ["[CLS]"] = GlmBlockTestSupport.Cls, ["<|endoftext|>"] = GlmBlockTestSupport.Eos, ["[MASK]"] = GlmBlockTestSupport.Mask,
        ["[sMASK]"] = GlmBlockTestSupport.SMask, ["[gMASK]"] = GlmBlockTestSupport.GMask,
        ["<|startofpiece|>"] = GlmBlockTestSupport.Sop, ["<|endofpiece|>"] = GlmBlockTestSupport.Eop,
    };

    public int VocabSize => 72;
    public int? EosId => GlmBlockTestSupport.Eos;

    public IReadOnlyList<int> Encode(string text) =>
        text.Select(c => Alphabet.IndexOf(c) is var i and >= 0 ? GlmBlockTestSupport.FirstText + i
            : throw new GlmException($"test tokenizer: character '{c}' is not in the alphabet")).ToList();

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => string.Concat(ids.Select(id =>
        id >= GlmBlockTestSupport.FirstText && id < GlmBlockTestSupport.FirstText + Alphabet.Length ? Alphabet[id - GlmBlockTestSupport.FirstText].ToString()
        : skipSpecialTokens ? "" : Specials.FirstOrDefault(p => p.Value == id).Key ?? $"<{id}>"));

    public int? SpecialTokenId(string token) => Specials.TryGetValue(token, out int id) ? id : null;
    public bool IsSpecial(int id) => id < GlmBlockTestSupport.FirstText || id >= GlmBlockTestSupport.FirstText + Alphabet.Length;
}
