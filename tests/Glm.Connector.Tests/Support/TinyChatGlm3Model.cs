using Glm.Engine;
using Glm.Engine.Modeling;

namespace Glm.Connector.Tests.Support;

/// <summary>
/// A model folder with random tiny weights (chatglm3-tiny shape, ChatGLM3-sized vocab) and the real chatglm3-6b tokenizer,
/// written once per test run to a temp folder. Tests that use it must be [SharedDataFact].
/// </summary>
internal static class TinyChatGlm3Model
{
    private static readonly Lazy<string> FolderLazy = new(Create);

    /// <summary>The model folder (config, weights, tokenizer.model).</summary>
    public static string Folder => FolderLazy.Value;

    /// <summary>The folder's model, shared through <see cref="GlmModelCache"/>.</summary>
    public static GlmModel Model => GlmModelCache.GetOrLoad(Folder);

    private static string Create()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("glmconn").FullName, "chatglm3-tiny");
        var cfg = ModelPresets.Get("chatglm3-tiny") with { VocabSize = 65024, EosTokenIds = [2] };
        using (var model = GlmModel.CreateRandom(cfg, new GlmLoadOptions { Seed = 7 })) model.Save(dir);
        File.Copy(SharedData.PathOf(SharedData.ChatGlm3Tokenizer), Path.Combine(dir, "tokenizer.model"));
        return dir;
    }
}
