using System.Runtime.InteropServices;
using Glm.Engine.Modeling.Kernels;
using Glm.Engine.Modeling.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>
/// The AVX512_VNNI machine code of <see cref="Int8DotKernel"/> (int8 weights × int16-quantized activations at decode) against a scalar replay of the order of
/// operations its summary states, bit for bit; the batch independence continuous batching relies on; and the error bound
/// against the exact product. On CPUs without AVX512_VNNI these return at once (the loops cannot run there).
/// </summary>
[Collection("KernelSwitches")] // flips CpuInt8Gemv.Int8Activations
public unsafe class Int8DotKernelTests
{
    [Fact]
    public void TakesRowLengthsThatAreMultiplesOf128WithTheStatedBlocks()
    {
        if (!Int8DotKernel.IsSupported) return;
        Assert.False(Int8DotKernel.Takes(64));
        Assert.False(Int8DotKernel.Takes(192));
        Assert.True(Int8DotKernel.Takes(384));
        Assert.Equal(128, Int8DotKernel.BlockColumns(384));
        Assert.Equal(256, Int8DotKernel.BlockColumns(1536));
        Assert.Equal(128, Int8DotKernel.BlockColumns(13696)); // ChatGLM3 / GLM-4-9B's dense_4h_to_h
    }

    [Theory]
    [InlineData(1536)] // six 256-column blocks
    [InlineData(384)]  // three 128-column blocks
    public void QuantizeWritesTheStatedValuesAndScales(int k)
    {
        if (!Int8DotKernel.IsSupported) return;
        const int rows = 3;
        float[] x = Activations(rows, k, seed: k);
        using var buffer = new NativeBuffer(Int8DotKernel.ActivationBytes(rows, k));
        fixed (float* xp = x) Int8DotKernel.Quantize(xp, rows, k, buffer.Pointer);
        int block = Int8DotKernel.BlockColumns(k);
        for (int m = 0; m < rows; m++)
        {
            short* q = Int8DotKernel.Values(buffer.Pointer, k, m);
            float* d = Int8DotKernel.Scales(buffer.Pointer, k, m);
            for (int b = 0; b < k / block; b++)
            {
                float amax = 0;
                for (int i = 0; i < block; i++) amax = MathF.Max(amax, MathF.Abs(x[m * k + b * block + i]));
                Assert.Equal(amax / 32767f, d[b]);
                float inv = amax > 0 ? 32767f / amax : 0f;
                for (int i = 0; i < block; i++)
                    Assert.Equal((int)MathF.Round(x[m * k + b * block + i] * inv, MidpointRounding.ToEven), q[b * block + i]);
            }
        }
    }

    [Theory]
    [InlineData(1, 1536, 200)]  // three pairs of 256-column blocks
    [InlineData(1, 1280, 70)]   // five blocks: the unpaired last one goes to the first accumulator
    [InlineData(1, 384, 65)]    // 128-column blocks, three of them
    [InlineData(2, 1536, 130)]
    [InlineData(3, 384, 70)]    // four-row loop with one repeated slot that is not stored
    [InlineData(4, 4608, 65)]
    [InlineData(5, 1536, 200)]  // a group of four and a single row, over 64-row L2 blocks
    [InlineData(7, 1280, 129)]
    [InlineData(16, 1536, 200)] // 16 streams
    [InlineData(13, 384, 300)]
    [InlineData(6, 4608, 130)]  // K-blocks of 2,560 and 2,048 columns: the four-row loop carries its accumulators
    [InlineData(3, 3200, 70)]   // 128-column blocks, K-blocks of 1,792 and 1,408 (an odd block count in the last)
    [InlineData(16, 4608, 65)]
    public void RowsEqualTheScalarReplayBitForBit(int rows, int k, int n)
    {
        if (!Int8DotKernel.IsSupported) return;
        var rnd = new Random(rows * 1000 + k + n);
        sbyte[] w = new sbyte[n * k];
        for (int i = 0; i < w.Length; i++) w[i] = (sbyte)rnd.Next(-128, 128); // −128 too (checkpoints from elsewhere)
        float[] s = Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() * 0.02 + 1e-4)).ToArray();
        float[] x = Activations(rows, k, seed: n);
        using var buffer = new NativeBuffer(Int8DotKernel.ActivationBytes(rows, k));
        float[] y = Enumerable.Repeat(float.NaN, rows * n).ToArray();
        const int r0 = 3; // a thread's row range: the rows outside it stay untouched
        int r1 = n - 5;
        fixed (float* xp = x, sp = s, yp = y)
        fixed (sbyte* wp = w)
        {
            Int8DotKernel.Quantize(xp, rows, k, buffer.Pointer);
            Int8DotKernel.Rows(wp, sp, buffer.Pointer, yp, rows, k, n, r0, r1);
        }
        for (int m = 0; m < rows; m++)
            for (int r = 0; r < n; r++)
            {
                float got = y[m * n + r];
                if (r < r0 || r >= r1) { Assert.True(float.IsNaN(got), $"row {m}, output {r} outside [{r0}, {r1}) was written"); continue; }
                float expected = Replay(w.AsSpan(r * k, k), s[r], buffer.Pointer, k, m);
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got),
                    $"row {m}, output {r}: kernel {got} vs replay {expected}");
            }
    }

    /// <summary>A stream's outputs are bit for bit the same alone and with up to 15 other streams in its step.</summary>
    [Fact]
    public void AStreamsOutputsDoNotDependOnItsBatch()
    {
        if (!Int8DotKernel.IsSupported) return;
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(5);
        const int k = 1280, n = 300;
        var (q, scale) = Int8Quantizer.Quantize(randn(n, k));
        var x = tensor(Activations(16, k, seed: 9)).view(16, k);
        var bias = randn(n);
        bool saved = CpuInt8Gemv.Int8Activations;
        try
        {
            CpuInt8Gemv.Int8Activations = true;
            var alone = Enumerable.Range(0, 16).Select(m => CpuInt8Gemv.TryLinear(x[m].unsqueeze(0), q, scale, bias)!).ToArray();
            foreach (int rows in new[] { 2, 3, 4, 5, 8, 13, 16 })
            {
                var together = CpuInt8Gemv.TryLinear(x[TensorIndex.Slice(0, rows)], q, scale, bias)!;
                for (int m = 0; m < rows; m++)
                    Assert.True(together[m].eq(alone[m][0]).all().item<bool>(), $"{rows} rows, row {m}: max |difference| {(together[m] - alone[m][0]).abs().max().item<float>()}");
            }
        }
        finally { CpuInt8Gemv.Int8Activations = saved; }
    }

    /// <summary>
    /// Stated bound against the exact product with the dequantized weights: each activation moves by at most d_b/2 =
    /// max|x_b|/65534, so over blocks of L columns ‖e‖² ≤ Σ_b L·max|x_b|²/65534² ≤ ‖x‖²·L/65534², and |error| ≤
    /// (√L/65534)·‖x‖·‖w_row‖ (Cauchy–Schwarz; 2.4e-4 for L = 256), plus fp32 rounding of the sums (≈ 1e-6 relative).
    /// Typical errors are far smaller; the error is also not zero (the quantized path ran).
    /// </summary>
    [Theory]
    [InlineData(1, 1536)]
    [InlineData(4, 4608)]
    [InlineData(6, 384)]
    public void ErrorIsWithinTheStatedBound(int rows, int k)
    {
        if (!Int8DotKernel.IsSupported) return;
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(k + rows);
        var (worst, largest) = Int8KernelTests.QuantizedActivationError(tensor(Activations(rows, k, seed: rows)).view(rows, k), k, dotKernel: true);
        Assert.True(worst <= Math.Sqrt(Int8DotKernel.BlockColumns(k)) / 65534 + 1e-5, $"max |error| / (‖x‖·‖w‖) = {worst}");
        Assert.True(largest > 0, "quantized activations should change the result a little");
    }

    /// <summary>
    /// The kernel's stated order for one output: per block, the exact integer lane sums Σ w·xq (lane j of a 32-column group
    /// holds columns 2j and 2j + 1) converted to fp32 and FMA'd with d_b into accumulator (block index mod 2); the two
    /// accumulators added lane by lane; the 16 lanes summed as halves (8 + 8, 4 + 4, then [0]+[2], [1]+[3], then the two);
    /// times the row's scale.
    /// </summary>
    private static float Replay(ReadOnlySpan<sbyte> w, float rowScale, byte* buffer, int k, int m)
    {
        short* q = Int8DotKernel.Values(buffer, k, m);
        float* d = Int8DotKernel.Scales(buffer, k, m);
        int block = Int8DotKernel.BlockColumns(k);
        var acc = new float[2, 16];
        for (int b = 0; b < k / block; b++)
        {
            var lanes = new int[16];
            for (int g = b * block; g < (b + 1) * block; g += 32)
                for (int j = 0; j < 16; j++)
                    lanes[j] += w[g + 2 * j] * q[g + 2 * j] + w[g + 2 * j + 1] * q[g + 2 * j + 1];
            for (int j = 0; j < 16; j++) acc[b % 2, j] = MathF.FusedMultiplyAdd(lanes[j], d[b], acc[b % 2, j]);
        }
        var v = new float[16];
        for (int j = 0; j < 16; j++) v[j] = acc[0, j] + acc[1, j];
        var h8 = new float[8];
        for (int j = 0; j < 8; j++) h8[j] = v[j] + v[j + 8];
        var h4 = new float[4];
        for (int j = 0; j < 4; j++) h4[j] = h8[j] + h8[j + 4];
        return ((h4[0] + h4[2]) + (h4[1] + h4[3])) * rowScale;
    }

    /// <summary>Activations [rows, k] as real ones come: Gaussian with an outlier column, an all-zero block (d = 0) and a block of
    /// tiny values.</summary>
    private static float[] Activations(int rows, int k, int seed)
    {
        var rnd = new Random(seed);
        int block = Int8DotKernel.BlockColumns(k); // the second block all zero, the third tiny
        var x = new float[rows * k];
        for (int m = 0; m < rows; m++)
            for (int i = 0; i < k; i++)
            {
                double g = Math.Sqrt(-2 * Math.Log(1 - rnd.NextDouble())) * Math.Cos(2 * Math.PI * rnd.NextDouble());
                x[m * k + i] = i == 3 ? (float)(g * 40) : i / block == 1 ? 0f : i / block == 2 ? (float)(g * 1e-3) : (float)g;
            }
        return x;
    }

    private sealed class NativeBuffer(long bytes) : IDisposable
    {
        public byte* Pointer { get; } = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        public void Dispose() => NativeMemory.AlignedFree(Pointer);
    }
}
