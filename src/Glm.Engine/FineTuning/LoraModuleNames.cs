using Glm.Engine.Modeling;

namespace Glm.Engine.FineTuning;

/// <summary>
/// Maps the engine's canonical module paths (THUDM names; original-GLM names) to the module names of a checkpoint layout.
/// For transformers' <c>glm</c>/<c>glm4</c> layouts the fused <c>query_key_value</c> becomes three modules
/// <c>self_attn.q_proj</c>, <c>k_proj</c>, <c>v_proj</c> (their LoRA B rows are the Q, K, V row blocks of the fused B).
/// </summary>
public static class LoraModuleNames
{
    private const string ThudmLayers = "transformer.encoder.layers.";

    /// <summary>The module name(s) of <paramref name="canonicalPath"/> in <paramref name="layout"/> (1, or 3 for HF fused QKV).</summary>
    public static IReadOnlyList<string> External(string canonicalPath, GlmLayout layout)
    {
        if (layout is GlmLayout.ChatGlm or GlmLayout.OriginalGlm) return [canonicalPath];
        if (canonicalPath == "transformer.output_layer") return ["lm_head"];
        if (!canonicalPath.StartsWith(ThudmLayers, StringComparison.Ordinal))
            throw new GlmException($"module '{canonicalPath}' has no transformers name in layout {layout}; expected a block linear layer or the output layer.");
        string rest = canonicalPath[ThudmLayers.Length..];
        int dot = rest.IndexOf('.');
        string p = "model.layers." + rest[..dot] + ".", leaf = rest[(dot + 1)..];
        return leaf switch
        {
            "self_attention.query_key_value" => [p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"],
            "self_attention.dense" => [p + "self_attn.o_proj"],
            "mlp.dense_h_to_4h" => [p + "mlp.gate_up_proj"],
            "mlp.dense_4h_to_h" => [p + "mlp.down_proj"],
            _ => throw new GlmException($"module '{canonicalPath}' has no transformers name in layout {layout}."),
        };
    }

    /// <summary>True for weight tables that are looked up, not multiplied (never LoRA targets).</summary>
    internal static bool IsEmbedding(string canonicalPath) =>
        canonicalPath.EndsWith("word_embeddings", StringComparison.Ordinal) || canonicalPath.EndsWith("position_embeddings", StringComparison.Ordinal);

    /// <summary>PEFT's tensor-name prefix.</summary>
    public const string PeftPrefix = "base_model.model.";

    /// <summary>PEFT tensor names of a module: <c>base_model.model.&lt;module&gt;.lora_A.weight</c> and <c>.lora_B.weight</c>.</summary>
    public static (string A, string B) PeftTensorNames(string externalModule) =>
        ($"{PeftPrefix}{externalModule}.lora_A.weight", $"{PeftPrefix}{externalModule}.lora_B.weight");
}
