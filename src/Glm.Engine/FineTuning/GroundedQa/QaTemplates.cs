using System.Text;
using System.Text.RegularExpressions;
using Glm.Engine.Training.Data;

namespace Glm.Engine.FineTuning.GroundedQa;

/// <summary>A question about a passage whose answer is a span of it.</summary>
/// <param name="Question">The question text.</param>
/// <param name="Answer">The answer (a substring of the passage).</param>
/// <param name="Template">Template name: cloze, who-said, how-many, or cmrc.</param>
public sealed record QaQuestion(string Question, string Answer, string Template);

/// <summary>
/// Deterministic question templates over a passage; every answer is a substring of the passage that occurs in it exactly
/// once (so the question has one right span).
/// <list type="bullet">
/// <item><b>cloze</b>: a clause (2–10 letters between punctuation) is blanked: <c>资料中“{≤10 chars before}____{≤6 chars after}”处是什么？</c> → the clause.</item>
/// <item><b>who-said</b>: <c>NAME(冷笑|回答|下诏|笑|说|问|答|劝|…)?(道|说|曰)：“?QUOTE</c> (quotation marks optional: the modern
/// translations write <c>孙权说： …</c>) where NAME is the whole clause before the verb (after dropping trailing 回/便/又/也/忙/…),
/// 2–4 Han characters, not starting with a pronoun, function word or adverb, not ending in 地/然/声/着/了/…, without 说/道/所/听:
/// <c>谁说了“{first ≤12 chars of QUOTE}”？</c> → NAME. A heuristic: NAME may occasionally be a title or description.</item>
/// <item><b>how-many</b>: a Chinese or Arabic numeral run followed by a classifier (个 人 匹 只 年 天 里 斤 次 …; not 日/月, mostly dates) inside a clause with
/// ≥ 2 characters before it: <c>{clause before}多少{classifier}{≤6 chars after}？</c> → numeral + classifier. Single 一/万/千/百 and
/// ordinals (第…) and runs continuing a number (一百单八) are skipped.</item>
/// </list>
/// </summary>
public static class QaTemplates
{
    private const string Delimiters = "，。！？；：、,.!?;:“”‘’「」『』（）()《》…—\u3000 \t\n";
    private const string SentenceEnders = "。！？!?…";
    private const string Closers = "”’」』)）";
    private static readonly Regex Speech = new(@"(\p{IsCJKUnifiedIdeographs}{2,8}?)(?:冷笑|回答|下诏|上书|上奏|笑|说|问|叫|答|喝|骂|叹|应|劝|哭|怒|奏|对)?(?:道|说|曰)[:：]\s*“?([^”。！？\n]{2,})", RegexOptions.CultureInvariant);
    private static readonly Regex Quantity = new(@"(?<![第单零一二两三四五六七八九十百千万亿0-9０-９])([零一二两三四五六七八九十百千万亿0-9０-９]+(?:余|多)?)([个人匹员只年天里斤次本件张头骑名位座间条艘石斗丈尺寸钱文卷首篇岁户家亩顷封箭枪合回]|两银)",
        RegexOptions.CultureInvariant);
    private const string SpeakerTrailing = "回便又也忙就却都亦方才只乃遂因复即再连大";
    private const string SpeakerBadEnd = "地然声步笑着了来去过";
    private const string SpeakerBadStart = "自从拍而闻分吩听回叫忽正笑说问答仍慢高老冷抢这那我你他她它们此其众便又也只因且却就都但一不是有若如今此彼吾汝尔某谁何";

    /// <summary>Splits text into sentences ending at 。！？!?… (closing quotes stay with their sentence); the remainder is the last sentence.</summary>
    public static List<string> Sentences(string text)
    {
        var result = new List<string>();
        var current = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\n' || c == '\r') { Flush(); continue; }
            current.Append(c);
            if (SentenceEnders.Contains(c))
            {
                while (i + 1 < text.Length && (SentenceEnders.Contains(text[i + 1]) || Closers.Contains(text[i + 1]))) current.Append(text[++i]);
                Flush();
            }
        }
        Flush();
        return result;

        void Flush()
        {
            string s = current.ToString().Trim(' ', '\t', '\u3000');
            if (s.Length > 0) result.Add(s);
            current.Clear();
        }
    }

    /// <summary>Every candidate question of every template for <paramref name="passage"/>.</summary>
    public static IReadOnlyList<QaQuestion> Candidates(string passage) => [.. Cloze(passage), .. WhoSaid(passage), .. HowMany(passage)];

    /// <summary>
    /// Picks one question deterministically from <paramref name="random"/>: who-said (when available) with probability 0.35,
    /// how-many with 0.25, else cloze; falls back to cloze, then to any template. Null when the passage offers none.
    /// </summary>
    public static QaQuestion? Pick(string passage, GlmRandom random)
    {
        double roll = random.NextDouble();
        var all = Candidates(passage);
        if (all.Count == 0) return null;
        string preferred = roll < 0.35 ? "who-said" : roll < 0.60 ? "how-many" : "cloze";
        var pool = all.Where(q => q.Template == preferred).ToList();
        if (pool.Count == 0) pool = all.Where(q => q.Template == "cloze").ToList();
        if (pool.Count == 0) pool = all.ToList();
        return pool[random.NextInt(pool.Count)];
    }

    /// <summary>Cloze questions: each clause of 2–10 letters/digits that occurs once in the passage is blanked.</summary>
    public static IEnumerable<QaQuestion> Cloze(string passage)
    {
        int start = 0;
        for (int i = 0; i <= passage.Length; i++)
        {
            if (i < passage.Length && !Delimiters.Contains(passage[i])) continue;
            int length = i - start;
            if (length is >= 2 and <= 10)
            {
                string clause = passage.Substring(start, length);
                if (clause.All(char.IsLetterOrDigit) && Occurrences(passage, clause) == 1)
                {
                    string left = Context(passage[Math.Max(0, start - 10)..start]);
                    string right = Context(passage[i..Math.Min(passage.Length, i + 6)]);
                    if (left.Length + right.Length >= 4)
                        yield return new QaQuestion($"资料中“{left}____{right}”处是什么？", clause, "cloze");
                }
            }
            start = i + 1;
        }
    }

    /// <summary>Who-said questions from <c>NAME道：“…”</c> patterns (see the class remarks).</summary>
    public static IEnumerable<QaQuestion> WhoSaid(string passage)
    {
        foreach (Match m in Speech.Matches(passage))
        {
            // NAME must be the whole clause: preceded by the passage start or a delimiter.
            int at = m.Groups[1].Index;
            if (at > 0 && !Delimiters.Contains(passage[at - 1])) continue;
            string name = m.Groups[1].Value.TrimEnd(SpeakerTrailing.ToCharArray());
            if (name.Length is < 2 or > 4 || SpeakerBadStart.Contains(name[0]) || SpeakerBadEnd.Contains(name[^1])
                || name.Any(c => "说道曰问付咐所听".Contains(c))) continue;
            string quote = m.Groups[2].Value;
            string shown = quote.Length <= 12 ? quote : quote[..12] + "……";
            if (Context(shown).Length < 2 || shown.Contains(name, StringComparison.Ordinal)) continue;
            yield return new QaQuestion($"谁说了“{Context(shown)}”？", name, "who-said");
        }
    }

    /// <summary>How-many questions from numeral + classifier phrases (see the class remarks).</summary>
    public static IEnumerable<QaQuestion> HowMany(string passage)
    {
        foreach (Match m in Quantity.Matches(passage))
        {
            string number = m.Groups[1].Value, classifier = m.Groups[2].Value;
            if (number.Length == 1 && "一万千百亿".Contains(number[0])) continue;
            string answer = number + classifier;
            if (Occurrences(passage, answer) != 1) continue;
            int clauseStart = m.Index;
            while (clauseStart > 0 && !Delimiters.Contains(passage[clauseStart - 1])) clauseStart--;
            int after = m.Index + m.Length, clauseEnd = after;
            while (clauseEnd < passage.Length && !Delimiters.Contains(passage[clauseEnd]) && clauseEnd - after < 6) clauseEnd++;
            string left = passage[clauseStart..m.Index];
            if (left.Length < 2) continue;
            if (left.Length > 12) left = left[^12..];
            yield return new QaQuestion($"{left}多少{classifier}{passage[after..clauseEnd]}？", answer, "how-many");
        }
    }

    /// <summary>Occurrences (possibly overlapping) of <paramref name="value"/> in <paramref name="text"/>.</summary>
    public static int Occurrences(string text, string value)
    {
        if (value.Length == 0) return 0;
        int count = 0;
        for (int i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    // Quotation marks inside a quoted question context would nest; drop them and line breaks.
    private static string Context(string s) => new(s.Where(c => c is not ('“' or '”' or '"' or '\n' or '\r')).ToArray());
}
