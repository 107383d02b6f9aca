using System.Runtime.InteropServices;
using Glm.Engine.Diagnostics;
using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using static Glm.Engine.Modeling.Kernels.KernelSupport;

namespace Glm.Engine.Modeling;

/// <summary>
/// One decode token of one sequence through a whole ChatGLM/GLM-4 network on buffers allocated once per model. The tensor
/// path makes ~8 tensors per layer per token (norm outputs, projections, views, residual sums) and ~160 TorchSharp calls;
/// at 2–3 µs each that was ≈ 2 ms of a 30 ms bf16 step on glm4-bench. Here the residual stream, the projections and the
/// attention output live in native buffers, the GEMVs run the same <see cref="CpuGemv"/> row kernels, and the element-wise
/// steps call the same <see cref="CpuDecodeOps"/> row loops, so the logits are bit-identical to the tensor path's (tested);
/// only the logits tensor is allocated per token. Applies to CPU models with bf16/fp16/fp32 activations (linear layers in that
/// dtype or int8) and no LoRA adapters, batch 1 with a plain (non-scheduler) KV cache; anything else takes the tensor path.
/// </summary>
internal sealed unsafe class ChatGlmDecodeStep : IDisposable
{
    /// <summary>Set to false (or GLM_NO_FUSED_DECODE=1) to decode through the tensor path (tests, comparisons).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_FUSED_DECODE") != "1";

    private readonly GlmConfig _cfg;
    private readonly ScalarType _dtype;
    private readonly long _size, _hidden, _qkvWidth, _ffn, _vocab;
    private readonly Layer[] _layers;
    private readonly Projection? _head;
    private readonly IReadOnlyList<ChatGlmBlock> _blocks;
    private readonly byte* _embeddings, _finalNorm, _cos, _sin;
    private readonly long _ropePositions;
    private readonly bool _castBeforeWeight, _int8;
    // The int8 kernels are bound in the mode current at creation; if a test or caller flips it, the tensor path runs.
    private readonly (bool Int8Activations, bool Avx512, bool Int8Dot) _int8Mode;
    private readonly float _epsilon;
    // Activations in the model dtype: residual stream, normed input, fused QKV, attention output, sublayer output, gate/up, SwiGLU.
    private readonly byte* _x, _h, _qkv, _context, _sublayer, _gateUp, _mlp;
    // fp32 GEMV input and output.
    private readonly float* _wide, _wideOut;
    private readonly List<IntPtr> _allocations = new();
    [ThreadStatic] private static long _tokensRun;

    /// <summary>Tokens decoded through fused steps on the calling thread (tests check that the fast path ran).</summary>
    public static long TokensRun => _tokensRun;

    /// <summary>A linear layer bound to its row kernel, with the kernel call over the step's fp32 buffers prepared once.</summary>
    private sealed class Projection(Action<long, long> run, KernelSupport.InputStep? prepare, long inputs, long outputs, byte* bias)
    {
        public readonly Action<long, long> Run = run;
        public readonly KernelSupport.InputStep? Prepare = prepare;
        public readonly long Inputs = inputs, Outputs = outputs;
        public readonly byte* Bias = bias;
    }

    private sealed class Layer
    {
        public required byte* InputNorm, PostAttentionNorm, PostSelfAttentionNorm, PostMlpNorm;
        public required Projection? Qkv, Dense, GateUp, Down; // null only while TryCreate rejects the model
        public required float Scale;
    }

    private ChatGlmDecodeStep(GlmConfig cfg, ScalarType dtype, IReadOnlyList<ChatGlmBlock> blocks, Weights embeddings, Weights finalNorm,
        Weights head, RotaryEmbedding rope, bool castBeforeWeight)
    {
        _cfg = cfg;
        _dtype = dtype;
        _size = dtype == ScalarType.Float32 ? 4 : 2;
        _hidden = cfg.HiddenSize;
        _qkvWidth = (long)(cfg.NumHeads + 2 * cfg.NumKvHeads) * cfg.HeadDim;
        _ffn = cfg.FfnHiddenSize;
        _vocab = cfg.VocabSize;
        _blocks = blocks;
        _castBeforeWeight = castBeforeWeight;
        _epsilon = (float)cfg.NormEps;
        long attention = (long)cfg.NumHeads * cfg.HeadDim;
        _x = Alloc(_hidden); _h = Alloc(_hidden); _qkv = Alloc(_qkvWidth); _context = Alloc(attention);
        _sublayer = Alloc(_hidden); _gateUp = Alloc(2 * _ffn); _mlp = Alloc(_ffn);
        long widest = Math.Max(Math.Max(_hidden, _ffn), attention);
        _wide = (float*)AllocBytes(widest * sizeof(float));
        _wideOut = (float*)AllocBytes(Math.Max(Math.Max(_qkvWidth, 2 * _ffn), Math.Max(_hidden, _vocab)) * sizeof(float));
        _embeddings = Data(embeddings.Weight);
        _finalNorm = Data(finalNorm.Weight);
        _cos = Data(rope.Cos);
        _sin = Data(rope.Sin);
        _ropePositions = rope.MaxPositions;
        _layers = blocks.Select(b => new Layer
        {
            InputNorm = Data(b.InputNorm.Weight),
            PostAttentionNorm = Data(b.PostAttentionNorm.Weight),
            PostSelfAttentionNorm = b.PostSelfAttentionNorm is { } n1 ? Data(n1.Weight) : null,
            PostMlpNorm = b.PostMlpNorm is { } n2 ? Data(n2.Weight) : null,
            Qkv = Bind(b.Qkv), Dense = Bind(b.Dense), GateUp = Bind(b.GateUp), Down = Bind(b.Down),
            Scale = b.AttentionScale,
        }).ToArray();
        _head = Bind(head);
        _int8 = blocks.Any(b => b.Qkv.IsQuantized || b.Dense.IsQuantized || b.GateUp.IsQuantized || b.Down.IsQuantized) || head.IsQuantized;
        _int8Mode = (CpuInt8Gemv.Int8Activations, CpuInt8Gemv.UseAvx512, CpuInt8Gemv.UseInt8DotKernel);
    }

    /// <summary>The step for a model's weights, or null when some layer is not one the step handles (then use the tensor path).</summary>
    public static ChatGlmDecodeStep? TryCreate(GlmConfig cfg, ScalarType dtype, Device device, IReadOnlyList<ChatGlmBlock> blocks,
        Weights embeddings, Weights finalNorm, Weights head, RotaryEmbedding rope, bool castBeforeWeight)
    {
        if (!Enabled || device.type != DeviceType.CPU || !CpuGemv.Enabled || !CpuDecodeOps.Enabled || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return null;
        if (dtype != ScalarType.BFloat16 && dtype != ScalarType.Float16 && dtype != ScalarType.Float32) return null;
        if (cfg.HeadDim % 16 != 0 || cfg.NumHeads % cfg.NumKvHeads != 0 || cfg.RotaryDim % 2 != 0) return null;
        var all = blocks.SelectMany(b => new[] { b.InputNorm, b.PostAttentionNorm, b.Qkv, b.Dense, b.GateUp, b.Down, b.PostSelfAttentionNorm, b.PostMlpNorm })
            .Concat(new[] { embeddings, finalNorm, head }).Where(w => w is not null).Select(w => w!).ToList();
        var linear = blocks.SelectMany(b => new[] { b.Qkv, b.Dense, b.GateUp, b.Down }).Append(head).ToHashSet();
        foreach (var w in all)
        {
            if (w.IsQuantized ? !linear.Contains(w) : w.Weight.dtype != dtype) return null;
            if (!w.Weight.is_contiguous() || w.Weight.requires_grad) return null;
            if (w.Bias is { } bias && (bias.dtype != dtype || !bias.is_contiguous())) return null;
        }
        if (rope.Cos.dtype != dtype || !rope.Cos.is_contiguous() || !rope.Sin.is_contiguous()) return null;
        var step = new ChatGlmDecodeStep(cfg, dtype, blocks, embeddings, finalNorm, head, rope, castBeforeWeight);
        if (step._layers.All(l => l.Qkv is not null && l.Dense is not null && l.GateUp is not null && l.Down is not null) && step._head is not null)
            return step;
        step.Dispose();
        return null;
    }

    private Projection? Bind(Weights w)
    {
        KernelSupport.RowKernel? kernel;
        KernelSupport.InputStep? prepare = null;
        long n, k;
        if (w.IsQuantized)
        {
            long inputs = w.Weight.shape[1];
            byte* scratch = (byte*)AllocBytes(CpuInt8Gemv.KernelScratchBytes(1, inputs));
            kernel = CpuInt8Gemv.TryKernel(w.Weight, w.WeightScale!, 1, scratch, out prepare, out n, out k);
        }
        else kernel = CpuGemv.TryKernel(w.Weight, 1, out n, out k);
        if (kernel is null) return null;
        float* x = _wide, y = _wideOut;
        return new Projection((r0, r1) => kernel(x, y, r0, r1), prepare, k, n, w.Bias is null ? null : Data(w.Bias));
    }

    /// <summary>
    /// Whether this step can run the next token: batch 1, one token, a plain cache with room, no adapters attached, no autograd.
    /// </summary>
    public bool Applies(Tensor inputIds, Tensor positionIds, KvCache? cache, Tensor? mask)
    {
        if (!Enabled || !CpuDecodeOps.Enabled || !CpuGemv.Enabled || _allocations.Count == 0) return false; // switched off, or disposed
        if (_int8 && (!CpuInt8Gemv.Enabled || _int8Mode != (CpuInt8Gemv.Int8Activations, CpuInt8Gemv.UseAvx512, CpuInt8Gemv.UseInt8DotKernel))) return false;
        if (cache is null || torch.is_grad_enabled()) return false;
        if (inputIds.NumberOfElements != 1 || positionIds.NumberOfElements != 1 || inputIds.dtype != ScalarType.Int64 ||
            positionIds.dtype != ScalarType.Int64 || inputIds.device_type != DeviceType.CPU || positionIds.device_type != DeviceType.CPU)
            return false;
        bool plain = cache.IsPlainSingleRow && mask is null && cache.Length < cache.Capacity;
        if (!plain && !(cache.IsLoneRaggedRow && LoneRowSeesItsPrefix(positionIds, cache, mask))) return false;
        foreach (var b in _blocks)
            if (b.Qkv.Adapter is not null || b.Dense.Adapter is not null || b.GateUp.Adapter is not null || b.Down.Adapter is not null) return false;
        return true;
    }

    /// <summary>
    /// The batch scheduler's step for a lone request (one active row): the token goes to row 0 at its position p, attending
    /// over positions 0 … p — true when the scheduler's mask [1, 1, 1, p + 1] shows exactly that (all true), so the fused step
    /// computes what the tensor path would (a lone stream on glm4-bench: 17–19 tok/s through the tensor path, 21–23 here).
    /// </summary>
    private static bool LoneRowSeesItsPrefix(Tensor positionIds, KvCache cache, Tensor? mask)
    {
        long position = *(long*)Data(positionIds), attend = cache.RaggedAttend;
        if (position + 1 != attend || attend > cache.Capacity) return false;
        if (mask is null) return true;
        if (mask.dtype != ScalarType.Bool || mask.device_type != DeviceType.CPU || !mask.is_contiguous() || mask.NumberOfElements != attend) return false;
        byte* m = Data(mask);
        for (long j = 0; j < attend; j++) if (m[j] == 0) return false;
        return true;
    }

    /// <summary>
    /// Logits [1, 1, V] of the next token, appending its keys and values to <paramref name="cache"/>; null when the step does
    /// not apply (<see cref="Applies"/>) or another thread is using this model's step (the buffers are per model).
    /// </summary>
    public Tensor? TryRun(Tensor inputIds, Tensor positionIds, KvCache? cache, Tensor? mask)
    {
        if (!Applies(inputIds, positionIds, cache, mask) || !Monitor.TryEnter(this)) return null;
        try
        {
            var logits = Run(inputIds, positionIds, cache!);
            _tokensRun++;
            return logits;
        }
        finally { Monitor.Exit(this); }
    }

    private Tensor Run(Tensor inputIds, Tensor positionIds, KvCache cache)
    {
        long token = *(long*)Data(inputIds), position = *(long*)Data(positionIds);
        if ((ulong)token >= (ulong)_vocab) throw new GlmException($"token id {token} is outside the vocabulary (0..{_vocab - 1}).");
        if ((ulong)position >= (ulong)_ropePositions) throw new GlmException($"position {position} is beyond the rotary table ({_ropePositions} positions).");
        int threads = ThreadCount(CpuGemv.Threads);
        long t = DecodeProfiler.Start();
        Buffer.MemoryCopy(_embeddings + token * _hidden * _size, _x, _hidden * _size, _hidden * _size);
        DecodeProfiler.Stop(DecodeSection.Embedding, t);

        int nh = _cfg.NumHeads, g = _cfg.NumKvHeads, d = _cfg.HeadDim;
        // A plain cache appends at its length; the scheduler's lone row writes row 0 at the token's own position.
        bool lone = cache.IsLoneRaggedRow;
        long writeAt = lone ? position : cache.Length, seen = writeAt + 1;
        for (int i = 0; i < _layers.Length; i++)
        {
            var layer = _layers[i];
            Norm(_x, layer.InputNorm, _h);
            Project(layer.Qkv!, _h, _qkv, threads, DecodeSection.QkvProjection);

            t = DecodeProfiler.Start();
            CpuDecodeOps.RotateRow(_dtype, _qkv, nh + g, d, _cfg.RotaryDim / 2, _cos, _sin, position);
            DecodeProfiler.Stop(DecodeSection.Rotary, t);

            t = DecodeProfiler.Start();
            byte* keys = cache.KeyData(i), values = cache.ValueData(i);
            long capacity = cache.Capacity;
            CpuDecodeOps.WriteTokenRow(keys, _qkv + nh * d * _size, d, g, capacity, d, _size, writeAt);
            CpuDecodeOps.WriteTokenRow(values, _qkv + (nh + g) * d * _size, d, g, capacity, d, _size, writeAt);
            DecodeProfiler.Stop(DecodeSection.KvCacheAppend, t);

            t = DecodeProfiler.Start();
            CpuDecodeOps.AttendCacheRow(_dtype, _qkv, keys, values, _context, nh, g, d, capacity, seen, layer.Scale);
            DecodeProfiler.Stop(DecodeSection.Attention, t);

            Project(layer.Dense!, _context, _sublayer, threads, DecodeSection.OutputProjection);
            if (layer.PostSelfAttentionNorm != null) Norm(_sublayer, layer.PostSelfAttentionNorm, _sublayer);
            Residual();

            Norm(_x, layer.PostAttentionNorm, _h);
            Project(layer.GateUp!, _h, _gateUp, threads, DecodeSection.MlpProjections);
            t = DecodeProfiler.Start();
            CpuDecodeOps.SwiGluRow(_dtype, _gateUp, _mlp, _ffn);
            DecodeProfiler.Stop(DecodeSection.SwiGlu, t);
            Project(layer.Down!, _mlp, _sublayer, threads, DecodeSection.MlpProjections);
            if (layer.PostMlpNorm != null) Norm(_sublayer, layer.PostMlpNorm, _sublayer);
            Residual();
        }
        if (!lone) cache.Length += 1;

        Norm(_x, _finalNorm, _h);
        t = DecodeProfiler.Start();
        WidenInto(_h, _dtype, _hidden, _wide);
        RunKernel(_head!, threads);
        var logits = FinishRows(_wideOut, 1, _vocab, null, _dtype, new long[] { 1, 1, _vocab });
        DecodeProfiler.Stop(DecodeSection.OutputHead, t);
        return logits;
    }

    private void Norm(byte* x, byte* weight, byte* y)
    {
        long t = DecodeProfiler.Start();
        CpuDecodeOps.RmsNormRow(_dtype, x, weight, y, _hidden, _epsilon, _castBeforeWeight);
        DecodeProfiler.Stop(DecodeSection.Norm, t);
    }

    /// <summary>y = round(x·Wᵀ + b): widen, the row kernel over threads, then bias and rounding in one pass.</summary>
    private void Project(Projection p, byte* x, byte* y, int threads, DecodeSection section)
    {
        long t = DecodeProfiler.Start();
        WidenInto(x, _dtype, p.Inputs, _wide);
        RunKernel(p, threads);
        FinishRowsInto(_wideOut, 1, p.Outputs, p.Bias, _dtype, _dtype, y);
        DecodeProfiler.Stop(section, t);
    }

    private void RunKernel(Projection p, int threads) => RunRowKernel(_wide, p.Outputs, threads, p.Run, p.Prepare);

    /// <summary>x = round(x + sublayer), as libtorch's half-precision add (fp32 sum, one rounding).</summary>
    private void Residual()
    {
        long t = DecodeProfiler.Start();
        CpuDecodeOps.AddInPlace(_dtype, _x, _sublayer, _hidden);
        DecodeProfiler.Stop(DecodeSection.Residual, t);
    }

    private byte* Alloc(long elements) => (byte*)AllocBytes(elements * _size);

    private void* AllocBytes(long bytes)
    {
        void* p = NativeMemory.AlignedAlloc((nuint)Math.Max(64, bytes), 64);
        _allocations.Add((IntPtr)p);
        return p;
    }

    /// <summary>Frees the buffers (the model's weights are not owned).</summary>
    public void Dispose()
    {
        lock (this)
        foreach (var p in _allocations) NativeMemory.AlignedFree((void*)p);
        _allocations.Clear();
    }
}
