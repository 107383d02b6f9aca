namespace Glm.Connector.Tests.Support;

/// <summary>Locates files in <c>../shared</c> (next to the project root that holds GlmSK.sln).</summary>
internal static class SharedData
{
    public const string ChatGlm3Tokenizer = "data/tokenizers/chatglm3-6b/tokenizer.model";

    /// <summary>Absolute path of <paramref name="relativePath"/> under the shared folder (may not exist).</summary>
    public static string PathOf(string relativePath)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "GlmSK.sln")))
            dir = dir.Parent;
        string root = dir?.FullName ?? AppContext.BaseDirectory;
        return Path.GetFullPath(Path.Combine(root, "..", "shared", relativePath));
    }
}

/// <summary>A fact that is skipped (not passed) when the shared data file it needs is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string relativePath = SharedData.ChatGlm3Tokenizer)
    {
        string path = SharedData.PathOf(relativePath);
        if (!File.Exists(path))
            Skip = $"shared data not found at {path} (expected ../shared next to the project root); skipping";
    }
}
