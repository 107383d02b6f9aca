using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Glm.Engine.Tokenization;
using Glm.Engine.Training.Data;

namespace Glm.Engine.FineTuning.GroundedQa;

/// <summary>Settings of <see cref="GroundedQaBuilder"/>.</summary>
public sealed record GroundedQaOptions
{
    /// <summary>Training conversations to build.</summary>
    public int TrainCount { get; init; } = 4000;
    /// <summary>Validation conversations to build (from the held-out split only).</summary>
    public int ValidCount { get; init; } = 300;
    /// <summary>Seed of passage order and template choice.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Longest passage in characters (a few consecutive sentences).</summary>
    public int MaxPassageChars { get; init; } = 320;
    /// <summary>Most tokens of a whole conversation (prompt with generation prefix, answer, stop token) when a counter is given.</summary>
    public int MaxTokens { get; init; } = 512;
    /// <summary>Share of the training set taken from CMRC 2018 questions (0 = none); only examples that fit are used.</summary>
    public double CmrcShare { get; init; } = 0.1;
    /// <summary>The system turn of every conversation.</summary>
    public string SystemPrompt { get; init; } = "请只根据资料回答问题：答案是资料原文中的一段，只输出答案。";

    /// <summary>Throws a <see cref="GlmException"/> naming the first invalid setting and its value.</summary>
    public void Validate()
    {
        if (TrainCount < 0) throw new GlmException($"--train {TrainCount} is invalid: expected 0 or more conversations.");
        if (ValidCount < 0) throw new GlmException($"--valid {ValidCount} is invalid: expected 0 or more conversations.");
        if (TrainCount + ValidCount == 0) throw new GlmException("--train and --valid are both 0: nothing to build.");
        if (MaxPassageChars < 40) throw new GlmException($"--max-passage-chars {MaxPassageChars} is invalid: expected at least 40.");
        if (MaxTokens < 64) throw new GlmException($"--max-tokens {MaxTokens} is invalid: expected at least 64.");
        if (CmrcShare is < 0 or > 1 || double.IsNaN(CmrcShare)) throw new GlmException($"--cmrc-share {CmrcShare} is invalid: expected a value in [0, 1].");
        if (string.IsNullOrWhiteSpace(SystemPrompt)) throw new GlmException("the system prompt is empty; expected an instruction.");
    }
}

/// <summary>One grounded-QA conversation: passage, question, answer (a span of the passage) and where it came from.</summary>
/// <param name="Passage">The passage given in the prompt.</param>
/// <param name="Question">The question.</param>
/// <param name="Answer">The reference answer; always a substring of <paramref name="Passage"/>.</param>
/// <param name="Template">cloze, who-said, how-many or cmrc.</param>
/// <param name="Source">Corpus document (path[#chapter]) or CMRC question id.</param>
public sealed record GroundedQaItem(string Passage, string Question, string Answer, string Template, string Source);

/// <summary>A built data set.</summary>
/// <param name="Train">Training conversations (training split of the corpus, plus CMRC 2018 trial questions).</param>
/// <param name="Valid">Validation conversations (held-out split of the corpus only).</param>
public sealed record GroundedQaSet(IReadOnlyList<GroundedQaItem> Train, IReadOnlyList<GroundedQaItem> Valid);

/// <summary>
/// Builds grounded question-answering conversations from a corpus: passages of consecutive sentences (at most
/// <see cref="GroundedQaOptions.MaxPassageChars"/>, at least two sentences, no passage used twice) are taken in a seeded
/// order from <see cref="CorpusSplit"/>'s training documents for TRAIN and from its held-out documents for VALID, so the two
/// never share text; each gets one question from <see cref="QaTemplates"/>. Optionally a share of TRAIN comes from CMRC 2018.
/// The result is a pure function of the corpus, the CMRC file and the options.
/// </summary>
public static class GroundedQaBuilder
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Builds the set. <paramref name="countTokens"/> (optional) measures a rendered conversation (system, user, assistant
    /// turns); examples above <see cref="GroundedQaOptions.MaxTokens"/> are skipped. Throws when a split yields no passage.
    /// </summary>
    public static GroundedQaSet Build(CorpusSplit split, GroundedQaOptions options, IReadOnlyList<CmrcQuestion>? cmrc = null,
        Func<IReadOnlyList<ChatTurn>, int>? countTokens = null)
    {
        options.Validate();
        bool Fits(GroundedQaItem item) => countTokens is null || countTokens(ToTurns(item, options.SystemPrompt)) <= options.MaxTokens;
        int cmrcWanted = cmrc is null ? 0 : (int)Math.Round(options.TrainCount * options.CmrcShare);
        var cmrcItems = new List<GroundedQaItem>();
        if (cmrcWanted > 0)
        {
            var order = Enumerable.Range(0, cmrc!.Count).ToList();
            new GlmRandom(options.Seed ^ 0xC3A5C85C97CB3127UL).Shuffle(order);
            foreach (int i in order)
            {
                if (cmrcItems.Count >= cmrcWanted) break;
                var q = cmrc[i];
                var item = new GroundedQaItem(q.Context, q.Question, q.Answer, "cmrc", q.Id);
                if (item.Passage.Length <= 2 * options.MaxPassageChars + 400 && Fits(item)) cmrcItems.Add(item);
            }
        }
        var train = FromDocuments(split.Train, options.TrainCount - cmrcItems.Count, options, new GlmRandom(options.Seed), Fits, "training");
        train.AddRange(cmrcItems);
        new GlmRandom(options.Seed + 1).Shuffle(train);
        var valid = FromDocuments(split.Validation, options.ValidCount, options, new GlmRandom(options.Seed ^ 0x9E3779B97F4A7C15UL), Fits, "held-out");
        return new GroundedQaSet(train, valid);
    }

    /// <summary>The conversation of <paramref name="item"/>: system prompt, user = 资料 + 问题, assistant = the answer.</summary>
    public static IReadOnlyList<ChatTurn> ToTurns(GroundedQaItem item, string systemPrompt) =>
    [
        new ChatTurn(ChatRole.System, systemPrompt),
        new ChatTurn(ChatRole.User, $"资料：{item.Passage}\n问题：{item.Question}"),
        new ChatTurn(ChatRole.Assistant, item.Answer),
    ];

    /// <summary>Writes one <c>{"messages":[…],"meta":{source,template}}</c> line per item (UTF-8, LF).</summary>
    public static void WriteJsonl(string path, IEnumerable<GroundedQaItem> items, string systemPrompt)
    {
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false)) { NewLine = "\n" };
        foreach (var item in items)
        {
            var line = new
            {
                messages = ToTurns(item, systemPrompt).Select(t => new { role = t.Role.ToString().ToLowerInvariant(), content = t.Content }),
                meta = new { source = item.Source, template = item.Template },
            };
            writer.WriteLine(JsonSerializer.Serialize(line, Json));
        }
    }

    /// <summary>A one-line summary: count, per-template counts and mean passage/question/answer characters.</summary>
    public static string Stats(string name, IReadOnlyList<GroundedQaItem> items)
    {
        var inv = CultureInfo.InvariantCulture;
        if (items.Count == 0) return $"{name}: 0 conversations";
        string templates = string.Join(", ", items.GroupBy(i => i.Template).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"));
        return string.Format(inv, "{0}: {1} conversations ({2}); mean chars: passage {3:F0}, question {4:F1}, answer {5:F1}",
            name, items.Count, templates, items.Average(i => i.Passage.Length), items.Average(i => i.Question.Length), items.Average(i => i.Answer.Length));
    }

    /// <summary>Passages of consecutive sentences (≥ 2 sentences, ≤ max chars), non-overlapping, in document order.</summary>
    public static IEnumerable<(string Passage, string Source)> Passages(CorpusDocument document, int maxChars)
    {
        var sentences = QaTemplates.Sentences(document.Text);
        var current = new StringBuilder();
        int count = 0;
        int minChars = Math.Min(60, maxChars / 2);
        foreach (var s in sentences)
        {
            if (current.Length + s.Length > maxChars)
            {
                if (count >= 2 && current.Length >= minChars) yield return (current.ToString(), document.Source);
                current.Clear();
                count = 0;
                if (s.Length > maxChars) continue;
            }
            current.Append(s);
            count++;
        }
        if (count >= 2 && current.Length >= minChars) yield return (current.ToString(), document.Source);
    }

    private static List<GroundedQaItem> FromDocuments(IReadOnlyList<CorpusDocument> documents, int wanted, GroundedQaOptions options,
        GlmRandom random, Func<GroundedQaItem, bool> fits, string splitName)
    {
        var items = new List<GroundedQaItem>();
        if (wanted <= 0) return items;
        var passages = documents.SelectMany(d => Passages(d, options.MaxPassageChars)).ToList();
        if (passages.Count == 0)
            throw new GlmException($"the {splitName} split of the corpus yields no passage of two or more sentences within {options.MaxPassageChars} characters; " +
                "check the corpus folder or raise --max-passage-chars.");
        random.Shuffle(passages);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (passage, source) in passages)
        {
            if (items.Count >= wanted) break;
            if (!seen.Add(passage)) continue;
            var question = QaTemplates.Pick(passage, random);
            if (question is null) continue;
            var item = new GroundedQaItem(passage, question.Question, question.Answer, question.Template, source);
            if (fits(item)) items.Add(item);
        }
        return items;
    }
}
