using System.Text.Json;

namespace Glm.Engine.FineTuning.GroundedQa;

/// <summary>One CMRC 2018 question with its context and first reference answer.</summary>
/// <param name="Id">Question id (e.g. TRIAL_800_QUERY_0).</param>
/// <param name="Context">The paragraph.</param>
/// <param name="Question">The question.</param>
/// <param name="Answer">The first answer text (trimmed).</param>
public sealed record CmrcQuestion(string Id, string Context, string Question, string Answer);

/// <summary>
/// Reads CMRC 2018 SQuAD-style JSON (<c>data[].paragraphs[].{context, qas[].{id, question, answers[].text}}</c>).
/// Offsets (<c>answer_start</c>) are ignored: they count code points and are sometimes wrong (see the data's PROVENANCE.md);
/// questions whose first answer text does not occur in the context are skipped. CMRC 2018 is CC BY-SA 4.0 (Cui et al.,
/// EMNLP-IJCNLP 2019): derived copies must keep that licence.
/// </summary>
public static class CmrcReader
{
    /// <summary>All usable questions of <paramref name="path"/>; throws naming the file and JSON path on a malformed file.</summary>
    public static List<CmrcQuestion> Load(string path)
    {
        if (!File.Exists(path)) throw new GlmException($"{path}: CMRC 2018 file not found; expected SQuAD-style JSON such as ../shared/data/eval/cmrc2018/cmrc2018_trial.json.");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException ex) { throw new GlmException($"{path}: invalid JSON ({ex.Message}).", ex); }
        using (doc)
        {
            var result = new List<CmrcQuestion>();
            if (!doc.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
                throw new GlmException($"{path}: expected a top-level \"data\" array (SQuAD layout).");
            int a = 0;
            foreach (var article in data.EnumerateArray())
            {
                int p = 0;
                foreach (var paragraph in GetArray(article, "paragraphs", path, $"data[{a}]"))
                {
                    string where = $"data[{a}].paragraphs[{p++}]";
                    string context = GetString(paragraph, "context", path, where);
                    int q = 0;
                    foreach (var qa in GetArray(paragraph, "qas", path, where))
                    {
                        string at = $"{where}.qas[{q++}]";
                        string question = GetString(qa, "question", path, at).Trim();
                        string id = qa.TryGetProperty("id", out var idEl) && idEl.ValueKind == JsonValueKind.String ? idEl.GetString()! : at;
                        var answers = GetArray(qa, "answers", path, at).ToList();
                        if (answers.Count == 0) continue;
                        string answer = GetString(answers[0], "text", path, $"{at}.answers[0]").Trim();
                        if (answer.Length == 0 || question.Length == 0 || !context.Contains(answer, StringComparison.Ordinal)) continue;
                        result.Add(new CmrcQuestion(id, context.Trim(), question, answer));
                    }
                }
                a++;
            }
            return result;
        }
    }

    private static IEnumerable<JsonElement> GetArray(JsonElement parent, string name, string path, string where) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var el) && el.ValueKind == JsonValueKind.Array
            ? el.EnumerateArray()
            : throw new GlmException($"{path}: {where}.{name} is missing or not an array.");

    private static string GetString(JsonElement parent, string name, string path, string where) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var el) && el.ValueKind == JsonValueKind.String
            ? el.GetString()!
            : throw new GlmException($"{path}: {where}.{name} is missing or not a string.");
}
