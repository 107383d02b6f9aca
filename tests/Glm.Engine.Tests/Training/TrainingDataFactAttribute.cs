namespace Glm.Engine.Tests.Training;

/// <summary>
/// A fact that needs a file or folder under ../shared (path relative to the shared folder); skipped, with the path it
/// looked for, when that is missing.
/// </summary>
public sealed class TrainingDataFactAttribute : FactAttribute
{
    public TrainingDataFactAttribute(string sharedRelativePath)
    {
        string path = TrainingData.SharedPath(sharedRelativePath);
        if (!File.Exists(path) && !Directory.Exists(path))
            Skip = $"shared data not found at {path} (expected ../shared next to the project root); skipping";
    }
}

/// <summary>Locates ../shared from the test assembly.</summary>
public static class TrainingData
{
    /// <summary>Folder holding GlmSK.sln, found by walking up from the test assembly directory.</summary>
    public static string ProjectRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "GlmSK.sln"))) dir = dir.Parent;
        return dir?.FullName ?? AppContext.BaseDirectory;
    }

    /// <summary>Absolute path of <paramref name="relative"/> inside ../shared.</summary>
    public static string SharedPath(string relative) =>
        Path.GetFullPath(Path.Combine(ProjectRoot(), "..", "shared", relative));

    /// <summary>A fresh temporary directory.</summary>
    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "glmsk-training-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>
/// A long-running corpus job (minutes): runs only when the environment variable GLMSK_LONG_TESTS=1 and the shared path exists.
/// </summary>
public sealed class LongTrainingFactAttribute : FactAttribute
{
    public LongTrainingFactAttribute(string sharedRelativePath)
    {
        string path = TrainingData.SharedPath(sharedRelativePath);
        if (!File.Exists(path) && !Directory.Exists(path))
            Skip = $"shared data not found at {path} (expected ../shared next to the project root); skipping";
        else if (Environment.GetEnvironmentVariable("GLMSK_LONG_TESTS") != "1")
            Skip = "long corpus job: set GLMSK_LONG_TESTS=1 to run (takes minutes)";
    }
}
