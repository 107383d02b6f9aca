using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    /// <summary>
    /// Generates continuations of several prompts in one batch. Prompts are left-padded; real tokens get positions from 0
    /// and padding is masked out, so each row's result equals generating it alone. Returns the new ids of each prompt
    /// (stop token excluded).
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> GenerateBatch(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new GenerationOptions();
        options.Validate();
        if (prompts.Count == 0) return Array.Empty<IReadOnlyList<int>>();
        foreach (var p in prompts)
        {
            if (p.Count == 0) throw new GlmException("empty prompt in batch; expected at least one token id per prompt.");
            CheckIds(p);
        }
        int b = prompts.Count, longest = prompts.Max(p => p.Count);
        int budget = Math.Min(options.MaxNewTokens, MaxContext - longest);
        if (budget <= 0) return prompts.Select(_ => (IReadOnlyList<int>)Array.Empty<int>()).ToArray();
        var stopIds = options.StopTokenIds ?? DefaultStopIds;
        var samplers = prompts.Select((_, i) => new TokenSampler(options with { Seed = options.Seed is ulong s ? s + (ulong)i : null })).ToArray();
        var outputs = prompts.Select(_ => new List<int>()).ToArray();
        var seen = prompts.Select(p => new List<int>(p)).ToArray();
        var done = new bool[b];
        var pad = prompts.Select(p => longest - p.Count).ToArray();

        ForwardGate.Wait(cancellationToken);
        try
        {
            using var inference = torch.inference_mode();
            using var cache = Network.CreateCache(b, longest + budget);
            // Key validity per row over the whole cache: false on left padding.
            var keyValid = new bool[b, longest + budget];
            for (int r = 0; r < b; r++)
                for (int c = pad[r]; c < longest + budget; c++) keyValid[r, c] = true;

            int[] next;
            using (var scope = NewDisposeScope())
            {
                var ids = new long[b * longest];
                var pos = new long[b * longest];
                for (int r = 0; r < b; r++)
                    for (int c = 0; c < longest; c++)
                    {
                        ids[r * longest + c] = c < pad[r] ? Config.PadTokenId : prompts[r][c - pad[r]];
                        pos[r * longest + c] = Math.Max(0, c - pad[r]);
                    }
                var mask = PrefillMask(keyValid, b, longest);
                var logits = Network.Forward(torch.tensor(ids, new long[] { b, longest }, device: Device),
                    torch.tensor(pos, new long[] { b, longest }, device: Device), cache, mask, lastOnly: true);
                next = PickRows(logits, samplers, seen);
            }

            for (int step = 0; ; step++)
            {
                for (int r = 0; r < b; r++)
                {
                    if (done[r]) continue;
                    if (stopIds.Contains(next[r])) { done[r] = true; continue; }
                    outputs[r].Add(next[r]);
                    seen[r].Add(next[r]);
                    if (outputs[r].Count >= budget) done[r] = true;
                }
                if (done.All(d => d) || cancellationToken.IsCancellationRequested) break;

                using var scope = NewDisposeScope();
                int t = longest + step + 1;
                var ids = new long[b];
                var pos = new long[b];
                for (int r = 0; r < b; r++)
                {
                    ids[r] = done[r] ? Config.PadTokenId : next[r];
                    pos[r] = prompts[r].Count + step;
                }
                var maskValues = new bool[b * t];
                for (int r = 0; r < b; r++)
                    for (int c = 0; c < t; c++) maskValues[r * t + c] = keyValid[r, c];
                var mask = torch.tensor(maskValues, new long[] { b, 1, 1, t }, device: Device);
                var logits = Network.Forward(torch.tensor(ids, new long[] { b, 1 }, device: Device),
                    torch.tensor(pos, new long[] { b, 1 }, device: Device), cache, mask, lastOnly: true);
                next = PickRows(logits, samplers, seen);
            }
        }
        finally { ForwardGate.Release(); }
        return outputs;
    }

    // Prefill mask [b, 1, s, s]: causal, and padded keys hidden; a padded query row still sees itself so softmax has a finite row.
    private Tensor PrefillMask(bool[,] keyValid, int b, int s)
    {
        var m = new bool[b * s * s];
        for (int r = 0; r < b; r++)
            for (int i = 0; i < s; i++)
                for (int j = 0; j <= i; j++)
                    m[(r * s + i) * s + j] = keyValid[r, j] || i == j;
        return torch.tensor(m, new long[] { b, 1, s, s }, device: Device);
    }

    private static int[] PickRows(Tensor logits, TokenSampler[] samplers, List<int>[] seen)
    {
        var rows = logits.to(ScalarType.Float32).cpu().view(samplers.Length, -1);
        var result = new int[samplers.Length];
        for (int r = 0; r < samplers.Length; r++)
            result[r] = samplers[r].Sample(rows[r].data<float>().ToArray(), seen[r]);
        return result;
    }
}
