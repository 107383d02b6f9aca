using Glm.Engine.Modeling.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

[Collection("KernelSwitches")] // flips Bf16DotKernel.Enabled
public unsafe class Bf16DotKernelTests
{
    private static (ushort[] W, float[] X) Random(int rows, int k, int seed)
    {
        var rng = new Random(seed);
        var w = new ushort[rows * k];
        var x = new float[k];
        for (int i = 0; i < w.Length; i++) w[i] = KernelSupport.FloatToBf16((float)(rng.NextDouble() * 2 - 1));
        for (int i = 0; i < k; i++) x[i] = KernelSupport.RoundBf16((float)(rng.NextDouble() * 8 - 4));
        return (w, x);
    }

    [Theory]
    [InlineData(192)]
    [InlineData(4608)] // three K-blocks of 1,536
    [InlineData(2112)] // two unequal K-blocks (1,088 + 1,024)
    public void RowsEqualTheExactDotProductsUpToFp32Summation(int k)
    {
        if (!Bf16DotKernel.IsSupported) return; // no AVX512_BF16: CpuGemv never calls it
        const int rows = 37;
        var (w, x) = Random(rows, k, 1);
        var y = new float[rows];
        Array.Fill(y, float.NaN);
        fixed (ushort* wp = w) fixed (float* xp = x) fixed (float* yp = y)
        {
            Assert.True(Bf16DotKernel.TryRows(wp, xp, yp, k, 5, 30));
        }
        for (int r = 0; r < rows; r++)
        {
            if (r < 5 || r >= 30) { Assert.True(float.IsNaN(y[r]), $"row {r} outside the range was written"); continue; }
            double exact = 0, magnitude = 0;
            for (int i = 0; i < k; i++)
            {
                double p = (double)KernelSupport.Bf16ToFloat(w[r * k + i]) * x[i];
                exact += p;
                magnitude += Math.Abs(p);
            }
            Assert.True(Math.Abs(y[r] - exact) <= 1e-6 * magnitude, $"row {r}: {y[r]} vs {exact}");
        }
    }

    [Fact]
    public void LongRowsSplitIntoEqualKBlocksOfWholeChunks()
    {
        foreach (var (k, block) in new (long, long)[] { (64, 64), (1536, 1536), (2048, 2048), (2112, 1088), (4096, 2048), (4608, 1536), (13696, 1984) })
        {
            Assert.Equal(block, Bf16DotKernel.BlockInputs(k));
            Assert.True(block % 64 == 0 && block <= Bf16DotKernel.MaxBlockInputs, $"k = {k}: block {block}");
        }
    }

    [Fact]
    public void AnInputThatIsNotBf16IsLeftToTheFp32Loop()
    {
        if (!Bf16DotKernel.IsSupported) return;
        var (w, x) = Random(4, 64, 2);
        x[17] = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(x[17]) | 1); // one bit below bf16 precision
        var y = new float[4];
        fixed (ushort* wp = w) fixed (float* xp = x) fixed (float* yp = y)
            Assert.False(Bf16DotKernel.TryRows(wp, xp, yp, 64, 0, 4));
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void TakesOnlyWholeBlocksOfSixtyFour()
    {
        Assert.False(Bf16DotKernel.Takes(96));
        Assert.False(Bf16DotKernel.Takes(0));
        Assert.False(Bf16DotKernel.Takes(Bf16DotKernel.MaxInputs + 64));
        Assert.Equal(Bf16DotKernel.IsSupported, Bf16DotKernel.Takes(1536));
        bool before = Bf16DotKernel.Enabled;
        try
        {
            Bf16DotKernel.Enabled = false;
            Assert.False(Bf16DotKernel.Takes(1536));
        }
        finally { Bf16DotKernel.Enabled = before; }
    }

    [Fact]
    public void CpuGemvOnBf16RowsAgreesWithTheManagedLoop()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!CpuGemv.Enabled || !Bf16DotKernel.IsSupported) return;
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(3);
        var w = randn(300, 1536).to(ScalarType.BFloat16);
        var x = randn(1, 1, 1536).to(ScalarType.BFloat16);
        bool before = Bf16DotKernel.Enabled;
        try
        {
            Bf16DotKernel.Enabled = true;
            var dot = CpuGemv.TryLinear(x.to(ScalarType.Float32), w, null)!;
            Bf16DotKernel.Enabled = false;
            var managed = CpuGemv.TryLinear(x.to(ScalarType.Float32), w, null)!;
            var exact = torch.nn.functional.linear(x.to(ScalarType.Float64), w.to(ScalarType.Float64));
            double scale = exact.abs().max().item<double>();
            Assert.True((dot.to(ScalarType.Float64) - exact).abs().max().item<double>() < 1e-5 * scale);
            Assert.True((managed.to(ScalarType.Float64) - exact).abs().max().item<double>() < 1e-5 * scale);
            // The kernel ran: the GEMV equals its rows bit for bit (the managed loop sums in another order).
            var wBits = w.to(ScalarType.Float32).data<float>().ToArray().Select(KernelSupport.FloatToBf16).ToArray();
            var xValues = x.to(ScalarType.Float32).data<float>().ToArray();
            var rows = new float[300];
            fixed (ushort* wp = wBits) fixed (float* xp = xValues) fixed (float* yp = rows)
                Assert.True(Bf16DotKernel.TryRows(wp, xp, yp, 1536, 0, 300));
            Assert.Equal(rows, dot.data<float>().ToArray());
            Assert.NotEqual(rows, managed.data<float>().ToArray());
        }
        finally { Bf16DotKernel.Enabled = before; }
    }

    [Theory]
    [InlineData(1536, 0, 300)] // 100 whole tiles
    [InlineData(192, 3, 38)]   // 11 tiles and two rows left over
    [InlineData(4608, 1, 300)] // K-blocked (3 × 1,536): 99 tiles and two rows left over
    [InlineData(2112, 2, 40)]  // K-blocks of 1,088 and 1,024
    public void FourRowsEqualTheOneRowKernelBitForBit(int k, int r0, int r1)
    {
        if (!Bf16DotKernel.IsSupported) return;
        const int rows = 300;
        var (w, _) = Random(rows, k, 4);
        var xs = Enumerable.Range(0, 4).Select(m => Random(1, k, 10 + m).X).ToArray();
        var xBits = xs.SelectMany(x => x.Select(KernelSupport.FloatToBf16)).ToArray();
        var y = new float[4 * rows];
        Array.Fill(y, float.NaN);
        fixed (ushort* wp = w) fixed (ushort* xp = xBits) fixed (float* yp = y)
        {
            Bf16DotKernel.FourRows(wp, xp, yp, k, rows, r0, r1, wp);
            for (int m = 0; m < 4; m++)
            {
                var single = new float[rows];
                fixed (float* xm = xs[m]) fixed (float* sp = single) Assert.True(Bf16DotKernel.TryRows(wp, xm, sp, k, r0, r1));
                for (int r = 0; r < rows; r++)
                {
                    if (r < r0 || r >= r1) Assert.True(float.IsNaN(y[m * rows + r]), $"row {r} outside the range was written");
                    else Assert.Equal(single[r], y[m * rows + r]);
                }
            }
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(16)]
    public void CpuGemvOnTwoToSixteenBf16RowsMatchesOneRowAtATime(int inputs)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (!CpuGemv.Enabled || !Bf16DotKernel.IsSupported) return;
        using var scope = NewDisposeScope();
        using var inference = torch.inference_mode();
        torch.manual_seed(5);
        var w = randn(300, 1536).to(ScalarType.BFloat16);
        var bias = randn(300).to(ScalarType.BFloat16);
        var x = randn(inputs, 1, 1536).to(ScalarType.BFloat16);
        var batched = CpuGemv.TryLinear(x, w, bias);
        Assert.NotNull(batched);
        Assert.Equal(new long[] { inputs, 1, 300 }, batched!.shape);
        Assert.Equal(ScalarType.BFloat16, batched.dtype);
        // Row by row through the one-row kernel: the same bits (a decode step batched or alone gives the same logits).
        for (int m = 0; m < inputs; m++)
        {
            var single = CpuGemv.TryLinear(x[m].unsqueeze(0), w, bias)!;
            Assert.Equal(single.to(ScalarType.Float32).data<float>().ToArray(), batched[m].to(ScalarType.Float32).data<float>().ToArray());
        }
        var reference = torch.nn.functional.linear(x.to(ScalarType.Float64), w.to(ScalarType.Float64), bias.to(ScalarType.Float64));
        double scale = reference.abs().max().item<double>();
        Assert.True((batched.to(ScalarType.Float64) - reference).abs().max().item<double>() < 1e-2 * scale); // bf16 output rounding
        Assert.Null(CpuGemv.TryLinear(randn(17, 1536).to(ScalarType.BFloat16), w, null)); // beyond 16 rows: oneDNN
    }
}
