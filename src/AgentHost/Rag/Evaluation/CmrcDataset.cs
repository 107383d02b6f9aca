using System.Text.Json;
using Glm.Engine;

namespace AgentHost.Rag.Evaluation;

/// <summary>One question with its reference answers (texts only: CMRC offsets are unreliable, see PROVENANCE.md).</summary>
public sealed record EvalQuestion(string Id, string Question, IReadOnlyList<string> Answers);

/// <summary>One context paragraph and its questions.</summary>
public sealed record EvalContext(string Id, string Title, string Text, IReadOnlyList<EvalQuestion> Questions);

/// <summary>A SQuAD-v1.1-layout reading-comprehension set (CMRC 2018).</summary>
public sealed record EvalDataset(string Path, IReadOnlyList<EvalContext> Contexts)
{
    /// <summary>All questions in file order with their context.</summary>
    public IEnumerable<(EvalContext Context, EvalQuestion Question)> Questions =>
        Contexts.SelectMany(c => c.Questions.Select(q => (c, q)));

    /// <summary>Reads the file; errors name the file and the JSON path of the bad field.</summary>
    public static EvalDataset Load(string path)
    {
        if (!File.Exists(path)) throw new GlmException($"--dataset '{path}' does not exist");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new GlmException($"{path}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var contexts = new List<EvalContext>();
            var data = Field(doc.RootElement, "data", JsonValueKind.Array, path, "$");
            int a = 0;
            foreach (var article in data.EnumerateArray())
            {
                string ap = $"$.data[{a++}]";
                string title = article.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
                int p = 0;
                foreach (var paragraph in Field(article, "paragraphs", JsonValueKind.Array, path, ap).EnumerateArray())
                {
                    string pp = $"{ap}.paragraphs[{p++}]";
                    string id = Field(paragraph, "id", JsonValueKind.String, path, pp).GetString()!;
                    string context = Field(paragraph, "context", JsonValueKind.String, path, pp).GetString()!;
                    var questions = new List<EvalQuestion>();
                    int q = 0;
                    foreach (var qa in Field(paragraph, "qas", JsonValueKind.Array, path, pp).EnumerateArray())
                    {
                        string qp = $"{pp}.qas[{q++}]";
                        string qid = Field(qa, "id", JsonValueKind.String, path, qp).GetString()!;
                        string text = Field(qa, "question", JsonValueKind.String, path, qp).GetString()!;
                        var answers = Field(qa, "answers", JsonValueKind.Array, path, qp).EnumerateArray()
                            .Select((ans, i) => Field(ans, "text", JsonValueKind.String, path, $"{qp}.answers[{i}]").GetString()!)
                            .Where(s => s.Trim().Length > 0).ToList();
                        if (answers.Count == 0) throw new GlmException($"{path}: {qp}.answers has no non-empty answer text");
                        questions.Add(new EvalQuestion(qid, text, answers));
                    }
                    contexts.Add(new EvalContext(id, title, context, questions));
                }
            }
            if (contexts.Count == 0) throw new GlmException($"{path}: $.data holds no paragraphs");
            return new EvalDataset(path, contexts);
        }
    }

    private static JsonElement Field(JsonElement parent, string name, JsonValueKind kind, string path, string where)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out var value))
            throw new GlmException($"{path}: {where}.{name} is missing; expected the SQuAD v1.1 layout (data → paragraphs → qas → answers)");
        if (value.ValueKind != kind)
            throw new GlmException($"{path}: {where}.{name} is {value.ValueKind}, expected {kind}");
        return value;
    }
}
