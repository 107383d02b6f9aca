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
/// opposite ends (a VM core that stalls leaves more to the other; they share output cache lines only where they meet), and a
/// worker left without a unit runs the unclaimed 12-row blocks of another's last one (the wait at the end of a call fell
/// from 31–120 to 15–49 µs). A unit's sums go to a small fp32 scratch, then are transposed 16 × 16 into the output with the
/// bias added and one rounding — the epilogue of <c>F.linear</c>, optionally followed by a residual add or SwiGLU
/// (<see cref="GemmEpilogue"/>). Every output is a single fp32 accumulator over the inputs in order; libtorch's
/// GEMM sums in another order, so results agree within fp32 summation error before the final rounding. glm4-bench's
/// [128×1536]·[1536×9216] on two Zen 4 cores: bf16 430–438 GFLOP/s (libtorch 393–400), fp32/fp16 192–196 (libtorch's fp32
/// 117–136). GLM_NO_GEMM_KERNEL=1 (or <see cref="Enabled"/>) sends these calls to libtorch.
/// </summary>
internal static unsafe partial class CpuGemm
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

    /// <summary>fp32 columns of a worker's unit scratch.</summary>
    private const int ScratchColumns = UnitColumns + 16;

    [ThreadStatic] private static long _productsRun, _fusedEpiloguesRun;

    /// <summary>Products computed here that were started on the calling thread (tests check that a model's prompt went
    /// through them; per thread, so tests running beside it do not count).</summary>
    public static long ProductsRun => _productsRun;

    private static long _blocksRunForOthers;

    /// <summary>Weight blocks a worker ran for another worker's unit (all threads; diagnostics and tests).</summary>
    public static long BlocksRunForOthers => Interlocked.Read(ref _blocksRunForOthers);

    /// <summary>Of <see cref="ProductsRun"/>, those that applied a <see cref="GemmEpilogue"/> (residual add or SwiGLU).</summary>
    public static long FusedEpiloguesRun => _fusedEpiloguesRun;

    /// <summary>
    /// The GEMM when it applies to these tensors — bf16 input and weights (the <c>vdpbf16ps</c> tile), fp32 or fp16 input
    /// and weights of the same dtype (the fp32 FMA tile; fp16 is widened exactly and rounded once at the end, as an fp16 GEMM
    /// with fp32 accumulation does) — otherwise null so the caller uses libtorch.
    /// </summary>
    public static Tensor? TryLinear(Tensor x, Tensor weight, Tensor? bias, GemmEpilogue epilogue = default)
    {
        if (!Enabled || !Avx512F.IsSupported || x.device_type != DeviceType.CPU || x.requires_grad || x.dtype != weight.dtype || !IsFloatDType(x)) return null;
        if (x.dtype == ScalarType.BFloat16 && !Bf16GemmKernel.IsSupported) return null;
        // A trainable weight is fine outside autograd (evaluation, perplexity): the product then records nothing either way.
        if (weight.dim() != 2 || (weight.requires_grad && torch.is_grad_enabled()) || weight.device_type != DeviceType.CPU || !weight.is_contiguous()) return null;
        if (bias is not null && bias.requires_grad && torch.is_grad_enabled()) return null;
        return Run(x, weight.shape, weight.dtype, Data(weight), null, bias, epilogue);
    }

    /// <summary>
    /// The GEMM for a weight-only int8 layer (q [n, k] int8, scale [n] fp32) and a bf16 input: each block of 12 weight rows
    /// is dequantized to bf16 into a small per-worker buffer just before its tiles run — the same bf16 values as
    /// <see cref="Quantization.Int8Quantizer.Dequantize"/>, so the same results as dequantizing the whole matrix and
    /// multiplying, without writing and re-reading a bf16 copy of it per call. Null when not applicable.
    /// </summary>
    public static Tensor? TryQuantizedLinear(Tensor x, Tensor q, Tensor scale, Tensor? bias, GemmEpilogue epilogue = default)
    {
        if (!Enabled || !Bf16GemmKernel.IsSupported || x.dtype != ScalarType.BFloat16 || x.device_type != DeviceType.CPU || x.requires_grad) return null;
        if (q.dtype != ScalarType.Int8 || q.dim() != 2 || q.device_type != DeviceType.CPU || !q.is_contiguous() ||
            scale.dtype != ScalarType.Float32 || !scale.is_contiguous() || scale.NumberOfElements != q.shape[0]) return null;
        return Run(x, q.shape, ScalarType.Int8, Data(q), (float*)Data(scale), bias, epilogue);
    }

    private static Tensor? Run(Tensor x, long[] ws, ScalarType weightType, byte* w, float* scales, Tensor? bias, in GemmEpilogue epilogue)
    {
        long[] xs = x.shape;
        long k = xs[^1], n = ws[0];
        if (ws[1] != k || k == 0 || k % 32 != 0 || n == 0) return null;
        long rows = x.NumberOfElements / k;
        if (rows < MinRows) return null;
        if (bias is not null && (!IsFloatDType(bias) || !bias.is_contiguous() || bias.NumberOfElements != n || bias.device_type != DeviceType.CPU)) return null;
        var shape = (long[])xs.Clone();
        shape[^1] = epilogue.SwiGluFfn > 0 ? epilogue.SwiGluFfn : n;
        if (!EpilogueApplies(epilogue, x.dtype, n, shape)) return null;
        if (epilogue.Fuses) _fusedEpiloguesRun++;
        using var xc = x.contiguous();
        var y = torch.empty(shape, dtype: x.dtype);
        Multiply(new Operands(Data(xc), x.dtype, rows, k, w, weightType, scales, n,
            bias is null ? null : Data(bias), bias?.dtype ?? ScalarType.Float32, Data(y))
        {
            Residual = epilogue.Residual is null ? null : Data(epilogue.Residual),
            SwiGluFfn = epilogue.SwiGluFfn,
        }, ThreadCount(CpuGemv.Threads));
        return y;
    }

    /// <summary>Whether the epilogue can run here: fusing is on, a residual matches the output, SwiGLU's ffn halves the
    /// weight rows and is a multiple of 16 (the unfused op's vector lanes; its scalar tail rounds exp differently).</summary>
    private static bool EpilogueApplies(in GemmEpilogue e, ScalarType dtype, long n, long[] outputShape)
    {
        if (!e.Fuses) return true;
        if (!FuseEpilogues || (e.Residual is not null && e.SwiGluFfn != 0)) return false;
        if (e.SwiGluFfn != 0) return e.SwiGluFfn > 0 && 2 * e.SwiGluFfn == n && e.SwiGluFfn % 16 == 0;
        var r = e.Residual!;
        return r.dtype == dtype && r.device_type == DeviceType.CPU && r.is_contiguous() && !r.requires_grad && r.shape.SequenceEqual(outputShape);
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

        /// <summary>Added to the product ([rows, n] of the output type), or null (<see cref="GemmEpilogue.Residual"/>).</summary>
        public byte* Residual { get; init; }

        /// <summary>When positive, y [rows, ffn] = SwiGLU of the gate/up product (<see cref="GemmEpilogue.SwiGluFfn"/>).</summary>
        public long SwiGluFfn { get; init; }

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
    /// up to 128 input rows, the input is packed, then units of 48 weight rows (24 gate and their 24 up rows for SwiGLU) are
    /// taken from both ends, each weight block of 12 rows run against every 32-row tile of the chunk (by the unit's owner, or
    /// by a worker with no unit left), and the unit's sums finished into y.
    /// </summary>
    public static void Multiply(in Operands o, int threads)
    {
        _productsRun++;
        const int TileRows = Bf16GemmKernel.TileRows, TileColumns = Bf16GemmKernel.TileColumns;
        long k = o.K, n = o.N, lanes = o.Lanes;
        // A SwiGLU unit pairs 24 gate rows with their 24 up rows (ffn apart) and writes 24 outputs; otherwise 48 rows, 48 outputs.
        bool swiGlu = o.SwiGluFfn > 0;
        long outputs = swiGlu ? o.SwiGluFfn : n, unitOutputs = swiGlu ? UnitColumns / 2 : UnitColumns;
        long units = (outputs + unitOutputs - 1) / unitOutputs;
        uint* packed = (uint*)NativeMemory.AlignedAlloc((nuint)(ChunkRows * lanes * sizeof(uint)), 64);
        // Blocks start every 12 rows (from ffn for the up half), so only the last one can run past the matrix: its bf16 rows
        // are copied into a zero-padded block so the tile never reads past the end.
        long tailStart = (swiGlu ? o.SwiGluFfn : 0) + (outputs - 1) / TileColumns * TileColumns;
        ushort* tail = null;
        if (o.Weight == ScalarType.BFloat16 && tailStart + TileColumns > n)
        {
            tail = (ushort*)NativeMemory.AlignedAlloc((nuint)(TileColumns * k * sizeof(ushort)), 64);
            new Span<ushort>(tail, (int)(TileColumns * k)).Clear();
            Buffer.MemoryCopy((ushort*)o.W + tailStart * k, tail, TileColumns * k * sizeof(ushort), (n - tailStart) * k * sizeof(ushort));
        }
        else tailStart = -1;
        threads = (int)Math.Max(1, Math.Min(threads, units));
        var scratch = new nint[threads];
        // Per worker: the unit's fp32 sums (16 columns spare: the SwiGLU epilogue transposes a last 8-column group of up sums
        // 16 wide), then a weight block (int8 dequantized to bf16, or fp32/fp16 interleaved as fp32).
        long blockBytes = o.Weight switch
        {
            ScalarType.Int8 => TileColumns * k * sizeof(ushort),
            ScalarType.Float32 or ScalarType.Float16 => Fp32GemmTile.BlockFloats(k) * sizeof(float),
            _ => 0,
        };
        for (int t = 0; t < threads; t++) scratch[t] = (nint)NativeMemory.AlignedAlloc((nuint)(ScratchColumns * ChunkRows * sizeof(float) + blockBytes), 64);
        var operands = o;
        try
        {
            for (long m0 = 0; m0 < o.Rows; m0 += ChunkRows)
            {
                long chunk = Math.Min(ChunkRows, o.Rows - m0), tiles = (chunk + TileRows - 1) / TileRows, ldc = tiles * TileRows;
                var work = new UnitClaims(units, threads, outputs, unitOutputs, swiGlu);
                long packNext = 0, packDone = 0, packBlocks = tiles * TileRows / 16;
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
                    // Two workers take units from opposite ends, so they write neighbouring output columns (the same cache
                    // lines of y) only where they meet; more workers share the front. Within a unit the weight blocks are
                    // claimed one by one, so a worker with no unit left runs blocks of another's last unit instead of
                    // waiting for it (a unit of dense_4h_to_h takes ≈ 240 µs, a block 60).
                    while (Interlocked.Decrement(ref work.Claims) >= 0)
                    {
                        long unit = part == 1 && threads == 2 ? work.Back-- : Interlocked.Increment(ref work.Front) - 1;
                        Volatile.Write(ref work.Current[part], unit);
                        RunUnitBlocks(operands, work, part, part, unit, packed, tiles, ldc, scratch, tail, tailStart);
                        long blocks = work.BlocksIn(unit);
                        for (var spin = new SpinWait(); Volatile.Read(ref work.Done[unit]) < blocks;) spin.SpinOnce(sleep1Threshold: -1);
                        Volatile.Write(ref work.Current[part], -1);
                        float* c = (float*)scratch[part];
                        long n0 = unit * work.UnitOutputs, columns = Math.Min(work.UnitOutputs, work.Outputs - n0);
                        if (work.SwiGlu) FinishSwiGlu(c, ldc, columns, chunk, n0, operands, rowBase);
                        else Finish(c, ldc, columns, chunk, n0, operands, rowBase);
                    }
                    for (int other = 0; other < threads; other++)
                        if (other != part && Volatile.Read(ref work.Current[other]) is var unit and >= 0)
                            RunUnitBlocks(operands, work, part, other, unit, packed, tiles, ldc, scratch, tail, tailStart);
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

    /// <summary>The work units of one chunk: which are claimed (from both ends), and per unit its weight blocks claimed and done.</summary>
    private sealed class UnitClaims(long units, int threads, long outputs, long unitOutputs, bool swiGlu)
    {
        public long Claims = units, Front, Back = units - 1;
        public readonly long Outputs = outputs, UnitOutputs = unitOutputs;
        public readonly bool SwiGlu = swiGlu;
        public readonly int[] Taken = new int[units], Done = new int[units];
        public readonly long[] Current = Enumerable.Repeat(-1L, threads).ToArray();

        /// <summary>Weight blocks of a unit: 12-row blocks, or for SwiGLU 12-row gate blocks, each run with its up block.</summary>
        public long BlocksIn(long unit) => (Math.Min(UnitOutputs, Outputs - unit * UnitOutputs) + Bf16GemmKernel.TileColumns - 1) / Bf16GemmKernel.TileColumns;
    }

    /// <summary>Runs the unclaimed blocks of <paramref name="unit"/> (owned by worker <paramref name="owner"/>, whose scratch
    /// gets the sums) on worker <paramref name="part"/>, counting each one done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunUnitBlocks(in Operands o, UnitClaims work, int part, int owner, long unit, uint* packed, long tiles, long ldc,
        nint[] scratch, ushort* tail, long tailStart)
    {
        const int TileColumns = Bf16GemmKernel.TileColumns;
        float* c = (float*)scratch[owner];
        byte* weightBlock = (byte*)((float*)scratch[part] + ScratchColumns * ChunkRows);
        long blocks = work.BlocksIn(unit), n0 = unit * work.UnitOutputs;
        for (long b; (b = Interlocked.Increment(ref work.Taken[unit]) - 1) < blocks;)
        {
            long j = b * TileColumns;
            if (work.SwiGlu)
            {
                long up = o.SwiGluFfn + n0 + j; // the gate block's partner, run (and prefetched) next
                RunBlock(o, n0 + j, up, packed, tiles, ldc, c + j * ldc, weightBlock, tail, tailStart);
                RunBlock(o, up, n0 + j + TileColumns, packed, tiles, ldc, c + (work.UnitOutputs + j) * ldc, weightBlock, tail, tailStart);
            }
            else RunBlock(o, n0 + j, n0 + j + TileColumns, packed, tiles, ldc, c + j * ldc, weightBlock, tail, tailStart);
            if (part != owner) Interlocked.Increment(ref _blocksRunForOthers);
            Interlocked.Increment(ref work.Done[unit]);
        }
    }

    /// <summary>Weight rows [r0, r0 + 12) against every packed tile of the chunk, sums into c (row j at c + j·ldc), prefetching
    /// the block at <paramref name="nextRow"/> (the one most likely run next) towards L2; the block
    /// starting at <paramref name="tailStart"/> reads bf16 rows from the zero-padded <paramref name="tail"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBlock(in Operands o, long r0, long nextRow, uint* packed, long tiles, long ldc, float* c, byte* block, ushort* tail, long tailStart)
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
            rows = r0 != tailStart ? (ushort*)o.W + r0 * k : tail;
            next = (ushort*)o.W + nextRow * k; // the next block's rows, prefetched into L2 while this block runs
        }
        else
        {
            rows = (ushort*)block;
            CpuInt8Dequant.Rows((sbyte*)o.W, o.Scales, (byte*)(rows - r0 * k), bf16: true, k, r0, r1);
            if (r1 - r0 < TileColumns) new Span<ushort>(rows + (r1 - r0) * k, (int)((TileColumns - r1 + r0) * k)).Clear();
            next = (ushort*)(o.W + nextRow * k);
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
}
