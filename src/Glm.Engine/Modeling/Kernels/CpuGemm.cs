using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static Glm.Engine.Modeling.Kernels.KernelSupport;
using static TorchSharp.torch;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// y = x·Wᵀ (+ b) for prompts (prefill, scoring: more rows than the decode kernels take): bf16 (and int8 weights) on the
/// <see cref="Bf16GemmKernel"/> tile, fp32 and fp16 on <see cref="Fp32GemmTile"/>. The input is packed once per 128 rows
/// (per input lane 32 rows side by side, by whichever workers are running); the weights are read in place, 12 rows at a
/// time, each block run against every packed tile while it is in cache. Workers take 48-row units of the weight matrix from
/// opposite ends (a VM core that stalls leaves more to the other; they share output cache lines only where they meet),
/// write the unit's sums into a small fp32 scratch, then transpose them 16 × 16 into the output with the bias added and one
/// rounding — the epilogue of <c>F.linear</c>. Every output is a single fp32 accumulator over the inputs in order; libtorch's
/// GEMM sums in another order, so results agree within fp32 summation error before the final rounding. glm4-bench's
/// [128×1536]·[1536×9216] on two Zen 4 cores: bf16 430–438 GFLOP/s (libtorch 393–400), fp32/fp16 192–196 (libtorch's fp32
/// 117–136). GLM_NO_GEMM_KERNEL=1 (or <see cref="Enabled"/>) sends these calls to libtorch.
/// </summary>
internal static unsafe class CpuGemm
{
    /// <summary>Set to false to compare against libtorch (benchmarks, tests); starts off under GLM_NO_GEMM_KERNEL=1.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("GLM_NO_GEMM_KERNEL") != "1";

    /// <summary>Fewest input rows taken here; fewer go to the decode kernels of <see cref="CpuGemv"/>.</summary>
    public const int MinRows = CpuGemv.MaxBatchRows + 1;

    /// <summary>Input rows packed at a time: 128 rows of 4,608 bf16 inputs (1.2 MB packed) stay within L2/L3 while the whole
    /// weight matrix streams past them once.</summary>
    private const int ChunkRows = 128;

    /// <summary>Weight rows per work unit (four tiles); the unit's fp32 outputs (48 × 128) stay in L1/L2 for the epilogue.</summary>
    private const int UnitColumns = 4 * Bf16GemmKernel.TileColumns;

    [ThreadStatic] private static long _productsRun;

    /// <summary>Products computed here that were started on the calling thread (tests check that a model's prompt went
    /// through them; per thread, so tests running beside it do not count).</summary>
    public static long ProductsRun => _productsRun;

    /// <summary>
    /// The GEMM when it applies to these tensors — bf16 input and weights (the <c>vdpbf16ps</c> tile), fp32 or fp16 input
    /// and weights of the same dtype (the fp32 FMA tile; fp16 is widened exactly and rounded once at the end, as an fp16 GEMM
    /// with fp32 accumulation does) — otherwise null so the caller uses libtorch.
    /// </summary>
    public static Tensor? TryLinear(Tensor x, Tensor weight, Tensor? bias)
    {
        if (!Enabled || !Avx512F.IsSupported || x.device_type != DeviceType.CPU || x.requires_grad || x.dtype != weight.dtype || !IsFloatDType(x)) return null;
        if (x.dtype == ScalarType.BFloat16 && !Bf16GemmKernel.IsSupported) return null;
        // A trainable weight is fine outside autograd (evaluation, perplexity): the product then records nothing either way.
        if (weight.dim() != 2 || (weight.requires_grad && torch.is_grad_enabled()) || weight.device_type != DeviceType.CPU || !weight.is_contiguous()) return null;
        if (bias is not null && bias.requires_grad && torch.is_grad_enabled()) return null;
        return Run(x, weight.shape, weight.dtype, Data(weight), null, bias);
    }

    /// <summary>
    /// The GEMM for a weight-only int8 layer (q [n, k] int8, scale [n] fp32) and a bf16 input: each block of 12 weight rows
    /// is dequantized to bf16 into a small per-worker buffer just before its tiles run — the same bf16 values as
    /// <see cref="Quantization.Int8Quantizer.Dequantize"/>, so the same results as dequantizing the whole matrix and
    /// multiplying, without writing and re-reading a bf16 copy of it per call. Null when not applicable.
    /// </summary>
    public static Tensor? TryQuantizedLinear(Tensor x, Tensor q, Tensor scale, Tensor? bias)
    {
        if (!Enabled || !Bf16GemmKernel.IsSupported || x.dtype != ScalarType.BFloat16 || x.device_type != DeviceType.CPU || x.requires_grad) return null;
        if (q.dtype != ScalarType.Int8 || q.dim() != 2 || q.device_type != DeviceType.CPU || !q.is_contiguous() ||
            scale.dtype != ScalarType.Float32 || !scale.is_contiguous() || scale.NumberOfElements != q.shape[0]) return null;
        return Run(x, q.shape, ScalarType.Int8, Data(q), (float*)Data(scale), bias);
    }

    private static Tensor? Run(Tensor x, long[] ws, ScalarType weightType, byte* w, float* scales, Tensor? bias)
    {
        long[] xs = x.shape;
        long k = xs[^1], n = ws[0];
        if (ws[1] != k || k == 0 || k % 32 != 0 || n == 0) return null;
        long rows = x.NumberOfElements / k;
        if (rows < MinRows) return null;
        if (bias is not null && (!IsFloatDType(bias) || !bias.is_contiguous() || bias.NumberOfElements != n || bias.device_type != DeviceType.CPU)) return null;
        using var xc = x.contiguous();
        var shape = (long[])xs.Clone();
        shape[^1] = n;
        var y = torch.empty(shape, dtype: x.dtype);
        Multiply(new Operands(Data(xc), x.dtype, rows, k, w, weightType, scales, n,
            bias is null ? null : Data(bias), bias?.dtype ?? ScalarType.Float32, Data(y)), ThreadCount(CpuGemv.Threads));
        return y;
    }

    /// <summary>
    /// One product y [rows, n] = x [rows, k] · w [n, k]ᵀ + bias: x and y of <see cref="Input"/>'s type (bf16, fp16, fp32), w of
    /// <see cref="Weight"/>'s (the input's, or int8 with per-row <see cref="Scales"/> for a bf16 input), bias of
    /// <see cref="BiasType"/> or null.
    /// </summary>
    public readonly struct Operands(byte* x, ScalarType input, long rows, long k, byte* w, ScalarType weight, float* scales, long n,
        byte* bias, ScalarType biasType, byte* y)
    {
        public readonly byte* X = x, W = w, Bias = bias, Y = y;
        public readonly float* Scales = scales;
        public readonly ScalarType Input = input, Weight = weight, BiasType = biasType;
        public readonly long Rows = rows, K = k, N = n;

        /// <summary>bf16 inputs run the <c>vdpbf16ps</c> tile on input pairs; fp16/fp32 the fp32 tile on single inputs.</summary>
        public bool PairTile => Input == ScalarType.BFloat16;

        /// <summary>Packed dwords per input row: pairs of bf16, or single fp32 (fp16 widened) values.</summary>
        public long Lanes => PairTile ? K / 2 : K;
    }

    /// <summary>bf16 x [rows, k] × bf16 w [n, k]ᵀ (+ bias) → bf16 y [rows, n].</summary>
    public static void Multiply(ushort* x, long rows, long k, ushort* w, long n, byte* bias, ScalarType biasType, ushort* y, int threads) =>
        Multiply(new Operands((byte*)x, ScalarType.BFloat16, rows, k, (byte*)w, ScalarType.BFloat16, null, n, bias, biasType, (byte*)y), threads);

    /// <summary>
    /// Runs one product (see <see cref="Operands"/>; k a multiple of 32) over <paramref name="threads"/> workers: per chunk of
    /// up to 128 input rows, the input is packed, then units of 48 weight rows are taken from both ends, each weight block of
    /// 12 rows run against every 32-row tile of the chunk, and the unit's sums finished into y.
    /// </summary>
    public static void Multiply(in Operands o, int threads)
    {
        _productsRun++;
        const int TileRows = Bf16GemmKernel.TileRows, TileColumns = Bf16GemmKernel.TileColumns;
        long k = o.K, n = o.N, lanes = o.Lanes, fullTiles = n / TileColumns, units = (n + UnitColumns - 1) / UnitColumns;
        uint* packed = (uint*)NativeMemory.AlignedAlloc((nuint)(ChunkRows * lanes * sizeof(uint)), 64);
        // bf16 weight rows past the last full tile: copied into a zero-padded block so the tile never reads past the matrix.
        ushort* tail = null;
        if (o.Weight == ScalarType.BFloat16 && fullTiles * TileColumns < n)
        {
            tail = (ushort*)NativeMemory.AlignedAlloc((nuint)(TileColumns * k * sizeof(ushort)), 64);
            new Span<ushort>(tail, (int)(TileColumns * k)).Clear();
            long from = fullTiles * TileColumns;
            Buffer.MemoryCopy((ushort*)o.W + from * k, tail, TileColumns * k * sizeof(ushort), (n - from) * k * sizeof(ushort));
        }
        threads = (int)Math.Max(1, Math.Min(threads, units));
        var scratch = new nint[threads];
        // Per worker: the unit's fp32 sums, then a weight block (int8 dequantized to bf16, or fp32/fp16 interleaved as fp32).
        long blockBytes = o.Weight switch
        {
            ScalarType.Int8 => TileColumns * k * sizeof(ushort),
            ScalarType.Float32 or ScalarType.Float16 => Fp32GemmTile.BlockFloats(k) * sizeof(float),
            _ => 0,
        };
        for (int t = 0; t < threads; t++) scratch[t] = (nint)NativeMemory.AlignedAlloc((nuint)(UnitColumns * ChunkRows * sizeof(float) + blockBytes), 64);
        var operands = o;
        try
        {
            for (long m0 = 0; m0 < o.Rows; m0 += ChunkRows)
            {
                long chunk = Math.Min(ChunkRows, o.Rows - m0), tiles = (chunk + TileRows - 1) / TileRows, ldc = tiles * TileRows;
                var claims = new StrongBox<long>(units);
                long front = 0, back = units - 1, packNext = 0, packDone = 0, packBlocks = tiles * TileRows / 16;
                long rowBase = m0;
                KernelWorkers.Run(threads, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (part) =>
                {
                    // The input is packed in 16-row blocks by whichever workers are running (a parked worker still waking up
                    // leaves them to the caller), then every worker waits until all blocks are done: a block is only ever
                    // waited on by someone other than the worker that claimed it, which is running.
                    for (long block; (block = Interlocked.Increment(ref packNext) - 1) < packBlocks;)
                    {
                        PackBlock(operands, rowBase, chunk, packed, block * 16);
                        Interlocked.Increment(ref packDone);
                    }
                    for (var spin = new SpinWait(); Volatile.Read(ref packDone) < packBlocks;) spin.SpinOnce(sleep1Threshold: -1);
                    float* c = (float*)scratch[part];
                    byte* weightBlock = (byte*)(c + UnitColumns * ChunkRows);
                    // Two workers take units from opposite ends, so they write neighbouring output columns (the same cache
                    // lines of y) only where they meet; more workers share the front.
                    while (Interlocked.Decrement(ref claims.Value) >= 0)
                    {
                        long unit = part == 1 && threads == 2 ? back-- : Interlocked.Increment(ref front) - 1;
                        long n0 = unit * UnitColumns, columns = Math.Min(UnitColumns, n - n0);
                        for (long j = 0; j < columns; j += TileColumns)
                            RunBlock(operands, n0 + j, packed, tiles, ldc, c + j * ldc, weightBlock, tail, fullTiles);
                        Finish(c, ldc, columns, chunk, n0, n, operands.Bias, operands.BiasType, operands.Input, operands.Y, rowBase);
                    }
                });
            }
        }
        finally
        {
            NativeMemory.AlignedFree(packed);
            if (tail != null) NativeMemory.AlignedFree(tail);
            foreach (nint p in scratch) NativeMemory.AlignedFree((void*)p);
        }
    }

    /// <summary>Weight rows [r0, r0 + 12) against every packed tile of the chunk, sums into c (row j at c + j·ldc).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBlock(in Operands o, long r0, uint* packed, long tiles, long ldc, float* c, byte* block, ushort* tail, long fullTiles)
    {
        const int TileRows = Bf16GemmKernel.TileRows, TileColumns = Bf16GemmKernel.TileColumns;
        long k = o.K, lanes = o.Lanes, r1 = Math.Min(o.N, r0 + TileColumns);
        if (!o.PairTile)
        {
            bool half = o.Weight == ScalarType.Float16;
            Fp32GemmTile.Interleave(o.W + r0 * k * (half ? 2 : 4), half, k, r1 - r0, (float*)block);
            for (long t = 0; t < tiles; t++) Fp32GemmTile.Run((float*)(packed + t * lanes * TileRows), (float*)block, k, c + t * TileRows, ldc);
            return;
        }
        ushort* rows, next;
        if (o.Weight == ScalarType.BFloat16)
        {
            rows = r0 / TileColumns < fullTiles ? (ushort*)o.W + r0 * k : tail;
            next = (ushort*)o.W + r1 * k; // the next 12 rows (contiguous in w), prefetched into L2 while this block runs
        }
        else
        {
            rows = (ushort*)block;
            CpuInt8Dequant.Rows((sbyte*)o.W, o.Scales, (byte*)(rows - r0 * k), bf16: true, k, r0, r1);
            if (r1 - r0 < TileColumns) new Span<ushort>(rows + (r1 - r0) * k, (int)((TileColumns - r1 + r0) * k)).Clear();
            next = (ushort*)(o.W + r1 * k);
        }
        // Each tile's pass prefetches the next part of the following block (one pass covers 64 weights per iteration, less
        // than 12 rows: 24 of 36 KiB at k = 1,536).
        long prefetchedPerPass = lanes / Bf16GemmKernel.PairsPerIteration * 64;
        for (long t = 0; t < tiles; t++)
            Bf16GemmKernel.RunTile(packed + t * lanes * TileRows, rows, k, lanes, c + t * TileRows, ldc, next + t * prefetchedPerPass);
    }

    /// <summary>
    /// Packs the 16 input rows from <paramref name="m0"/> of the chunk starting at row <paramref name="rowBase"/> (<paramref name="rows"/>
    /// rows) for the tile: packed[t][p][m] = lane p of row 32t + m — the dword holding bf16 inputs 2p and 2p+1, or input p as
    /// fp32 (fp16 widened); rows past the input are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBlock(in Operands o, long rowBase, long rows, uint* packed, long m0)
    {
        const int TileRows = Bf16GemmKernel.TileRows;
        long k = o.K, lanes = o.Lanes, valid = Math.Clamp(rows - m0, 0, 16);
        bool half = o.Input == ScalarType.Float16;
        float* dst = (float*)(packed + m0 / TileRows * lanes * TileRows + m0 % TileRows);
        float* stage = stackalloc float[256];
        // Row r's first lane (32-bit units; fp16 rows are read element-wise below).
        float* x = (float*)(o.X + (rowBase + m0) * k * (o.Input == ScalarType.Float32 ? 4 : 2));
        for (long p0 = 0; p0 < lanes; p0 += 16)
        {
            float* src = x + p0;
            long stride = lanes;
            if (valid < 16 || half)
            {
                // fp16 rows widened, and the last rows staged with zeros below them.
                new Span<float>(stage, 256).Clear();
                for (long i = 0; i < valid; i++)
                    Avx512F.Store(stage + i * 16, half ? LoadHalf((ushort*)x + i * k + p0) : Avx512F.LoadVector512(x + i * lanes + p0));
                src = stage;
                stride = 16;
            }
            Transpose16(src, stride, dst + p0 * TileRows, TileRows);
        }
    }

    /// <summary>
    /// The epilogue of one unit: c [columns][ldc] holds fp32 sums for weight rows n0 + j and the chunk's input rows m; writes
    /// y[(rowBase + m)·n + n0 + j] = round(c + bias) in the output type for m &lt; rows, transposing 16 × 16 blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Finish(float* c, long ldc, long columns, long rows, long n0, long n, byte* bias, ScalarType biasType,
        ScalarType output, byte* y, long rowBase)
    {
        float* block = stackalloc float[256];
        for (long j0 = 0; j0 < columns; j0 += 16)
        {
            long width = Math.Min(16, columns - j0);
            Vector512<float> b = Vector512<float>.Zero;
            if (bias != null && width == 16)
                b = biasType == ScalarType.Float32 ? Avx512F.LoadVector512((float*)bias + n0 + j0) : Load16((ushort*)bias + n0 + j0, biasType == ScalarType.BFloat16);
            for (long m0 = 0; m0 < rows; m0 += 16)
            {
                // Rows of c past `columns` (the last unit) hold stale sums; their lanes are never stored.
                Transpose16(c + j0 * ldc + m0, ldc, block, 16);
                long count = Math.Min(16, rows - m0);
                for (int i = 0; i < count; i++)
                {
                    long at = (rowBase + m0 + i) * n + n0 + j0;
                    if (width == 16)
                    {
                        var v = Avx512F.LoadVector512(block + i * 16) + b;
                        if (output == ScalarType.Float32) Avx512F.Store((float*)y + at, v);
                        else Store16((ushort*)y + at, v, output == ScalarType.BFloat16);
                        continue;
                    }
                    for (int j = 0; j < width; j++)
                        StoreAny(y, output, at + j, bias == null ? block[i * 16 + j] : block[i * 16 + j] + LoadAny(bias, biasType, n0 + j0 + j));
                }
            }
        }
    }

    /// <summary>
    /// Writes the transpose of the 16 × 16 block of 32-bit lanes at <paramref name="src"/> (rows <paramref name="srcStride"/>
    /// floats apart) to <paramref name="dst"/> (rows <paramref name="dstStride"/> apart): dst[j][i] = src[i][j]. Straight-line
    /// code on locals, so the 16 rows stay in registers (a loop over a stack array kept them in memory: 3.4 µs per 48 × 128 epilogue).
    /// Stage 1 interleaves pairs of rows per 128-bit lane, stage 2 quads (q[4g + c] lane l = rows 4g..4g+3 of column 4l + c),
    /// stage 3 gathers each column's four lanes across the quads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Transpose16(float* src, long srcStride, float* dst, long dstStride)
    {
        var r0 = Avx512F.LoadVector512(src + 0 * srcStride);
        var r1 = Avx512F.LoadVector512(src + 1 * srcStride);
        var r2 = Avx512F.LoadVector512(src + 2 * srcStride);
        var r3 = Avx512F.LoadVector512(src + 3 * srcStride);
        var r4 = Avx512F.LoadVector512(src + 4 * srcStride);
        var r5 = Avx512F.LoadVector512(src + 5 * srcStride);
        var r6 = Avx512F.LoadVector512(src + 6 * srcStride);
        var r7 = Avx512F.LoadVector512(src + 7 * srcStride);
        var r8 = Avx512F.LoadVector512(src + 8 * srcStride);
        var r9 = Avx512F.LoadVector512(src + 9 * srcStride);
        var r10 = Avx512F.LoadVector512(src + 10 * srcStride);
        var r11 = Avx512F.LoadVector512(src + 11 * srcStride);
        var r12 = Avx512F.LoadVector512(src + 12 * srcStride);
        var r13 = Avx512F.LoadVector512(src + 13 * srcStride);
        var r14 = Avx512F.LoadVector512(src + 14 * srcStride);
        var r15 = Avx512F.LoadVector512(src + 15 * srcStride);
        var t0 = Avx512F.UnpackLow(r0, r1).AsDouble(); var t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx512F.UnpackLow(r2, r3).AsDouble(); var t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        var t4 = Avx512F.UnpackLow(r4, r5).AsDouble(); var t5 = Avx512F.UnpackHigh(r4, r5).AsDouble();
        var t6 = Avx512F.UnpackLow(r6, r7).AsDouble(); var t7 = Avx512F.UnpackHigh(r6, r7).AsDouble();
        var t8 = Avx512F.UnpackLow(r8, r9).AsDouble(); var t9 = Avx512F.UnpackHigh(r8, r9).AsDouble();
        var t10 = Avx512F.UnpackLow(r10, r11).AsDouble(); var t11 = Avx512F.UnpackHigh(r10, r11).AsDouble();
        var t12 = Avx512F.UnpackLow(r12, r13).AsDouble(); var t13 = Avx512F.UnpackHigh(r12, r13).AsDouble();
        var t14 = Avx512F.UnpackLow(r14, r15).AsDouble(); var t15 = Avx512F.UnpackHigh(r14, r15).AsDouble();
        var q0 = Avx512F.UnpackLow(t0, t2).AsSingle(); var q1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        var q2 = Avx512F.UnpackLow(t1, t3).AsSingle(); var q3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
        var q4 = Avx512F.UnpackLow(t4, t6).AsSingle(); var q5 = Avx512F.UnpackHigh(t4, t6).AsSingle();
        var q6 = Avx512F.UnpackLow(t5, t7).AsSingle(); var q7 = Avx512F.UnpackHigh(t5, t7).AsSingle();
        var q8 = Avx512F.UnpackLow(t8, t10).AsSingle(); var q9 = Avx512F.UnpackHigh(t8, t10).AsSingle();
        var q10 = Avx512F.UnpackLow(t9, t11).AsSingle(); var q11 = Avx512F.UnpackHigh(t9, t11).AsSingle();
        var q12 = Avx512F.UnpackLow(t12, t14).AsSingle(); var q13 = Avx512F.UnpackHigh(t12, t14).AsSingle();
        var q14 = Avx512F.UnpackLow(t13, t15).AsSingle(); var q15 = Avx512F.UnpackHigh(t13, t15).AsSingle();
        var low0 = Avx512F.Shuffle4x128(q0, q4, 0x44); var high0 = Avx512F.Shuffle4x128(q0, q4, 0xEE);
        var low0b = Avx512F.Shuffle4x128(q8, q12, 0x44); var high0b = Avx512F.Shuffle4x128(q8, q12, 0xEE);
        Avx512F.Store(dst + 0 * dstStride, Avx512F.Shuffle4x128(low0, low0b, 0x88));
        Avx512F.Store(dst + 4 * dstStride, Avx512F.Shuffle4x128(low0, low0b, 0xDD));
        Avx512F.Store(dst + 8 * dstStride, Avx512F.Shuffle4x128(high0, high0b, 0x88));
        Avx512F.Store(dst + 12 * dstStride, Avx512F.Shuffle4x128(high0, high0b, 0xDD));
        var low1 = Avx512F.Shuffle4x128(q1, q5, 0x44); var high1 = Avx512F.Shuffle4x128(q1, q5, 0xEE);
        var low1b = Avx512F.Shuffle4x128(q9, q13, 0x44); var high1b = Avx512F.Shuffle4x128(q9, q13, 0xEE);
        Avx512F.Store(dst + 1 * dstStride, Avx512F.Shuffle4x128(low1, low1b, 0x88));
        Avx512F.Store(dst + 5 * dstStride, Avx512F.Shuffle4x128(low1, low1b, 0xDD));
        Avx512F.Store(dst + 9 * dstStride, Avx512F.Shuffle4x128(high1, high1b, 0x88));
        Avx512F.Store(dst + 13 * dstStride, Avx512F.Shuffle4x128(high1, high1b, 0xDD));
        var low2 = Avx512F.Shuffle4x128(q2, q6, 0x44); var high2 = Avx512F.Shuffle4x128(q2, q6, 0xEE);
        var low2b = Avx512F.Shuffle4x128(q10, q14, 0x44); var high2b = Avx512F.Shuffle4x128(q10, q14, 0xEE);
        Avx512F.Store(dst + 2 * dstStride, Avx512F.Shuffle4x128(low2, low2b, 0x88));
        Avx512F.Store(dst + 6 * dstStride, Avx512F.Shuffle4x128(low2, low2b, 0xDD));
        Avx512F.Store(dst + 10 * dstStride, Avx512F.Shuffle4x128(high2, high2b, 0x88));
        Avx512F.Store(dst + 14 * dstStride, Avx512F.Shuffle4x128(high2, high2b, 0xDD));
        var low3 = Avx512F.Shuffle4x128(q3, q7, 0x44); var high3 = Avx512F.Shuffle4x128(q3, q7, 0xEE);
        var low3b = Avx512F.Shuffle4x128(q11, q15, 0x44); var high3b = Avx512F.Shuffle4x128(q11, q15, 0xEE);
        Avx512F.Store(dst + 3 * dstStride, Avx512F.Shuffle4x128(low3, low3b, 0x88));
        Avx512F.Store(dst + 7 * dstStride, Avx512F.Shuffle4x128(low3, low3b, 0xDD));
        Avx512F.Store(dst + 11 * dstStride, Avx512F.Shuffle4x128(high3, high3b, 0x88));
        Avx512F.Store(dst + 15 * dstStride, Avx512F.Shuffle4x128(high3, high3b, 0xDD));
    }
}
