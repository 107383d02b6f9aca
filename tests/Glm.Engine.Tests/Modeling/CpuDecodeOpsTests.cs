using Glm.Engine.Generation;
using Glm.Engine.Modeling;
using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.Tests.Modeling;

/// <summary>The managed decode steps against the libtorch op sequences they replace, in bf16 and fp32.</summary>
[Collection("KernelSwitches")] // tests flip CpuDecodeOps.Enabled
public class CpuDecodeOpsTests
{

    [Theory]
    [InlineData(ScalarType.BFloat16, false)]
    [InlineData(ScalarType.BFloat16, true)]
    [InlineData(ScalarType.Float16, false)]
    [InlineData(ScalarType.Float16, true)]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.BFloat16, false, 300, 1536)] // a prompt: 600 rows, split across threads
    public void RmsNormMatchesTheReference(ScalarType dtype, bool castBeforeWeight, int tokens = 1, int hidden = 320)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(11);
        var x = (randn(3, tokens, hidden) * 2).to(dtype);
        var w = (1 + 0.1 * randn(hidden)).to(dtype);
        var expected = ChatGlmModel.ReferenceRmsNorm(x, w, 1.5625e-7, castBeforeWeight);
        var actual = CpuDecodeOps.TryRmsNorm(x, w, 1.5625e-7, castBeforeWeight);
        AssertClose(expected, actual, dtype);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16, 300)] // a prompt: 600 rows with expanded [b, s] positions, split across threads
    [InlineData(ScalarType.Float16, 7)]
    public void RotaryInPlaceEqualsTheReferenceBitForBit(ScalarType dtype, int tokens = 1)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(12);
        const int heads = 4, kvHeads = 2, d = 128, rotary = 64;
        using var rope = new RotaryEmbedding(rotary, 10000.0 * 500, 512, dtype, CPU);
        var qkv = (randn(2, tokens, (heads + 2 * kvHeads) * d) * 3).to(dtype);
        var positions = tokens == 1
            ? tensor(new long[] { 5, 300 }, new long[] { 2, 1 })
            : arange(200, 200 + tokens, dtype: ScalarType.Int64).view(1, tokens).expand(2, tokens); // as a prompt's positions
        var (cos, sin) = rope.Gather(positions);
        var q = rope.Apply(qkv.narrow(2, 0, heads * d).view(2, tokens, heads, d).transpose(1, 2), cos, sin);
        var k = rope.Apply(qkv.narrow(2, heads * d, kvHeads * d).view(2, tokens, kvHeads, d).transpose(1, 2), cos, sin);
        var v = qkv.narrow(2, (heads + kvHeads) * d, kvHeads * d).clone();

        Assert.True(rope.TryApplyInPlace(qkv, heads + kvHeads, d, positions));
        Assert.True(q.eq(qkv.narrow(2, 0, heads * d).view(2, tokens, heads, d).transpose(1, 2)).all().item<bool>());
        Assert.True(k.eq(qkv.narrow(2, heads * d, kvHeads * d).view(2, tokens, kvHeads, d).transpose(1, 2)).all().item<bool>());
        Assert.True(v.eq(qkv.narrow(2, (heads + kvHeads) * d, kvHeads * d)).all().item<bool>()); // V is not rotated
        var beyond = positions.contiguous().clone();
        beyond.view(-1)[2 * tokens - 1].fill_(512); // the last row's position is past the table
        var before = qkv.clone();
        Assert.False(rope.TryApplyInPlace(qkv, heads + kvHeads, d, beyond));
        Assert.True(before.eq(qkv).all().item<bool>()); // nothing rotated
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float32)]
    public void SwiGluMatchesTheReference(ScalarType dtype)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(13);
        var gateUp = (randn(2, 1, 600) * 3).to(dtype);
        var expected = F.silu(gateUp.narrow(2, 0, 300)) * gateUp.narrow(2, 300, 300);
        AssertClose(expected, CpuDecodeOps.TrySwiGlu(gateUp, 300), dtype);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 7)]
    [InlineData(ScalarType.Float16, 7)]
    [InlineData(ScalarType.Float32, 7)]
    [InlineData(ScalarType.BFloat16, 3000)] // long enough to go parallel
    [InlineData(ScalarType.BFloat16, 3000, 1, 1)] // one group for two threads: its heads are split between them
    [InlineData(ScalarType.Float32, 3000, 1, 1, 48)] // d not a multiple of 32 (bf16 at d = 48: libtorch's own bf16 matmul strays)
    [InlineData(ScalarType.Float32, 1000, 1, 2, 16)]
    [InlineData(ScalarType.BFloat16, 100, 9)] // more rows than the GEMV kernels take: continuous batching at 9+ streams
    public void AttentionMatchesTheReference(ScalarType dtype, int cached, int b = 2, int groups = 2, int d = 64)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return; // the kernel declines; the reference runs
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(14);
        const int heads = 8;
        float scale = 1f / MathF.Sqrt(d);
        var q = (randn(b, 1, heads, d) * 2).to(dtype).transpose(1, 2); // a strided view, as in the model
        var cache = (randn(new long[] { 2, b, groups, cached + 5, d }) * 2).to(dtype);
        var k = cache[0].narrow(2, 0, cached);
        var v = cache[1].narrow(2, 0, cached);

        var scores = matmul(q.reshape(b, groups, heads / groups, d), k.transpose(2, 3)).mul_(scale).to(ScalarType.Float32);
        var expected = matmul(scores.softmax(-1).to(dtype), v).reshape(b, heads, 1, d);
        AssertClose(expected, CpuDecodeOps.TryAttention(q, k, v, scale), dtype);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 37, 0)]
    [InlineData(ScalarType.Float16, 20, 0)]
    [InlineData(ScalarType.Float32, 40, 0)]
    [InlineData(ScalarType.BFloat16, 24, 13)] // a prompt after cached positions: query i sees keys 0 … 13 + i
    [InlineData(ScalarType.Float32, 33, 5, 16, 2, 64)] // 8 heads per group: a full and a padded tile of 6
    [InlineData(ScalarType.Float32, 21, 3, 6, 2, 48)] // d not a multiple of 64: the per-row loop (fp32: libtorch's bf16 matmul strays at d = 48)
    [InlineData(ScalarType.Float32, 70, 0, 12, 2, 128)] // GLM-4's 6 heads per group at d = 128, keys past one 64-block (bf16: the
    // reference's own bf16 matmul strays at d = 128 as at 48, for the per-row loop too)
    public void PrefillAttentionMatchesTheCausalReference(ScalarType dtype, int s, int cached, int heads = 6, int groups = 2, int d = 64)
    {
        foreach (long tileRows in new long[] { 2, long.MaxValue }) // register tiles (d a multiple of 64), then the per-row loop
        {
            long before = CpuDecodeOps.PromptTileRows;
            CpuDecodeOps.PromptTileRows = tileRows;
            try { PrefillAttentionCase(dtype, s, cached, heads, groups, d); }
            finally { CpuDecodeOps.PromptTileRows = before; }
        }
    }

    private static void PrefillAttentionCase(ScalarType dtype, int s, int cached, int heads, int groups, int d)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(16);
        int t = s + cached;
        float scale = 1f / MathF.Sqrt(d);
        var q = (randn(1, s, heads, d) * 2).to(dtype).transpose(1, 2); // positions-major, as the fused QKV output is
        var cache = (randn(new long[] { 2, 1, groups, t + 5, d }) * 2).to(dtype);
        var k = cache[0].narrow(2, 0, t);
        var v = cache[1].narrow(2, 0, t);

        // The decode branch's roundings, row by row over each query's causal prefix.
        var scores = matmul(q.reshape(1, groups, heads / groups * s, d), k.transpose(2, 3)).mul_(scale).to(ScalarType.Float32)
            .view(1, groups, heads / groups, s, t);
        var visible = ones(new long[] { s, t }, dtype: ScalarType.Bool).tril(cached);
        scores = scores.masked_fill(visible.logical_not(), float.NegativeInfinity);
        var expected = matmul(scores.softmax(-1).to(dtype).view(1, groups, heads / groups * s, t), v).view(1, heads, s, d);
        var actual = CpuDecodeOps.TryPrefillAttention(q, k, v, scale);
        AssertClose(expected, actual, dtype);
        Assert.Equal(new long[] { 1, s, heads, d }, actual!.transpose(1, 2).contiguous().shape); // [1, s, heads, d] underneath
        Assert.True(actual.transpose(1, 2).is_contiguous());

        Assert.Null(CpuDecodeOps.TryPrefillAttention(q.expand(2, heads, s, d), k.expand(2, groups, t, d), v.expand(2, groups, t, d), scale)); // batch > 1
    }

    [Fact]
    public void AttentionWithARaggedPrefixMaskMatchesTheMaskedReference()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(15);
        const int b = 3, heads = 4, groups = 2, d = 32, t = 9;
        float scale = 1f / MathF.Sqrt(d);
        var q = (randn(b, 1, heads, d) * 2).to(ScalarType.BFloat16).transpose(1, 2);
        var k = (randn(b, groups, t, d) * 2).to(ScalarType.BFloat16);
        var v = (randn(b, groups, t, d) * 2).to(ScalarType.BFloat16);
        var visible = new bool[b * t];
        int[] lengths = [9, 4, 1];
        for (int r = 0; r < b; r++) Array.Fill(visible, true, r * t, lengths[r]);
        var mask = tensor(visible, new long[] { b, 1, 1, t });

        var scores = matmul(q.reshape(b, groups, heads / groups, d), k.transpose(2, 3)).mul_(scale).to(ScalarType.Float32);
        scores = scores.masked_fill(mask.view(b, 1, 1, t).logical_not(), float.NegativeInfinity);
        var expected = matmul(scores.softmax(-1).to(ScalarType.BFloat16), v).reshape(b, heads, 1, d);
        AssertClose(expected, CpuDecodeOps.TryAttention(q, k, v, scale, mask), ScalarType.BFloat16);

        visible[1] = false; // row 0 is no longer a prefix: the kernel declines and the caller uses libtorch
        Assert.Null(CpuDecodeOps.TryAttention(q, k, v, scale, tensor(visible, new long[] { b, 1, 1, t })));
    }

    [Fact]
    public void TokenRowsLandWhereScatterPutsThem()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        manual_seed(16);
        var expected = randn(4, 2, 10, 8).to(ScalarType.BFloat16);
        var actual = expected.clone();
        var qkv = randn(3, 1, 5 * 8).to(ScalarType.BFloat16);
        var source = qkv.narrow(2, 8, 2 * 8).view(3, 1, 2, 8).transpose(1, 2); // [rows, g, 1, d], strided like the model's K
        var positions = tensor(new long[] { 7, 0, 9 });
        var index = positions.view(3, 1, 1, 1).expand(3, 2, 1, 8);
        expected.narrow(0, 0, 3).scatter_(2, index, source);

        Assert.True(CpuDecodeOps.TryWriteTokenRows(actual, source, positions, 3));
        Assert.True(expected.eq(actual).all().item<bool>());
        Assert.False(CpuDecodeOps.TryWriteTokenRows(actual, source, tensor(new long[] { 7, 0, 10 }), 3)); // past the capacity
    }

    [Fact]
    public unsafe void VectorBf16RoundingEqualsTheScalarRounding()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        var random = new Random(17);
        var values = new float[4096];
        for (int i = 0; i < values.Length; i++)
        {
            uint bits = (uint)random.Next() ^ ((uint)random.Next() << 16);
            if (i % 4 == 0) bits = (bits & 0xFFFF0000u) | 0x8000u; // exact ties: round half to even
            values[i] = BitConverter.UInt32BitsToSingle(bits);
            if (float.IsNaN(values[i]) || float.IsInfinity(values[i])) values[i] = i;
        }
        var stored = new ushort[values.Length];
        fixed (float* v = values)
        fixed (ushort* o = stored)
            for (int i = 0; i < values.Length; i += 16)
            {
                var vector = System.Runtime.Intrinsics.Vector512.Load(v + i);
                KernelSupport.StoreBf16(o + i, vector);
                var widened = KernelSupport.RoundBf16(vector);
                for (int j = 0; j < 16; j++) Assert.Equal(KernelSupport.RoundBf16(values[i + j]), widened[j]);
            }
        for (int i = 0; i < values.Length; i++) Assert.Equal(KernelSupport.FloatToBf16(values[i]), stored[i]);
    }

    [Fact]
    public unsafe void VectorExpIsWithinTwoUlpOfMathFExp()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        var random = new Random(23);
        var values = new float[16 * 1024];
        for (int i = 0; i < values.Length; i++)
            values[i] = i % 3 == 0 ? (float)(random.NextDouble() * 175.6 - 87.3) : (float)(random.NextDouble() * 40 - 20);
        values[0] = 0; values[1] = -87.3f; values[2] = 88.3f; values[3] = 1e-7f;
        fixed (float* v = values)
            for (int i = 0; i < values.Length; i += 16)
            {
                var e = KernelSupport.Exp(System.Runtime.Intrinsics.Vector512.Load(v + i));
                for (int j = 0; j < 16; j++)
                {
                    double expected = Math.Exp(values[i + j]);
                    double ulps = Math.Abs(e[j] - expected) / (MathF.BitIncrement((float)expected) - (float)expected);
                    Assert.True(ulps <= 2, $"exp({values[i + j]:R}) = {e[j]:R}, expected {expected:R} ({ulps:F1} ulp)");
                }
            }
        var clamped = KernelSupport.Exp(System.Runtime.Intrinsics.Vector512.Create(-1000f));
        Assert.True(clamped[0] >= 0 && clamped[0] < 1.2e-38f);
    }

    [Fact]
    public unsafe void VectorFp16RoundingEqualsHalfConversion()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        var random = new Random(19);
        var values = new List<float> { 0f, -0f, 65504f, 65519.99f, 65520f, -65520f, 1e30f, float.PositiveInfinity, float.NegativeInfinity,
            float.NaN, 6.1035156e-5f, 6.1035152e-5f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, 1e-45f, -3e-6f };
        while (values.Count < 8192)
        {
            int kind = values.Count % 4;
            float v = kind switch
            {
                0 => (float)((random.NextDouble() - 0.5) * 200),              // ordinary activations
                1 => (float)((random.NextDouble() - 0.5) * 2e-4),              // around the subnormal range
                2 => BitConverter.UInt32BitsToSingle(0x38000000u + (uint)random.Next(0x10000000) & ~0xFFFu | 0x1000u), // exact ties
                _ => BitConverter.UInt32BitsToSingle((uint)random.Next() ^ ((uint)random.Next() << 16)),
            };
            values.Add(v);
        }
        var input = values.ToArray();
        var stored = new ushort[input.Length];
        fixed (float* v = input)
        fixed (ushort* o = stored)
            for (int i = 0; i < input.Length; i += 16)
            {
                var vector = System.Runtime.Intrinsics.Vector512.Load(v + i);
                KernelSupport.StoreHalf(o + i, vector);
                var widened = KernelSupport.RoundHalf(vector);
                for (int j = 0; j < 16; j++)
                    if (Half.IsFinite((Half)input[i + j])) Assert.Equal((float)(Half)input[i + j], widened[j]);
            }
        for (int i = 0; i < input.Length; i++)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)input[i]);
            if (Half.IsNaN((Half)input[i])) Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(stored[i])), $"{input[i]}");
            else Assert.True(expected == stored[i], $"{input[i]:R}: expected 0x{expected:X4}, got 0x{stored[i]:X4}");
        }
    }

    [Fact]
    public void GreedyDecodingGivesTheSameTokensWithAndWithoutTheKernels()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = "bf16", Device = "cpu", Seed = 21 });
        int[] prompt = [5, 17, 99, 3, 250, 41, 7];
        var options = new GenerationOptions { MaxNewTokens = 24, StopTokenIds = Array.Empty<int>() };
        try
        {
            CpuDecodeOps.Enabled = true;
            var fused = model.GenerateIdsAsync(prompt, options).GetAwaiter().GetResult();
            CpuDecodeOps.Enabled = false;
            var reference = model.GenerateIdsAsync(prompt, options).GetAwaiter().GetResult();
            Assert.Equal(24, fused.Count);
            Assert.Equal(reference, fused);
        }
        finally { CpuDecodeOps.Enabled = true; }
    }

    /// <summary>fp32: within 1e-5 relative to the largest value. bf16/fp16: at most one step of the format apart, and on ≤ 2 % of
    /// the elements (differences come only from fp32 summation order or exp before the final rounding).</summary>
    private static void AssertClose(Tensor expected, Tensor? actual, ScalarType dtype)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.shape, actual!.shape);
        Assert.Equal(dtype, actual.dtype);
        var e = expected.to(ScalarType.Float32);
        var a = actual.to(ScalarType.Float32);
        var diff = (a - e).abs();
        if (dtype == ScalarType.Float32)
        {
            double rel = diff.max().item<float>() / e.abs().max().item<float>();
            Assert.True(rel < 1e-5, $"relative error {rel}");
            return;
        }
        double ulp = dtype == ScalarType.BFloat16 ? 1.0 / 128 : 1.0 / 1024; // relative spacing of the format's values
        var allowed = e.abs() * (2 * ulp) + 1e-30f;
        Assert.True(diff.le(allowed).all().item<bool>(), $"max difference {diff.max().item<float>()}");
        double differing = diff.gt(0).sum().item<long>() / (double)e.NumberOfElements;
        Assert.True(differing <= 0.02, $"{differing:P1} of the elements differ");
    }
}
