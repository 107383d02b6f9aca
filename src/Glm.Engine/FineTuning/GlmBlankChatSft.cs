using Glm.Engine.Tokenization;
using Glm.Engine.Training;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.FineTuning;

/// <summary>
/// Chat SFT for a base original-GLM model (<see cref="GlmBlankChatFormat"/>), trained the way
/// <see cref="GlmModel.GenerateBlankAsync"/> generates the reply: Part A = the generation prompt without its sop
/// (<c>[CLS] …问：…\n答：[gMASK]</c>) read bidirectionally; Part B = <c>sop reply</c> read causally with position = the
/// [gMASK] index and block positions 1, 2, …; the loss covers the reply tokens and the closing eop (the format's stop id).
/// A plain causal prefix (what <see cref="ChatSftTask"/> does for ChatGLM3/GLM-4) would not match how these prompts are
/// generated. Only the conversation's <em>last</em> assistant turn is learned; earlier turns are context in Part A.
/// </summary>
public static class GlmBlankChatSft
{
    /// <summary>
    /// Encodes the last assistant turn of <paramref name="example"/> as a blank sample: <see cref="ChatSftSample.Ids"/> =
    /// Part A, sop, reply, eop; targets = reply and eop; <see cref="ChatSftSample.PartALength"/> and
    /// <see cref="ChatSftSample.MaskPosition"/> set. Throws naming file and line when the reply encodes to no tokens.
    /// </summary>
    public static ChatSftSample Encode(GlmBlankChatFormat format, ChatSftExample example)
    {
        var turns = example.Turns;
        int last = -1;
        for (int k = turns.Count - 1; k >= 0 && last < 0; k--) if (turns[k].Role == ChatRole.Assistant) last = k;
        if (last < 0) throw new GlmException($"{example.File}:{example.Line}: no assistant turn; expected at least one reply to learn.");
        var prompt = format.BuildPrompt(turns.Take(last).ToList(), null, addGenerationPrompt: true);
        var reply = format.EncodeReply(turns[last].Content);
        if (reply.Count == 0) throw new GlmException($"{example.File}:{example.Line}: assistant turn {last} encodes to no tokens; expected a non-empty reply.");
        int partA = prompt.Count - 1; // everything before sop; [gMASK] is its last token
        var ids = new int[prompt.Count + reply.Count + 1];
        for (int i = 0; i < prompt.Count; i++) ids[i] = prompt[i];
        for (int i = 0; i < reply.Count; i++) ids[prompt.Count + i] = reply[i];
        ids[^1] = format.StopIds[0];
        var targets = new bool[ids.Length];
        for (int i = prompt.Count; i < ids.Length; i++) targets[i] = true;
        return new ChatSftSample(ids, targets) { PartALength = partA, MaskPosition = partA - 1 };
    }

    /// <summary>
    /// Summed NLL of the target tokens of blank samples (<see cref="ChatSftSample.PartALength"/> ≥ 0) and their count.
    /// Rows are right-padded with <paramref name="padId"/>; padding sits at the end of Part B, so no real token sees it.
    /// </summary>
    public static (Tensor Sum, long Count) SummedNll(GlmModel model, IReadOnlyList<ChatSftSample> batch, int padId)
    {
        if (batch.Any(s => s.PartALength < 0))
            throw new GlmException("a batch mixes blank (base GLM) and causal chat samples; encode every sample with the same chat format.");
        // Input i predicts Ids[i + 1]; the last id (eop) is never an input.
        int b = batch.Count, l = batch.Max(s => s.Ids.Length) - 1;
        if (l > model.MaxContext) throw new GlmException($"a chat sample needs {l} positions; the model supports {model.MaxContext}. Drop or shorten long conversations.");
        var ids = new long[b * l];
        var positions = new long[b * 2 * l];
        var targets = new long[b * l];
        var weights = new float[b * l];
        var seps = new int[b];
        long count = 0;
        for (int r = 0; r < b; r++)
        {
            var s = batch[r];
            seps[r] = s.PartALength;
            for (int i = 0; i < l; i++)
            {
                int at = r * l + i;
                bool real = i + 1 < s.Ids.Length;
                ids[at] = real ? s.Ids[i] : padId;
                targets[at] = real ? s.Ids[i + 1] : padId;
                bool partB = i >= s.PartALength;
                positions[r * 2 * l + i] = partB ? s.MaskPosition : i;
                positions[r * 2 * l + l + i] = partB ? i - s.PartALength + 1 : 0;
                if (real && s.Targets[i + 1]) { weights[at] = 1; count++; }
            }
        }
        var device = model.Device;
        var logits = model.Network.Forward(tensor(ids, new long[] { b, l }, device: device), tensor(positions, new long[] { b, 2, l }, device: device),
            null, GlmTrainingStep.SepMask(seps, l, device), lastOnly: false);
        var nll = F.cross_entropy(logits.to(ScalarType.Float32).reshape(b * l, -1), tensor(targets, device: device), reduction: nn.Reduction.None);
        return ((nll * tensor(weights, device: device)).sum(), count);
    }
}
