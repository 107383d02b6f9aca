using System.Text.Json;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Glm.Engine.Training;

/// <summary>Everything besides weights and optimizer moments that an exact resume needs.</summary>
internal sealed class TrainerState
{
    public int Step { get; set; }
    public long DataCursor { get; set; }
    public string CollatorState { get; set; } = "";
    public string TorchRngState { get; set; } = "";
    public long Seed { get; set; }
    public List<double> Losses { get; set; } = new();
    public List<EvaluationResult> Evaluations { get; set; } = new();
}

/// <summary>
/// The resumable checkpoint folder: <c>config.json</c> + <c>model.safetensors</c> (fp32 master weights), <c>optimizer.bin</c>
/// (TorchSharp AdamW state: step counts and both moments), <c>trainer_state.json</c> (step, data cursor, collator RNG,
/// torch RNG, loss history). Written into a sibling temporary folder and swapped in with directory renames, so a crash
/// leaves either the old or the new checkpoint complete.
/// </summary>
internal static class TrainingCheckpoint
{
    public const string StateFile = "trainer_state.json";
    public const string OptimizerFile = "optimizer.bin";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void Save(string folder, GlmModel model, OptimizerHelper optimizer, TrainerState state) =>
        WriteAtomically(folder, StateFile, tmp => model.Save(tmp), optimizer, rng =>
        {
            state.TorchRngState = rng;
            return JsonSerializer.Serialize(state, Json);
        });

    /// <summary>
    /// Writes a checkpoint folder atomically: a temporary folder gets the weights (<paramref name="writeWeights"/>), the optimizer
    /// state and the JSON state (built with the current torch RNG state), then replaces <paramref name="folder"/> by renames.
    /// A crash between the renames leaves the previous checkpoint as "folder.old", which <see cref="Find(string)"/> picks up.
    /// </summary>
    internal static void WriteAtomically(string folder, string stateFile, Action<string> writeWeights, OptimizerHelper optimizer,
        Func<string, string> stateJsonWithRng)
    {
        string tmp = folder + ".tmp", old = folder + ".old";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        writeWeights(tmp);
        optimizer.save_state_dict(Path.Combine(tmp, OptimizerFile));
        string rng;
        using (var state = get_rng_state()) rng = Convert.ToBase64String(state.bytes.ToArray());
        File.WriteAllText(Path.Combine(tmp, stateFile), stateJsonWithRng(rng));
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(folder)) Directory.Move(folder, old);
        Directory.Move(tmp, folder);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    /// <summary>The complete checkpoint under <paramref name="folder"/> (or its ".old" twin after an interrupted swap), or null.</summary>
    public static string? Find(string folder) => Find(folder, StateFile);

    internal static string? Find(string folder, string stateFile)
    {
        foreach (var candidate in new[] { folder, folder + ".old" })
            if (File.Exists(Path.Combine(candidate, stateFile)) && File.Exists(Path.Combine(candidate, OptimizerFile))) return candidate;
        return null;
    }

    public static TrainerState LoadState(string folder)
    {
        string path = Path.Combine(folder, StateFile);
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path))
                   ?? throw new GlmException($"{path}: empty trainer state; expected a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new GlmException($"{path}: malformed trainer state ({ex.Message}).", ex);
        }
    }

    public static void RestoreTorchRng(TrainerState state)
    {
        if (state.TorchRngState.Length == 0) return;
        var bytes = Convert.FromBase64String(state.TorchRngState);
        using var t = tensor(bytes, dtype: TorchSharp.torch.ScalarType.Byte);
        set_rng_state(t);
    }
}
