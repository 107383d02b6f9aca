using System.Text.Json;
using Glm.Engine.Tokenization;

namespace Glm.Engine.FineTuning;

/// <summary>One chat conversation from a JSONL file, with where it came from.</summary>
/// <param name="Turns">The turns in order.</param>
/// <param name="File">Source file.</param>
/// <param name="Line">1-based line number.</param>
public sealed record ChatSftExample(IReadOnlyList<ChatTurn> Turns, string File, int Line);

/// <summary>A tokenized chat example: ids and, per position, whether the token is a training target.</summary>
/// <param name="Ids">Prompt ids rendered by the model's chat format, plus the closing stop token.</param>
/// <param name="Targets">True for assistant-reply tokens and the stop token right after each reply.</param>
public sealed record ChatSftSample(int[] Ids, bool[] Targets)
{
    /// <summary>Base-GLM blank samples (<see cref="GlmBlankChatSft"/>): Part A length (the sop index); -1 for causal samples.</summary>
    public int PartALength { get; init; } = -1;
    /// <summary>Base-GLM blank samples: index of [gMASK] in Part A (the position id of Part B).</summary>
    public int MaskPosition { get; init; }
}

/// <summary>
/// Reads and validates chat SFT data: JSONL with one <c>{"messages":[{"role":…,"content":…}]}</c> per line. Roles:
/// system, user, assistant, observation (alias tool); an optional <c>metadata</c> (or <c>name</c>) string becomes the
/// turn's role-line metadata (e.g. a called tool's name). Every problem in the file (bad JSON, missing messages, unknown
/// role, empty content, no assistant turn) is collected and reported together by file and line before training starts.
/// </summary>
public static class ChatSftData
{
    /// <summary>Reads every conversation of <paramref name="path"/>; throws one <see cref="GlmException"/> listing all problems.</summary>
    public static IReadOnlyList<ChatSftExample> Load(string path)
    {
        if (!System.IO.File.Exists(path)) throw new GlmException($"{path}: chat data file not found; expected JSONL with {{\"messages\":[...]}} per line.");
        var examples = new List<ChatSftExample>();
        var errors = new List<string>();
        int lineNo = 0;
        foreach (var raw in System.IO.File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            var turns = ParseLine(raw, path, lineNo, errors);
            if (turns is not null) examples.Add(new ChatSftExample(turns, path, lineNo));
        }
        if (errors.Count > 0)
            throw new GlmException($"{path}: {errors.Count} malformed line(s):\n" + string.Join("\n", errors.Take(20)) + (errors.Count > 20 ? $"\n… and {errors.Count - 20} more" : ""));
        if (examples.Count == 0) throw new GlmException($"{path}: no conversations; expected at least one JSONL line.");
        return examples;
    }

    private static List<ChatTurn>? ParseLine(string raw, string path, int line, List<string> errors)
    {
        string at = $"{path}:{line}";
        JsonDocument doc;
        try { doc = JsonDocument.Parse(raw); }
        catch (JsonException ex) { errors.Add($"{at}: invalid JSON ({ex.Message})"); return null; }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
            {
                errors.Add($"{at}: expected an object with a \"messages\" array");
                return null;
            }
            var turns = new List<ChatTurn>();
            int before = errors.Count, index = 0;
            foreach (var m in messages.EnumerateArray())
            {
                string where = $"{at}: messages[{index++}]";
                if (m.ValueKind != JsonValueKind.Object) { errors.Add($"{where}: expected an object with role and content"); continue; }
                string? role = m.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                string? content = m.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                string? metadata = m.TryGetProperty("metadata", out var md) && md.ValueKind == JsonValueKind.String ? md.GetString()
                    : m.TryGetProperty("name", out var nm) && nm.ValueKind == JsonValueKind.String ? nm.GetString() : null;
                ChatRole? parsed = role switch
                {
                    "system" => ChatRole.System,
                    "user" => ChatRole.User,
                    "assistant" => ChatRole.Assistant,
                    "observation" or "tool" => ChatRole.Observation,
                    _ => null,
                };
                if (parsed is null) { errors.Add($"{where}: role '{role ?? "(missing)"}' is unknown; expected system, user, assistant or observation/tool"); continue; }
                if (string.IsNullOrWhiteSpace(content)) { errors.Add($"{where}: {role} content is empty or missing"); continue; }
                turns.Add(new ChatTurn(parsed.Value, content, string.IsNullOrEmpty(metadata) ? null : metadata));
            }
            if (errors.Count > before) return null;
            if (!turns.Any(t => t.Role == ChatRole.Assistant)) { errors.Add($"{at}: no assistant turn; expected at least one reply to learn"); return null; }
            return turns;
        }
    }

    /// <summary>
    /// Renders <paramref name="example"/> with <paramref name="format"/> and marks the targets: for each assistant turn k the
    /// tokens between BuildPrompt(turns[..k], generation prompt) and BuildPrompt(turns[..k+1]) — the reply as the model would
    /// generate it — plus the token that follows (the next role token, or <paramref name="stopId"/> appended after a final
    /// reply). Throws when the format does not render conversations as prefix-stable token sequences.
    /// </summary>
    public static ChatSftSample Encode(IChatFormat format, ChatSftExample example, int stopId)
    {
        if (format is GlmBlankChatFormat blank) return GlmBlankChatSft.Encode(blank, example); // base GLM: reply in the [gMASK] blank, ends at eop
        var turns = example.Turns;
        var full = format.BuildPrompt(turns, null, addGenerationPrompt: false).ToList();
        if (turns[^1].Role == ChatRole.Assistant) full.Add(stopId);
        var targets = new bool[full.Count];
        for (int k = 0; k < turns.Count; k++)
        {
            if (turns[k].Role != ChatRole.Assistant) continue;
            var prefix = format.BuildPrompt(turns.Take(k).ToList(), null, addGenerationPrompt: true);
            var upto = format.BuildPrompt(turns.Take(k + 1).ToList(), null, addGenerationPrompt: false);
            if (!IsPrefix(prefix, upto) || !IsPrefix(upto, full))
                throw new GlmException($"{example.File}:{example.Line}: the chat format renders turn {k} differently inside the whole conversation; " +
                    "expected each prefix of the conversation to be a token prefix of the whole.");
            if (upto.Count == prefix.Count)
                throw new GlmException($"{example.File}:{example.Line}: assistant turn {k} renders to no tokens; expected a non-empty reply.");
            for (int i = prefix.Count; i < upto.Count; i++) targets[i] = true;
            if (upto.Count < full.Count) targets[upto.Count] = true;
        }
        return new ChatSftSample(full.ToArray(), targets);
    }

    private static bool IsPrefix(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        if (a.Count > b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (a[i] != b[i]) return false;
        return true;
    }
}
