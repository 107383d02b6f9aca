using System.Runtime.CompilerServices;
using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    /// <summary>Ids that end generation by default: the config's eos ids plus the tokenizer's turn-ending role tokens.</summary>
    public IReadOnlyCollection<int> DefaultStopIds
    {
        get
        {
            var ids = new HashSet<int>(Config.EosTokenIds);
            if (Tokenizer is not null)
                foreach (var t in new[] { "<|endoftext|>", "<|user|>", "<|observation|>", "eop", "<eop>", "<|endofpiece|>" })
                    if (Tokenizer.SpecialTokenId(t) is int id) ids.Add(id);
            return ids;
        }
    }

    /// <summary>
    /// Float32 logits [n, vocab] at every position of <paramref name="ids"/>: one forward over the whole sequence, or
    /// (<paramref name="incremental"/>) one token at a time through the KV cache. Original-GLM models apply the Part A /
    /// Part B rule (tokens before the first sop bidirectional, sop and later causal with 2D positions; no sop = causal),
    /// see <see cref="ComputeGlmLogits"/>.
    /// </summary>
    public float[,] ComputeLogits(IReadOnlyList<int> ids, bool incremental = false)
    {
        if (ids.Count == 0) throw new GlmException("no input ids; expected at least one token id.");
        CheckIds(ids);
        if (Config.Layout == GlmLayout.OriginalGlm) return ComputeGlmLogits(ids, incremental);
        ForwardGate.Wait();
        try
        {
            using var inference = torch.inference_mode();
            int n = ids.Count, v = Config.VocabSize;
            var result = new float[n, v];
            if (!incremental)
            {
                using var scope = NewDisposeScope();
                var logits = Network.Forward(IdsTensor(ids), Positions(0, n), null, null, lastOnly: false);
                CopyRows(logits.to(ScalarType.Float32).cpu().view(n, v), result, 0);
                return result;
            }
            using var cache = Network.CreateCache(1, n);
            for (int i = 0; i < n; i++)
            {
                using var scope = NewDisposeScope();
                var logits = Network.Forward(IdsTensor(new[] { ids[i] }), Positions(i, 1), cache, null, lastOnly: true);
                CopyRows(logits.to(ScalarType.Float32).cpu().view(1, v), result, i);
            }
            return result;
        }
        finally { ForwardGate.Release(); }
    }

    /// <summary>
    /// Streams the continuation of <paramref name="promptIds"/>. Each chunk carries one token and the text it completes; the last
    /// chunk carries the finish reason. On original-GLM models a prompt that ends with sop after a [MASK]/[sMASK]/[gMASK]
    /// generates that blank (Part B positions), as <see cref="GenerateBlankAsync"/>. Cancelling ends the stream at the next token and frees the request's KV cache.
    /// </summary>
    public async IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new GenerationOptions();
        options.Validate();
        if (promptIds.Count == 0) throw new GlmException("empty prompt; expected at least one token id.");
        CheckIds(promptIds);
        // Original GLM: a prompt "Part A (with a mask) + sop" asks for that blank, generated with GLM's 2D positions.
        if (Config.Layout == GlmLayout.OriginalGlm && BlankTokens is { } blank && promptIds[^1] == blank.Sop
            && promptIds.Take(promptIds.Count - 1).Any(blank.MaskIds.Contains))
        {
            await foreach (var chunk in GenerateBlankAsync(promptIds.Take(promptIds.Count - 1).ToArray(), options, cancellationToken).ConfigureAwait(false))
                yield return chunk;
            yield break;
        }
        if (promptIds.Count >= MaxContext)
            throw new GlmException($"prompt of {promptIds.Count} tokens does not fit the context of {MaxContext} tokens.");
        var stopIds = options.StopTokenIds ?? DefaultStopIds;
        int budget = Math.Min(options.MaxNewTokens, MaxContext - promptIds.Count);
        var sampler = new TokenSampler(options);
        var decoder = new StreamingTextDecoder(Tokenizer, options.StopStrings, options.SkipSpecialTokensInText);
        var seen = new List<int>(promptIds);
        int generated = 0;
        if (budget == 0)
        {
            yield return new GenerationChunk(-1, "", FinishReason.Length, promptIds.Count, 0);
            yield break;
        }

        using var cache = Network.CreateCache(1, promptIds.Count + budget);
        int next = await StepAsync(promptIds, 0, cache, sampler, seen, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            if (stopIds.Contains(next))
            {
                yield return new GenerationChunk(next, decoder.Flush(), FinishReason.Stop, promptIds.Count, generated);
                yield break;
            }
            generated++;
            seen.Add(next);
            string delta = decoder.Push(next);
            if (decoder.StopStringHit)
            {
                yield return new GenerationChunk(next, delta + decoder.Flush(), FinishReason.Stop, promptIds.Count, generated);
                yield break;
            }
            if (generated >= budget)
            {
                yield return new GenerationChunk(next, delta + decoder.Flush(), FinishReason.Length, promptIds.Count, generated);
                yield break;
            }
            yield return new GenerationChunk(next, delta, FinishReason.None, promptIds.Count, generated);
            if (cancellationToken.IsCancellationRequested)
            {
                // The consumer asked to stop: end the stream cleanly; the cache is freed as the iterator completes.
                yield return new GenerationChunk(-1, "", FinishReason.Cancelled, promptIds.Count, generated);
                yield break;
            }
            next = await StepAsync(new[] { next }, promptIds.Count + generated - 1, cache, sampler, seen, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Generates to completion and returns the new ids (stop token excluded).</summary>
    public async Task<IReadOnlyList<int>> GenerateIdsAsync(IReadOnlyList<int> promptIds, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var ids = new List<int>();
        var stopIds = options?.StopTokenIds ?? DefaultStopIds;
        await foreach (var chunk in GenerateAsync(promptIds, options, cancellationToken).ConfigureAwait(false))
            if (chunk.TokenId >= 0 && (chunk.Finish != FinishReason.Stop || !stopIds.Contains(chunk.TokenId)))
                ids.Add(chunk.TokenId);
        return ids;
    }

    private Task<int> StepAsync(IReadOnlyList<int> ids, int start, KvCache cache, TokenSampler sampler, List<int> seen, CancellationToken ct) =>
        StepAsync(() => PrefillInChunks(Network, IdsTensor(ids), (from, count) => Positions(start + (int)from, (int)count), cache, PrefillChunkTokens), sampler, seen, ct);

    /// <summary>
    /// Most tokens one forward appends to a KV cache. Longer prompts are prefilled in pieces, each attending to the cache and
    /// causally to itself: the result is the same, but attention scores and activations stay bounded (a 16k-token prompt in
    /// one forward needs more than 24 GiB on glm4-bench).
    /// </summary>
    internal int PrefillChunkTokens { get; set; } = DefaultPrefillChunkTokens;

    /// <summary>Default of <see cref="PrefillChunkTokens"/>.</summary>
    internal const int DefaultPrefillChunkTokens = 1024;

    /// <summary>
    /// Runs <paramref name="ids"/> [b, p] through <paramref name="network"/> into <paramref name="cache"/> in pieces of at most
    /// <paramref name="chunkTokens"/> and returns the last position's logits. <paramref name="positions"/>(offset, count)
    /// gives the position ids of a piece.
    /// </summary>
    internal static Tensor PrefillInChunks(IDecoderNetwork network, Tensor ids, Func<long, long, Tensor> positions, KvCache cache,
        int chunkTokens = DefaultPrefillChunkTokens)
    {
        long total = ids.shape[1], chunk = Math.Max(1, chunkTokens), start = 0;
        for (; total - start > chunk; start += chunk)
        {
            using var scope = NewDisposeScope(); // each piece's activations are freed before the next
            network.Forward(ids.narrow(1, start, chunk), positions(start, chunk), cache, null, lastOnly: true);
        }
        return network.Forward(ids.narrow(1, start, total - start), positions(start, total - start), cache, null, lastOnly: true);
    }

    // One forward step (returning last-position logits) and the token picked from it, on a worker thread: torch's inference
    // mode and dispose scopes are per thread, and the gate serialises forwards on this model.
    internal async Task<int> StepAsync(Func<Tensor> forward, TokenSampler sampler, List<int> seen, CancellationToken ct)
    {
        await ForwardGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await Task.Run(() =>
            {
                using var inference = torch.inference_mode();
                using var scope = NewDisposeScope();
                return PickToken(forward().view(-1), sampler, seen);
            }, ct).ConfigureAwait(false);
        }
        finally { ForwardGate.Release(); }
    }

    internal static int PickToken(Tensor lastLogits, TokenSampler sampler, IReadOnlyList<int> seen)
    {
        if (sampler.IsPlainGreedy) return (int)lastLogits.argmax().item<long>();
        var row = lastLogits.to(ScalarType.Float32).cpu();
        return sampler.Sample(row.data<float>().ToArray(), seen);
    }

    internal Tensor IdsTensor(IReadOnlyList<int> ids)
    {
        var arr = new long[ids.Count];
        for (int i = 0; i < arr.Length; i++) arr[i] = ids[i];
        return torch.tensor(arr, new long[] { 1, arr.Length }, device: Device);
    }

    internal Tensor Positions(int start, int count) =>
        torch.arange(start, start + count, dtype: ScalarType.Int64, device: Device).view(1, count);

    internal void CheckIds(IReadOnlyList<int> ids)
    {
        for (int i = 0; i < ids.Count; i++)
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new GlmException($"token id {ids[i]} at index {i} is out of range; expected 0..{Config.VocabSize - 1} for this model.");
    }

    private static void CopyRows(Tensor rows, float[,] dest, int firstRow)
    {
        var values = rows.contiguous().data<float>().ToArray();
        Buffer.BlockCopy(values, 0, dest, firstRow * dest.GetLength(1) * sizeof(float), values.Length * sizeof(float));
    }
}
