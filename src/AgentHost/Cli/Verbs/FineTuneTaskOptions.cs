using System.CommandLine;
using Glm.Engine;
using Glm.Engine.FineTuning;

namespace AgentHost.Cli.Verbs;

/// <summary>The fine-tuning task kinds.</summary>
internal enum FineTuneTaskKind { Chat, Cloze, Seq2Seq }

/// <summary>Options shared by <c>glm finetune</c> and <c>glm eval</c>: the task kind, cloze pattern and verbalizer, seq2seq fields and lengths.</summary>
internal sealed class FineTuneTaskOptions
{
    public Option<string> Task { get; } = new("--task") { Description = "chat (SFT on JSONL messages), cloze (PET classification, original GLM) or seq2seq (source → target in the [gMASK] blank, original GLM).", DefaultValueFactory = _ => "chat" };
    public Option<string?> Pattern { get; } = new("--pattern") { Description = "Cloze pattern with {text} and one [MASK], e.g. \"{text}。这篇论文属于[MASK]学科。\"." };
    public Option<string?> Verbalizer { get; } = new("--verbalizer") { Description = "Cloze labels: label=words pairs separated by ';' (e.g. \"工学=工学;医学=医学\"), or a bare label list (words = label)." };

    public Seq2SeqOptions Seq2Seq { get; } = new();

    public void AddTo(Command command)
    {
        command.Add(Task);
        command.Add(Pattern);
        command.Add(Verbalizer);
        Seq2Seq.AddTo(command);
    }

    public FineTuneTaskKind Kind(ParseResult parse) => parse.GetValue(Task) switch
    {
        "chat" => FineTuneTaskKind.Chat,
        "cloze" => FineTuneTaskKind.Cloze,
        "seq2seq" => FineTuneTaskKind.Seq2Seq,
        var other => throw new GlmException($"--task '{other}': expected chat, cloze or seq2seq."),
    };

    public ClozeTask ClozeTask(ParseResult parse)
    {
        string pattern = parse.GetValue(Pattern) ?? throw new GlmException("--task cloze needs --pattern (with {text} and [MASK]).");
        string verbalizer = parse.GetValue(Verbalizer) ?? throw new GlmException("--task cloze needs --verbalizer (label=words;...).");
        var pairs = verbalizer.Split(';', ',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p =>
        {
            int eq = p.IndexOf('=');
            return eq < 0 ? new KeyValuePair<string, string>(p, p) : new KeyValuePair<string, string>(p[..eq].Trim(), p[(eq + 1)..].Trim());
        }).ToList();
        var task = new ClozeTask { Pattern = pattern, Verbalizer = pairs };
        task.Validate();
        return task;
    }

    /// <summary>Reads and tokenizes a data file for the chosen task (all data errors are reported before anything runs).</summary>
    public static List<ChatSftSample> ChatSamples(GlmModel model, string path)
    {
        var examples = ChatSftData.Load(path);
        var format = model.ChatFormat ?? throw new GlmException($"{model.Source} has no chat format; chat SFT needs a ChatGLM3/GLM-4 (or GLM base) tokenizer.");
        int stop = model.Config.EosTokenIds.Count > 0 ? model.Config.EosTokenIds[0] : format.StopIds[0];
        return examples.Select(e => ChatSftData.Encode(format, e, stop)).ToList();
    }

    public static List<ClozeSample> ClozeSamples(GlmModel model, ClozeTask task, string path)
    {
        var tokenizer = VerbHelpers.RequireTokenizer(model, "cloze classification");
        return ClozeData.Load(path, task).Select(e => task.Encode(tokenizer, e)).ToList();
    }
}
