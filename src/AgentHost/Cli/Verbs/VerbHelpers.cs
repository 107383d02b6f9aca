using Glm.Engine;
using Glm.Engine.Tokenization;

namespace AgentHost.Cli.Verbs;

/// <summary>Small parsing helpers the verbs share.</summary>
internal static class VerbHelpers
{
    /// <summary>Parses "1,2,3" into ids; names the bad item on error.</summary>
    public static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new GlmException($"--ids '{text}': expected a comma-separated list of token ids such as 1,2,3.");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]) || ids[i] < 0)
                throw new GlmException($"--ids: item {i + 1} '{parts[i]}' is not a token id; expected a non-negative integer.");
        return ids;
    }

    /// <summary>The model's tokenizer, or a clear error for models without one.</summary>
    public static IGlmTokenizer RequireTokenizer(GlmModel model, string what) =>
        model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer, so {what} is not possible; use --ids with token ids instead.");

    /// <summary>Reads a UTF-8 text file with a clear error when it is missing.</summary>
    public static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new GlmException($"--text-file '{path}' does not exist.");
        try { return File.ReadAllText(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new GlmException($"--text-file '{path}' cannot be read: {ex.Message}", ex);
        }
    }

    /// <summary>Ids of a plain-text prompt as the model's own tokenizer frames it ([gMASK] sop prefix for ChatGLM/GLM-4).</summary>
    public static List<int> PromptIds(GlmModel model, string prompt)
    {
        var tok = RequireTokenizer(model, "a text prompt");
        var ids = new List<int>();
        if (model.Config.Layout != Glm.Engine.Modeling.GlmLayout.OriginalGlm
            && tok.SpecialTokenId("[gMASK]") is int gmask
            && (tok.SpecialTokenId("sop") ?? tok.SpecialTokenId("<sop>")) is int sop)
        {
            ids.Add(gmask);
            ids.Add(sop);
        }
        ids.AddRange(tok.Encode(prompt));
        return ids;
    }

    /// <summary>Copies the files of model folder <paramref name="source"/> other than config.json and weights (tokenizer, cards) to <paramref name="folder"/>.</summary>
    public static void CopyTokenizerFiles(string source, string folder)
    {
        if (!Directory.Exists(source)) return;
        foreach (var file in Directory.GetFiles(source))
        {
            string name = Path.GetFileName(file);
            if (name == "config.json" || name.EndsWith(".safetensors") || name.EndsWith(".bin") || name.EndsWith(".index.json")) continue;
            File.Copy(file, Path.Combine(folder, name), overwrite: true);
        }
    }

    /// <summary>Part A for continuing <paramref name="prompt"/> with an original-GLM model: [CLS] prompt [gMASK].</summary>
    public static List<int> GlmContinuationPartA(GlmModel model, string prompt)
    {
        var tok = RequireTokenizer(model, "a text prompt");
        var ids = new List<int>();
        if (tok.SpecialTokenId("[CLS]") is int cls) ids.Add(cls);
        ids.AddRange(tok.Encode(prompt));
        ids.Add(tok.SpecialTokenId("[gMASK]") ?? throw new GlmException($"{model.Source}: the tokenizer has no [gMASK]; expected GLM's special tokens."));
        return ids;
    }
}
