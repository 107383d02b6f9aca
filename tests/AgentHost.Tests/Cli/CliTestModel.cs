using Glm.Engine;
using Glm.Engine.Modeling;

namespace AgentHost.Tests.Cli;

/// <summary>Locates ../shared and builds small model folders for CLI tests.</summary>
internal static class CliTestModel
{
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "GlmSK.sln"))) return dir.FullName;
            throw new InvalidOperationException("GlmSK.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string SharedPath(string relative) => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", relative));

    /// <summary>Runs the glm command line in-process; returns the exit code and what went to stdout and stderr.</summary>
    public static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await AgentHost.Cli.GlmCommandLine.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A tiny random model with the real ChatGLM3 tokenizer, written to <paramref name="dir"/>.</summary>
    public static string ChatGlm3Folder(string dir)
    {
        var cfg = ModelPresets.Get("chatglm3-tiny") with { VocabSize = 65024, EosTokenIds = new[] { 2 } };
        using var model = GlmModel.CreateRandom(cfg, new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 7 });
        model.Save(dir);
        File.Copy(SharedPath("data/tokenizers/chatglm3-6b/tokenizer.model"), Path.Combine(dir, "tokenizer.model"));
        return dir;
    }
}

/// <summary>A fact that is skipped (with the path it looked for) when a ../shared file is missing.</summary>
public sealed class SharedFileFactAttribute : FactAttribute
{
    public SharedFileFactAttribute(string relativePath)
    {
        string path = CliTestModel.SharedPath(relativePath);
        if (!File.Exists(path))
            Skip = $"shared data not found at {path} (expected ../shared next to the project root); skipping";
    }
}
