using Glm.Engine.Generation;
using Glm.Engine.Tokenization;

namespace Glm.Engine.FineTuning.GroundedQa;

/// <summary>One scored question of a QA evaluation.</summary>
/// <param name="Question">The last user turn (passage and question).</param>
/// <param name="Reference">The reference answer (the conversation's final assistant turn).</param>
/// <param name="Prediction">The model's answer as its chat format parses it.</param>
/// <param name="Stopped">True when generation ended with a stop token of the turn before the token limit.</param>
/// <param name="ExactMatch">0 or 1.</param>
/// <param name="F1">Character F1 in [0, 1].</param>
public sealed record QaPrediction(string Question, string Reference, string Prediction, bool Stopped, double ExactMatch, double F1);

/// <summary>Result of a QA evaluation: EM, F1 and proper-stop rate (all ×100) and every prediction.</summary>
/// <param name="Count">Questions scored.</param>
/// <param name="ExactMatch">Mean exact match ×100.</param>
/// <param name="F1">Mean character F1 ×100.</param>
/// <param name="StoppedRate">Share of answers ×100 that ended with the turn's stop token before the limit.</param>
/// <param name="Predictions">Every prediction, in data order.</param>
public sealed record QaEvaluation(int Count, double ExactMatch, double F1, double StoppedRate, IReadOnlyList<QaPrediction> Predictions);

/// <summary>
/// Evaluates a chat model on grounded QA conversations (<see cref="ChatSftData"/> JSONL whose final turn is the reference
/// answer): the turns before it are rendered with the model's own chat format (generation prompt added), the answer is
/// generated greedily until a stop id of the format or the model (eop for base GLM, &lt;|user|&gt; etc. for chat models)
/// or <c>maxNewTokens</c>, parsed by the format (base GLM keeps the first line) and scored with <see cref="QaMetrics"/>.
/// </summary>
public static class GroundedQaEvaluator
{
    /// <summary>Scores every example; <paramref name="onPrediction"/> (optional) sees each prediction as it is made.</summary>
    public static async Task<QaEvaluation> EvaluateAsync(GlmModel model, IReadOnlyList<ChatSftExample> examples, int maxNewTokens = 64,
        Action<int, QaPrediction>? onPrediction = null, CancellationToken cancellationToken = default)
    {
        if (maxNewTokens < 1) throw new GlmException($"--max-new-tokens {maxNewTokens} is invalid: expected at least 1.");
        var format = model.ChatFormat ?? throw new GlmException($"{model.Source} has no chat format; QA evaluation needs a chat format (a tokenizer).");
        var tokenizer = model.Tokenizer ?? throw new GlmException($"{model.Source} has no tokenizer; QA evaluation needs one.");
        var stopIds = new HashSet<int>(format.StopIds);
        stopIds.UnionWith(model.Config.EosTokenIds);
        var options = new GenerationOptions { MaxNewTokens = maxNewTokens, Temperature = 0, StopTokenIds = stopIds };
        var board = new QaScoreboard();
        var predictions = new List<QaPrediction>(examples.Count);
        foreach (var example in examples)
        {
            var turns = example.Turns;
            if (turns.Count < 2 || turns[^1].Role != ChatRole.Assistant || turns[^2].Role != ChatRole.User)
                throw new GlmException($"{example.File}:{example.Line}: a QA example must end with a user turn (passage + question) followed by the assistant's reference answer.");
            var prompt = format.BuildPrompt(turns.Take(turns.Count - 1).ToList(), null, addGenerationPrompt: true);
            var ids = new List<int>();
            bool stopped = false;
            await foreach (var chunk in model.GenerateAsync(prompt, options, cancellationToken).ConfigureAwait(false))
            {
                if (chunk.TokenId < 0) continue;
                if (chunk.Finish == FinishReason.Stop && stopIds.Contains(chunk.TokenId)) { stopped = true; continue; }
                ids.Add(chunk.TokenId);
            }
            string prediction = format.Parse(tokenizer.Decode(ids, skipSpecialTokens: true), Array.Empty<string>()).Content.Trim();
            string reference = turns[^1].Content.Trim();
            var (em, f1) = board.Add(prediction, new[] { reference }, stopped);
            var p = new QaPrediction(turns[^2].Content, reference, prediction, stopped, em, f1);
            predictions.Add(p);
            onPrediction?.Invoke(predictions.Count - 1, p);
        }
        return new QaEvaluation(board.Count, board.ExactMatch, board.F1, board.StoppedRate, predictions);
    }
}
