namespace Glm.Engine.Modeling;

/// <summary>Named shapes for random models (<c>--model random:NAME</c>), so speed and correctness can be checked without a download.</summary>
public static class ModelPresets
{
    /// <summary>Preset names and what they are for.</summary>
    public static IReadOnlyDictionary<string, string> Descriptions { get; } = new Dictionary<string, string>
    {
        ["glm4-tiny"] = "2 layers, hidden 64, GQA 4/2 heads — unit tests",
        ["chatglm3-tiny"] = "2 layers, hidden 64, ChatGLM3 RoPE base 10000 — unit tests",
        ["glm4-0.5b"] = "24 layers, hidden 1024, 8×128 heads, 2 KV heads, vocab 151552 (~0.58B)",
        ["glm4-bench"] = "the issue-8 benchmark shape: 20 layers, hidden 1536, 12×128 heads, 2 KV, ffn 4608, vocab 32768 (635,540,992 params)",
    };

    /// <summary>The config of a named preset in the THUDM GLM-4 layout.</summary>
    public static GlmConfig Get(string name) => name switch
    {
        "glm4-tiny" => Glm4(layers: 2, hidden: 64, heads: 4, kv: 2, headDim: 16, ffn: 128, vocab: 512, maxPos: 512),
        "chatglm3-tiny" => Glm4(layers: 2, hidden: 64, heads: 4, kv: 2, headDim: 16, ffn: 128, vocab: 512, maxPos: 512) with { RopeBase = 10000, EosTokenIds = new[] { 2 } },
        "glm4-0.5b" => Glm4(layers: 24, hidden: 1024, heads: 8, kv: 2, headDim: 128, ffn: 2816, vocab: 151552, maxPos: 32768),
        "glm4-bench" => Glm4(layers: 20, hidden: 1536, heads: 12, kv: 2, headDim: 128, ffn: 4608, vocab: 32768, maxPos: 32768),
        _ => throw new GlmException($"random:{name} is not a known model size; expected one of: {string.Join(", ", Descriptions.Keys)}."),
    };

    private static GlmConfig Glm4(int layers, int hidden, int heads, int kv, int headDim, int ffn, int vocab, int maxPos) => new()
    {
        Layout = GlmLayout.ChatGlm,
        ModelType = "chatglm",
        NumLayers = layers,
        HiddenSize = hidden,
        NumHeads = heads,
        NumKvHeads = kv,
        HeadDim = headDim,
        FfnHiddenSize = ffn,
        VocabSize = vocab,
        NormEps = 1.5625e-7,
        RopeBase = 10000.0 * 500,
        RotaryDim = headDim / 2,
        QkvBias = true,
        LinearBias = false,
        TiedEmbeddings = false,
        MaxPositions = maxPos,
        EosTokenIds = Array.Empty<int>(),
        TorchDtype = "float32",
    };

    /// <summary>Parameter count of a ChatGLM-layout config (embedding, blocks, final norm, output layer).</summary>
    public static long ParameterCount(GlmConfig c)
    {
        if (c.Layout == GlmLayout.OriginalGlm) return GlmBlockNames.ParameterCount(c);
        long h = c.HiddenSize, qkv = (long)(c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim;
        long perLayer = 2 * h + qkv * h + (c.QkvBias ? qkv : 0) + (long)c.NumHeads * c.HeadDim * h
                        + 2L * c.FfnHiddenSize * h + c.FfnHiddenSize * h
                        + (c.LinearBias ? h + 2L * c.FfnHiddenSize + h : 0)
                        + (c.Layout == GlmLayout.HfGlm4 ? 2 * h : 0);
        return c.VocabSize * h * (c.TiedEmbeddings ? 1 : 2) + c.NumLayers * perLayer + h;
    }

    /// <summary>Parameters read per decoded token (everything but the embedding table, which is gathered, not streamed).</summary>
    public static long ParametersReadPerToken(GlmConfig c) => ParameterCount(c) - (c.TiedEmbeddings ? 0 : (long)c.VocabSize * c.HiddenSize);
}
