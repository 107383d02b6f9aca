using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using AgentHost.Rag.Answering;
using AgentHost.Rag.Ingestion;
using AgentHost.Rag.Stores;

namespace AgentHost.Rag.Evaluation;

/// <summary>Retrieval figures of one mode.</summary>
public sealed record ModeFigures(RetrievalMode Mode, int Questions, double RecallAt1, double RecallAt5, double RecallAt10, double Mrr, TimeSpan Elapsed)
{
    /// <summary>True when the cross-encoder reordered the mode's candidates.</summary>
    public bool Reranked { get; init; }

    /// <summary>Row label: "keyword", "dense", "hybrid" or "hybrid + rerank".</summary>
    public string Label => Mode.ToString().ToLowerInvariant() + (Reranked ? " + rerank" : "");
}

/// <summary>Answer figures (CMRC EM / F1, ×100).</summary>
public sealed record AnswerFigures(RetrievalMode Mode, int Questions, double ExactMatch, double F1, int NoAnswers, TimeSpan Elapsed);

/// <summary>Everything eval-rag measured.</summary>
public sealed record EvalReport(string Dataset, string KnowledgeBase, int Contexts, int Questions, IngestionReport Ingestion,
    IReadOnlyList<ModeFigures> Retrieval, AnswerFigures? Answers, string EmbeddingModel)
{
    /// <summary>Markdown tables ready for docs/rag.md.</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Dataset `{Path.GetFileName(Dataset)}`: {Contexts} contexts (one document each) in knowledge base `{KnowledgeBase}`, "
            + $"{Questions} questions; embedding: {EmbeddingModel}. Hit = a retrieved chunk of the gold context containing a gold answer.");
        sb.AppendLine();
        sb.AppendLine("| retrieval | questions | recall@1 | recall@5 | recall@10 | MRR@10 | time | ms / query |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var m in Retrieval)
            sb.AppendLine($"| {m.Label} | {m.Questions} | {m.RecallAt1:P1} | {m.RecallAt5:P1} | {m.RecallAt10:P1} | "
                + $"{m.Mrr:F3} | {m.Elapsed.TotalSeconds:F1} s | {m.Elapsed.TotalMilliseconds / Math.Max(1, m.Questions):F2} |");
        if (Answers is { } a)
        {
            sb.AppendLine();
            sb.AppendLine("| answers | questions | EM | F1 | no-answer | time | s / question |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            sb.AppendLine($"| {a.Mode.ToString().ToLowerInvariant()} | {a.Questions} | {a.ExactMatch:F1} | {a.F1:F1} | {a.NoAnswers} | "
                + $"{a.Elapsed.TotalSeconds:F0} s | {a.Elapsed.TotalSeconds / Math.Max(1, a.Questions):F2} |");
        }
        sb.AppendLine();
        sb.AppendLine($"Ingestion: {Ingestion.Count(FileOutcome.Added) + Ingestion.Count(FileOutcome.Updated)} indexed, "
            + $"{Ingestion.Count(FileOutcome.Unchanged)} unchanged, {Ingestion.Count(FileOutcome.Failed)} failed, {Ingestion.Elapsed.TotalSeconds:F1} s.");
        return sb.ToString();
    }
}

/// <summary>Progress of an evaluation stage ("ingest", "keyword", "dense", "hybrid", "hybrid + rerank", "answer").</summary>
public sealed record EvalProgress(string Stage, int Done, int Total);

/// <summary>
/// <c>glm eval-rag</c>: writes each context as a document, ingests them (incremental), measures recall@1/5/10 and MRR for
/// keyword, dense and hybrid retrieval, and (unless retrieval-only) answers every question with the real ask pipeline and
/// scores it with CMRC exact match and F1.
/// </summary>
public sealed partial class RagEvaluator(IKnowledgeBase knowledgeBase, Retriever retriever, IngestionPipeline ingestion, string documentsFolder)
{
    [GeneratedRegex(@"\[\d+\]")]
    private static partial Regex CitationMarker();

    /// <summary>Runs the evaluation.</summary>
    /// <param name="dataset">The dataset.</param>
    /// <param name="limit">Ask only the first N questions (all contexts are still indexed).</param>
    /// <param name="ask">Answer pipeline; null = retrieval only.</param>
    /// <param name="askOptions">Options of the answers.</param>
    /// <param name="progress">Stage progress.</param>
    /// <param name="cancellationToken">Stops between questions.</param>
    public async Task<EvalReport> RunAsync(EvalDataset dataset, int? limit, AskPipeline? ask, AskOptions askOptions,
        IProgress<EvalProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(documentsFolder);
        var pathOf = new Dictionary<string, string>();
        foreach (var context in dataset.Contexts)
        {
            string file = Path.GetFullPath(Path.Combine(documentsFolder, SafeName(context.Id) + ".txt"));
            if (!File.Exists(file) || await File.ReadAllTextAsync(file, cancellationToken) != context.Text)
                await File.WriteAllTextAsync(file, context.Text, cancellationToken);
            pathOf[context.Id] = file;
        }
        var ingest = await ingestion.IngestAsync([documentsFolder],
            p => progress?.Report(new EvalProgress("ingest", p.FileIndex + (p.Outcome is null ? 0 : 1), p.FileCount)), cancellationToken);

        var questions = dataset.Questions.Take(limit ?? int.MaxValue).ToList();
        var modes = new List<(RetrievalMode Mode, bool Rerank)> { (RetrievalMode.Keyword, false) };
        if (retriever.HasEmbedder) modes.AddRange([(RetrievalMode.Dense, false), (RetrievalMode.Hybrid, false)]);
        if (retriever.HasReranker) modes.Add((RetrievalMode.Hybrid, true));
        var figures = new List<ModeFigures>();
        foreach (var (mode, rerank) in modes)
        {
            string stage = mode.ToString().ToLowerInvariant() + (rerank ? " + rerank" : "");
            var ranks = new List<int>(questions.Count);
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < questions.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (i % 50 == 0) progress?.Report(new EvalProgress(stage, i, questions.Count));
                var (context, question) = questions[i];
                var hits = await retriever.SearchAsync(question.Question, mode, 10, cancellationToken: cancellationToken, rerank: rerank);
                ranks.Add(RankOfFirstRelevant(hits, pathOf[context.Id], question.Answers));
            }
            watch.Stop();
            progress?.Report(new EvalProgress(stage, questions.Count, questions.Count));
            figures.Add(new ModeFigures(mode, questions.Count, RetrievalMetrics.RecallAt(ranks, 1), RetrievalMetrics.RecallAt(ranks, 5),
                RetrievalMetrics.RecallAt(ranks, 10), RetrievalMetrics.MeanReciprocalRank(ranks), watch.Elapsed) { Reranked = rerank });
        }

        AnswerFigures? answers = null;
        if (ask is not null)
        {
            double em = 0, f1 = 0;
            int noAnswers = 0;
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < questions.Count; i++)
            {
                progress?.Report(new EvalProgress("answer", i, questions.Count));
                var (_, question) = questions[i];
                var result = await ask.AskAsync(question.Question, askOptions, null, cancellationToken);
                string prediction = CitationMarker().Replace(result.Answer, "").Trim();
                if (result.NoAnswer) noAnswers++;
                em += CmrcMetrics.BestExactMatch(question.Answers, prediction);
                f1 += CmrcMetrics.BestF1(question.Answers, prediction);
            }
            progress?.Report(new EvalProgress("answer", questions.Count, questions.Count));
            int n = Math.Max(1, questions.Count);
            answers = new AnswerFigures(retriever.Effective(askOptions.Mode), questions.Count, 100 * em / n, 100 * f1 / n, noAnswers, watch.Elapsed);
        }
        return new EvalReport(dataset.Path, knowledgeBase.Name, dataset.Contexts.Count, questions.Count, ingest, figures, answers, "none");
    }

    /// <summary>1-based rank of the first hit from <paramref name="goldSource"/> whose text contains an answer; 0 when none.</summary>
    public static int RankOfFirstRelevant(IReadOnlyList<SearchHit> hits, string goldSource, IReadOnlyList<string> answers)
    {
        for (int r = 0; r < hits.Count; r++)
            if (hits[r].Source == goldSource && answers.Any(a => hits[r].Text.Contains(a, StringComparison.Ordinal))) return r + 1;
        return 0;
    }

    private static string SafeName(string id) => string.Concat(id.Select(c => char.IsLetterOrDigit(c) || c is '_' or '-' ? c : '_'));
}
