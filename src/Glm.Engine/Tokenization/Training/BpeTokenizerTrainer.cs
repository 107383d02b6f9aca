using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Glm.Engine.Training.Data;

namespace Glm.Engine.Tokenization.Training;

/// <summary>A trained vocabulary: byte strings by rank plus special tokens appended after the ranks.</summary>
/// <param name="Ranks">Token bytes by rank (id); ranks 0..255 are the single bytes, so every input is encodable.</param>
/// <param name="SpecialTokens">Special token strings; the id of <c>SpecialTokens[i]</c> is <c>Ranks.Count + i</c>.</param>
/// <param name="Pattern">Pre-tokenizer regex.</param>
public sealed record BpeVocabulary(IReadOnlyList<byte[]> Ranks, IReadOnlyList<string> SpecialTokens, string Pattern)
{
    /// <summary>Ranks plus special tokens.</summary>
    public int VocabSize => Ranks.Count + SpecialTokens.Count;
}

/// <summary>
/// Trains a byte-level BPE tokenizer (tiktoken style, no unknown tokens) on Chinese text and saves it as
/// <c>tokenizer.tiktoken</c> (lines <c>&lt;base64 bytes&gt; &lt;rank&gt;</c>) + <c>tokenizer_config.json</c>
/// (<c>pattern</c>, <c>rank_count</c>, <c>special_tokens</c> name → id), loadable by <see cref="OwnBpeTokenizer"/> and by
/// Microsoft.ML.Tokenizers' <c>TiktokenTokenizer.Create</c>.
/// </summary>
public static class BpeTokenizerTrainer
{
    /// <summary>File name of the rank file.</summary>
    public const string RankFileName = "tokenizer.tiktoken";
    /// <summary>File name of the JSON config (pattern, special tokens).</summary>
    public const string ConfigFileName = "tokenizer_config.json";

    /// <summary>GLM control tokens then chat roles, appended after the ranks in this order.</summary>
    public static IReadOnlyList<string> SpecialTokenNames { get; } =
    [
        "[MASK]", "[sMASK]", "[gMASK]", "<sop>", "<eop>", "<|endoftext|>", "[CLS]", "[SEP]", "<pad>",
        "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
    ];

    /// <summary>Trains on in-memory texts.</summary>
    public static BpeVocabulary Train(IEnumerable<string> texts, BpeTrainingOptions options, IProgress<BpeTrainingProgress>? progress = null)
    {
        options.Validate(SpecialTokenNames.Count);
        int targetRanks = options.VocabSize - SpecialTokenNames.Count;
        progress?.Report(new BpeTrainingProgress("pre-tokenize", 0, targetRanks - 256, 0));
        var regex = new Regex(options.Pattern, RegexOptions.Compiled);
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = wordCounts.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var text in texts)
        {
            foreach (var match in regex.EnumerateMatches(text))
            {
                var piece = text.AsSpan(match.Index, match.Length);
                ref long slot = ref CollectionsMarshal.GetValueRefOrAddDefault(lookup, piece, out _);
                slot++;
            }
        }
        // Ordinal order makes the result independent of dictionary iteration order.
        var words = wordCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Encoding.UTF8.GetBytes(kv.Key), kv.Value)).ToList();
        wordCounts.Clear();
        int distinct = words.Count;
        var learner = new BpeMergeLearner(words);
        words.Clear();
        progress?.Report(new BpeTrainingProgress("merge", 0, targetRanks - 256, 0, distinct));
        learner.Learn(targetRanks, options.MinPairFrequency,
            (merges, count) => progress?.Report(new BpeTrainingProgress("merge", merges, targetRanks - 256, count, distinct)));
        progress?.Report(new BpeTrainingProgress("done", learner.Tokens.Count - 256, targetRanks - 256, 0));
        return new BpeVocabulary(learner.Tokens.ToList(), SpecialTokenNames, options.Pattern);
    }

    /// <summary>
    /// Reads UTF-8 text files, drops each file's held-out tail by the <see cref="CorpusSplit"/> rule
    /// (<see cref="BpeTrainingOptions.HoldOutFraction"/>), trains, and saves the tokenizer into <paramref name="outDir"/>.
    /// </summary>
    /// <exception cref="GlmException">A file is missing, or no training text remains.</exception>
    public static BpeVocabulary TrainFromFiles(IEnumerable<string> files, BpeTrainingOptions options, string outDir,
        IProgress<BpeTrainingProgress>? progress = null)
    {
        var texts = new List<string>();
        foreach (var file in files)
        {
            if (!File.Exists(file)) throw new GlmException($"Tokenizer training file '{file}' does not exist.");
            string text = File.ReadAllText(file, Encoding.UTF8).Replace("\r\n", "\n");
            bool wrapped = options.HardWrappedFolders.Contains(Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(file))) ?? "");
            if (options.HoldOutFraction > 0)
                texts.AddRange(CorpusSplit.SplitFile(Path.GetFileName(file), text, options.HoldOutFraction, wrapped).Train.Select(d => d.Text));
            else texts.Add(wrapped ? CorpusSplit.JoinWrappedLines(text) : text);
        }
        if (texts.Sum(t => (long)t.Length) == 0) throw new GlmException("Tokenizer training got no text: every file is empty.");
        var vocabulary = Train(Thin(texts, options.MaxTrainingChars), options, progress);
        Save(vocabulary, outDir);
        return vocabulary;
    }

    /// <summary>Writes <see cref="RankFileName"/> and <see cref="ConfigFileName"/> into <paramref name="outDir"/> (created if needed).</summary>
    public static void Save(BpeVocabulary vocabulary, string outDir)
    {
        Directory.CreateDirectory(outDir);
        using (var writer = new StreamWriter(Path.Combine(outDir, RankFileName), false, new UTF8Encoding(false)) { NewLine = "\n" })
            for (int rank = 0; rank < vocabulary.Ranks.Count; rank++)
                writer.WriteLine($"{Convert.ToBase64String(vocabulary.Ranks[rank])} {rank}");
        var config = new Dictionary<string, object>
        {
            ["tokenizer_class"] = "GlmSkByteLevelBpe",
            ["pattern"] = vocabulary.Pattern,
            ["rank_count"] = vocabulary.Ranks.Count,
            ["special_tokens"] = vocabulary.SpecialTokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => vocabulary.Ranks.Count + x.i),
        };
        File.WriteAllText(Path.Combine(outDir, ConfigFileName),
            JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }), new UTF8Encoding(false));
    }

    /// <summary>Keeps an even spread of whole lines totalling about <paramref name="maxChars"/> (0 = everything).</summary>
    private static IEnumerable<string> Thin(List<string> texts, long maxChars)
    {
        long total = texts.Sum(t => (long)t.Length);
        if (maxChars <= 0 || total <= maxChars) return texts;
        double keep = (double)maxChars / total, credit = 0;
        var kept = new List<string>();
        foreach (var text in texts)
        {
            var sb = new StringBuilder();
            foreach (var line in text.Split('\n'))
            {
                credit += keep * (line.Length + 1);
                if (credit < line.Length + 1) continue;
                credit -= line.Length + 1;
                sb.Append(line).Append('\n');
            }
            kept.Add(sb.ToString());
        }
        return kept;
    }
}
