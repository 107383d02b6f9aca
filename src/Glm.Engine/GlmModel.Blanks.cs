using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

/// <summary>Resolved original-GLM control-token ids.</summary>
/// <param name="MaskIds">Ids of [MASK], [sMASK] and [gMASK] that exist for this model.</param>
/// <param name="Sop">&lt;|startofpiece|&gt;: starts Part B.</param>
/// <param name="Eop">&lt;|endofpiece|&gt;: ends a generated blank.</param>
public sealed record GlmBlankTokenSet(IReadOnlySet<int> MaskIds, int Sop, int Eop);

public sealed partial class GlmModel
{
    private static readonly string[] MaskTokenNames = ["[MASK]", "[sMASK]", "[gMASK]"];

    /// <summary>
    /// The blank-infilling tokens of an original-GLM model: config.json fields (<c>mask_token_id</c>, <c>smask_token_id</c>,
    /// <c>gmask_token_id</c>, <c>sop_token_id</c>, <c>eop_token_id</c>) first, then the tokenizer's special tokens.
    /// Null when sop, eop or every mask token is unknown.
    /// </summary>
    public GlmBlankTokenSet? BlankTokens
    {
        get
        {
            var fromConfig = Config.BlankTokens;
            int? Special(params string[] names) => Tokenizer is null ? null
                : names.Select(n => Tokenizer.SpecialTokenId(n)).FirstOrDefault(id => id is not null);
            var masks = new HashSet<int>();
            foreach (int? id in new[] { fromConfig?.Mask ?? Special("[MASK]"), fromConfig?.SentenceMask ?? Special("[sMASK]"),
                         fromConfig?.GenerationMask ?? Special("[gMASK]") })
                if (id is int m) masks.Add(m);
            int? sop = fromConfig?.Sop ?? Special("sop", "<sop>", "<|startofpiece|>");
            int? eop = fromConfig?.Eop ?? Special("eop", "<eop>", "<|endofpiece|>");
            return masks.Count == 0 || sop is null || eop is null ? null : new GlmBlankTokenSet(masks, sop.Value, eop.Value);
        }
    }

    private GlmBlankTokenSet RequireBlankTokens() => BlankTokens ?? throw new GlmException(
        $"{Source}: no GLM blank tokens; expected [MASK]/[sMASK]/[gMASK], sop and eop in the tokenizer or as mask_token_id, " +
        "smask_token_id, gmask_token_id, sop_token_id and eop_token_id in config.json.");

    private void RequireOriginalGlm(string what)
    {
        if (Config.Layout != GlmLayout.OriginalGlm)
            throw new GlmException($"{what} needs an original-GLM model (blank infilling); {Source} has layout {Config.Layout}.");
    }

    /// <summary>
    /// Generates the contents of the first blank of <paramref name="partA"/> as GLM does (§1.5): Part A is read bidirectionally
    /// with positions 0..k−1 and block position 0; <c>sop</c> is appended and each generated token gets position = index of
    /// the first [MASK]/[sMASK]/[gMASK] and block positions 1, 2, 3, …, attending to all of Part A and causally to Part B.
    /// Stops at eop (or a stop id of <paramref name="options"/>) or after MaxNewTokens. Returns the span, eop excluded.
    /// </summary>
    public IReadOnlyList<int> GenerateBlank(IReadOnlyList<int> partA, GenerationOptions? options = null) =>
        GenerateBlank(partA, options, CancellationToken.None);

    private IReadOnlyList<int> GenerateBlank(IReadOnlyList<int> partA, GenerationOptions? options, CancellationToken ct)
    {
        var tokens = RequireBlankTokens();
        var generated = new List<int>();
        foreach (var chunk in GenerateBlankAsync(partA, options, ct).ToBlockingEnumerable(ct))
            if (chunk.TokenId >= 0 && chunk.Finish is FinishReason.None or FinishReason.Length && chunk.TokenId != tokens.Eop)
                generated.Add(chunk.TokenId);
        return generated;
    }

    /// <summary>
    /// Streams the contents of the first blank of <paramref name="partA"/> (see <see cref="GenerateBlank(IReadOnlyList{int}, GenerationOptions?)"/>):
    /// one chunk per token with UTF-8-safe text; the last chunk carries the finish reason (Stop at eop or a stop id/string).
    /// </summary>
    public async IAsyncEnumerable<GenerationChunk> GenerateBlankAsync(IReadOnlyList<int> partA, GenerationOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        RequireOriginalGlm(nameof(GenerateBlank));
        options ??= new GenerationOptions();
        options.Validate();
        var tokens = RequireBlankTokens();
        int maskPosition = RequirePartA(partA, tokens, nameof(GenerateBlank));
        var stop = new HashSet<int>(options.StopTokenIds ?? Array.Empty<int>()) { tokens.Eop };
        // Block positions run 1..budget+1 and must stay inside the learned table.
        int budget = Math.Min(options.MaxNewTokens, MaxContext - 1);
        var sampler = new TokenSampler(options);
        var decoder = new StreamingTextDecoder(Tokenizer, options.StopStrings, options.SkipSpecialTokensInText);
        var seen = new List<int>(partA);
        int generated = 0;

        using var cache = Network.CreateCache(1, partA.Count + 1 + budget);
        // Part A and sop in one pass: Part-A rows see Part A only; the sop row sees everything.
        int next = await StepAsync(() =>
        {
            var ids = new List<int>(partA) { tokens.Sop };
            var (positions, blocks) = GlmPositions(ids.Count, partA.Count, maskPosition);
            return Network.Forward(IdsTensor(ids), PositionTensor(positions, blocks), cache, SepMask(partA.Count, ids.Count), lastOnly: true);
        }, sampler, seen, ct).ConfigureAwait(false);
        while (true)
        {
            if (stop.Contains(next))
            {
                yield return new GenerationChunk(next, decoder.Flush(), FinishReason.Stop, partA.Count, generated);
                yield break;
            }
            generated++;
            seen.Add(next);
            string delta = decoder.Push(next);
            var finish = decoder.StopStringHit ? FinishReason.Stop : generated >= budget ? FinishReason.Length : FinishReason.None;
            if (finish != FinishReason.None)
            {
                yield return new GenerationChunk(next, delta + decoder.Flush(), finish, partA.Count, generated);
                yield break;
            }
            yield return new GenerationChunk(next, delta, FinishReason.None, partA.Count, generated);
            if (ct.IsCancellationRequested)
            {
                yield return new GenerationChunk(-1, "", FinishReason.Cancelled, partA.Count, generated);
                yield break;
            }
            int token = next, blockPosition = generated + 1;
            next = await StepAsync(() => Network.Forward(IdsTensor(new[] { token }),
                PositionTensor(new long[] { maskPosition }, new long[] { blockPosition }), cache, null, lastOnly: true), sampler, seen, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Fills every [MASK]/[sMASK]/[gMASK] written in <paramref name="textWithMasks"/>, first to last: the context is
    /// <c>[CLS] text &lt;|endoftext|&gt;</c> (as HF <c>build_inputs_with_special_tokens</c>; tokens the tokenizer lacks are left
    /// out), the first blank is generated with <see cref="GenerateBlank(IReadOnlyList{int}, GenerationOptions?)"/>, spliced
    /// into the text in place of its mask, and the next blank is filled with that text as context. Returns the completed text.
    /// </summary>
    public Task<string> FillBlanksAsync(string textWithMasks, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var fill = PrepareBlankFilling(textWithMasks, nameof(FillBlanksAsync), nameof(GenerateBlank), endWithEos: true,
            options?.SkipSpecialTokensInText ?? true, context => GenerateBlank(context, options, cancellationToken));
        return Task.Run(fill, cancellationToken);
    }

    /// <summary>
    /// Checks and encodes a text with written blanks for <paramref name="what"/> (errors are raised here, before any work), and
    /// returns the work: each blank, first to last, is filled by <paramref name="fillFirst"/> from the context
    /// <c>[CLS] text</c> (then &lt;|endoftext|&gt; with <paramref name="endWithEos"/>), spliced in place of its mask, and the
    /// completed text is decoded.
    /// </summary>
    private Func<string> PrepareBlankFilling(string textWithMasks, string what, string idsAlternative, bool endWithEos,
        bool skipSpecialTokens, Func<List<int>, IReadOnlyList<int>> fillFirst)
    {
        RequireOriginalGlm(what);
        var tokenizer = Tokenizer ?? throw new GlmException($"{Source}: {what} needs a tokenizer; this model has none (use {idsAlternative} with ids).");
        var tokens = RequireBlankTokens();
        var ids = EncodeWithMasks(textWithMasks);
        if (FirstMaskIndex(ids, tokens) < 0)
            throw new GlmException($"{what}: the text contains none of {string.Join(", ", MaskTokenNames)}; expected at least one blank to fill.");
        int? cls = tokenizer.SpecialTokenId("[CLS]");
        int? eos = endWithEos ? tokenizer.SpecialTokenId("<|endoftext|>") ?? tokenizer.EosId : null;
        return () =>
        {
            while (FirstMaskIndex(ids, tokens) is var at and >= 0)
            {
                var context = new List<int>(ids.Count + 2);
                if (cls is int c) context.Add(c);
                context.AddRange(ids);
                if (eos is int e) context.Add(e);
                var span = fillFirst(context);
                ids.RemoveAt(at);
                ids.InsertRange(at, span);
            }
            return tokenizer.Decode(ids, skipSpecialTokens: skipSpecialTokens);
        };
    }

    /// <summary>Token ids of text in which the literal strings [MASK], [sMASK], [gMASK] stand for their control tokens.</summary>
    private List<int> EncodeWithMasks(string text)
    {
        var tokenizer = Tokenizer!;
        var ids = new List<int>();
        int start = 0;
        while (start < text.Length)
        {
            int best = -1; string? found = null;
            foreach (var name in MaskTokenNames)
            {
                int at = text.IndexOf(name, start, StringComparison.Ordinal);
                if (at >= 0 && (best < 0 || at < best)) { best = at; found = name; }
            }
            int end = best < 0 ? text.Length : best;
            if (end > start) ids.AddRange(tokenizer.Encode(text[start..end]));
            if (found is null) break;
            ids.Add(tokenizer.SpecialTokenId(found) ?? throw new GlmException($"the tokenizer of {Source} has no {found} token; expected the GLM control tokens."));
            start = best + found.Length;
        }
        return ids;
    }

    /// <summary>Checks the Part A of a blank (non-empty, valid ids, a mask token, inside the position table); returns the first mask's index.</summary>
    private int RequirePartA(IReadOnlyList<int> partA, GlmBlankTokenSet tokens, string what)
    {
        if (partA.Count == 0) throw new GlmException($"{what}: Part A is empty; expected context ids with a mask token.");
        CheckIds(partA);
        int maskPosition = FirstMaskIndex(partA, tokens);
        if (maskPosition < 0)
            throw new GlmException($"{what}: Part A of {partA.Count} tokens has no [MASK]/[sMASK]/[gMASK] (ids {string.Join(", ", tokens.MaskIds)}); expected at least one blank.");
        if (partA.Count > MaxContext)
            throw new GlmException($"{what}: Part A of {partA.Count} tokens exceeds the {MaxContext} positions of this model.");
        return maskPosition;
    }

    private static int FirstMaskIndex(IReadOnlyList<int> ids, GlmBlankTokenSet tokens)
    {
        for (int i = 0; i < ids.Count; i++) if (tokens.MaskIds.Contains(ids[i])) return i;
        return -1;
    }

    /// <summary>
    /// Logits of an original-GLM model under the Part A / Part B rule: tokens before the first sop are Part A (bidirectional,
    /// positions 0..k−1, block 0); sop and later tokens are Part B (causal, position = first mask index in Part A, block
    /// positions 1, 2, …). Without sop the sequence is scored causally with positions 0..n−1 and block position 0.
    /// Incremental mode feeds Part A as one chunk (it is bidirectional) and Part B one token at a time through the cache.
    /// </summary>
    private float[,] ComputeGlmLogits(IReadOnlyList<int> ids, bool incremental)
    {
        int n = ids.Count, v = Config.VocabSize;
        var tokens = BlankTokens;
        int sep = tokens is null ? -1 : IndexOf(ids, tokens.Sop);
        int maskPosition = 0;
        if (sep >= 0)
        {
            maskPosition = FirstMaskIndex(ids.Take(sep).ToList(), tokens!);
            if (maskPosition < 0)
                throw new GlmException($"sop (id {tokens!.Sop}) at index {sep} starts Part B, but Part A (ids 0..{sep - 1}) has no [MASK]/[sMASK]/[gMASK]; expected a blank before sop.");
        }
        var (positions, blocks) = GlmPositions(n, sep, maskPosition);
        if (positions.Max() > MaxContext || blocks.Max() > MaxContext)
            throw new GlmException($"sequence of {n} tokens needs position ids up to {Math.Max(positions.Max(), blocks.Max())}; this model's tables end at {MaxContext}.");
        var result = new float[n, v];
        ForwardGate.Wait();
        try
        {
            using var inference = torch.inference_mode();
            if (!incremental)
            {
                using var scope = NewDisposeScope();
                var logits = Network.Forward(IdsTensor(ids), PositionTensor(positions, blocks), null,
                    sep >= 0 ? SepMask(sep, n) : null, lastOnly: false);
                CopyRows(logits.to(ScalarType.Float32).cpu().view(n, v), result, 0);
                return result;
            }
            using var cache = Network.CreateCache(1, n);
            int first = Math.Max(sep, 0);
            if (first > 0)
            {
                using var scope = NewDisposeScope();
                var logits = Network.Forward(IdsTensor(ids.Take(first).ToList()), PositionTensor(positions[..first], blocks[..first]),
                    cache, SepMask(first, first), lastOnly: false);
                CopyRows(logits.to(ScalarType.Float32).cpu().view(first, v), result, 0);
            }
            for (int i = first; i < n; i++)
            {
                using var scope = NewDisposeScope();
                var logits = Network.Forward(IdsTensor(new[] { ids[i] }), PositionTensor(positions[i..(i + 1)], blocks[i..(i + 1)]),
                    cache, null, lastOnly: true);
                CopyRows(logits.to(ScalarType.Float32).cpu().view(1, v), result, i);
            }
            return result;
        }
        finally { ForwardGate.Release(); }
    }

    /// <summary>
    /// Perplexity of <paramref name="ids"/>: exp of the mean negative log-likelihood of each token given the logits of the
    /// token before it, under the rule of <see cref="ComputeLogits"/>. On original-GLM models with sop only Part B tokens after
    /// sop are scored (Part A is context); otherwise tokens 1..n−1.
    /// </summary>
    public double Perplexity(IReadOnlyList<int> ids)
    {
        if (ids.Count < 2) throw new GlmException($"perplexity needs at least 2 tokens; got {ids.Count}.");
        var logits = ComputeLogits(ids);
        var tokens = Config.Layout == GlmLayout.OriginalGlm ? BlankTokens : null;
        int sep = tokens is null ? -1 : IndexOf(ids, tokens.Sop);
        int firstScored = sep >= 0 ? sep + 1 : 1;
        if (firstScored >= ids.Count) throw new GlmException("perplexity: nothing to score after sop; expected Part B tokens after it.");
        double nll = 0;
        for (int i = firstScored; i < ids.Count; i++) nll += TokenNll(logits, i - 1, ids[i]);
        return Math.Exp(nll / (ids.Count - firstScored));
    }

    private static int IndexOf(IReadOnlyList<int> ids, int id)
    {
        for (int i = 0; i < ids.Count; i++) if (ids[i] == id) return i;
        return -1;
    }

    /// <summary>
    /// Position and block-position rows for <paramref name="n"/> tokens whose Part A has <paramref name="sep"/> tokens
    /// (sep &lt; 0: no Part B, causal positions 0..n−1).
    /// </summary>
    internal static (long[] Positions, long[] Blocks) GlmPositions(int n, int sep, int maskPosition)
    {
        var positions = new long[n];
        var blocks = new long[n];
        for (int i = 0; i < n; i++)
        {
            bool partB = sep >= 0 && i >= sep;
            positions[i] = partB ? maskPosition : i;
            blocks[i] = partB ? i - sep + 1 : 0;
        }
        return (positions, blocks);
    }

    private Tensor PositionTensor(long[] positions, long[] blocks)
    {
        var both = new long[positions.Length * 2];
        positions.CopyTo(both, 0);
        blocks.CopyTo(both, positions.Length);
        return torch.tensor(both, new long[] { 1, 2, positions.Length }, device: Device);
    }

    /// <summary>Bool [1, 1, n, n]: column j visible to row i when j &lt; sep (Part A) or j ≤ i (causal Part B).</summary>
    private Tensor SepMask(int sep, int n)
    {
        var causal = ones(new long[] { n, n }, dtype: ScalarType.Bool, device: Device).tril();
        causal.narrow(1, 0, sep).fill_(true);
        return causal.view(1, 1, n, n);
    }
}
