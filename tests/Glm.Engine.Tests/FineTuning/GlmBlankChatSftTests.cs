using Glm.Engine.FineTuning;
using Glm.Engine.Modeling;
using Glm.Engine.Tests.Modeling;
using Glm.Engine.Tests.Training;
using Glm.Engine.Tokenization;
using Glm.Engine.Tokenization.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.FineTuning;

public sealed class GlmBlankChatSftTests : IDisposable
{
    private readonly OwnBpeTokenizer _tok = OwnBpeTokenizer.Load(Path.Combine(TrainingData.ProjectRoot(), "models", "glm-zh-small"));
    private readonly GlmModel _model;
    private readonly GlmBlankChatFormat _format;

    public GlmBlankChatSftTests()
    {
        var cfg = GlmBlockTestSupport.TinyConfig() with
        {
            VocabSize = 8192,
            BlankTokens = new GlmBlankTokenIds(_tok.SpecialTokenId("[MASK]")!.Value, _tok.SpecialTokenId("[sMASK]")!.Value,
                _tok.SpecialTokenId("[gMASK]")!.Value, _tok.SpecialTokenId("<sop>")!.Value, _tok.SpecialTokenId("<eop>")!.Value),
        };
        _model = GlmBlockTestSupport.Model(cfg, GlmBlockTestSupport.RandomTensors(cfg, 11), _tok);
        _format = Assert.IsType<GlmBlankChatFormat>(_model.ChatFormat);
    }

    public void Dispose() => _model.Dispose();

    private static ChatSftExample Example(string answer, string question = "资料：甲乙丙。\n问题：谁？") => new(
        [new ChatTurn(ChatRole.System, "只根据资料回答。"), new ChatTurn(ChatRole.User, question), new ChatTurn(ChatRole.Assistant, answer)], "t.jsonl", 1);

    [Fact]
    public void SampleIsPartAThenSopReplyEopWithTargetsOnReplyAndEop()
    {
        var example = Example("甲乙");
        var s = ChatSftData.Encode(_format, example, stopId: _tok.SpecialTokenId("<|endoftext|>")!.Value);
        var prompt = _format.BuildPrompt(example.Turns.Take(2).ToList(), null, addGenerationPrompt: true);
        int reply = _tok.Encode("甲乙").Count;
        Assert.Equal(prompt.Count - 1, s.PartALength);
        Assert.Equal(s.PartALength - 1, s.MaskPosition);
        Assert.Equal(_tok.SpecialTokenId("[gMASK]"), s.Ids[s.MaskPosition]);
        Assert.Equal(prompt, s.Ids.Take(prompt.Count));
        Assert.Equal(_tok.SpecialTokenId("<eop>"), s.Ids[^1]); // the format's stop id, not the config eos
        Assert.Equal(prompt.Count + reply + 1, s.Ids.Length);
        Assert.Equal(Enumerable.Range(0, s.Ids.Length).Select(i => i >= prompt.Count), s.Targets);
    }

    [Fact]
    public void LossEqualsTheNllOfGlmBlankLogitsAndPaddingChangesNothing()
    {
        var a = ChatSftData.Encode(_format, Example("甲乙"), 0);
        var b = ChatSftData.Encode(_format, Example("丙", "资料：丙丁。\n问题：什么在丁前面？请回答。"), 0);
        var task = new ChatSftTask([a, b], null, _model.Config.PadTokenId);
        using var noGrad = torch.no_grad();
        double Single(ChatSftSample s) => task.SummedNll(_model, [s]).Sum.item<float>();
        double Reference(ChatSftSample s)
        {
            // ComputeLogits applies GLM's Part A / Part B rule (bidirectional before sop, causal 2D positions after).
            var logits = _model.ComputeLogits(s.Ids.Take(s.Ids.Length - 1).ToList());
            double nll = 0;
            for (int i = 0; i + 1 < s.Ids.Length; i++)
            {
                if (!s.Targets[i + 1]) continue;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < logits.GetLength(1); j++) max = Math.Max(max, logits[i, j]);
                for (int j = 0; j < logits.GetLength(1); j++) sum += Math.Exp(logits[i, j] - max);
                nll -= logits[i, s.Ids[i + 1]] - max - Math.Log(sum);
            }
            return nll;
        }
        Assert.Equal(Reference(a), Single(a), 3);
        Assert.Equal(Reference(b), Single(b), 3);
        var (sum, count) = task.SummedNll(_model, [a, b]);
        Assert.Equal(a.Targets.Count(t => t) + b.Targets.Count(t => t), count);
        Assert.Equal(Single(a) + Single(b), sum.item<float>(), 3);
    }

    [Fact]
    public void ShortFineTuneLowersTheLoss()
    {
        var samples = new[] { ChatSftData.Encode(_format, Example("甲乙"), 0), ChatSftData.Encode(_format, Example("丙"), 0) };
        var task = new ChatSftTask(samples, samples, _model.Config.PadTokenId);
        string dir = TrainingData.TempDir();
        try
        {
            double before = task.Evaluate(_model, 0, 2).Loss;
            var outcome = new FineTuner(new FineTunerOptions { OutputFolder = dir, Method = FineTuneMethod.Full, Steps = 20, BatchSize = 2, LearningRate = 3e-3 }).Run(_model, task);
            using var noGrad = torch.no_grad();
            double after = task.Evaluate(_model, 20, 2).Loss;
            Assert.True(after < before * 0.5, $"loss {before:F3} → {after:F3}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
