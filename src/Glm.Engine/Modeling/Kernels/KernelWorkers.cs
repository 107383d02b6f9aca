using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Glm.Engine.Modeling.Kernels;

/// <summary>
/// Dedicated worker threads for the decode kernels' row splits. A decode step makes ~100 short parallel calls (each GEMV,
/// attention); <c>Parallel.For</c> costs ≈ 6–9 µs per call to hand work to the thread pool, and ≈ 50 µs when the pool thread
/// has gone to sleep. Here the caller runs part 0 itself and wakes parked workers only when needed: after a job a worker
/// spins for <see cref="SpinMicroseconds"/> (covering the gap to the next GEMV of the same step), then parks, so nothing
/// spins while libtorch runs prefill or training on the same cores. One caller at a time: a call made while another is in
/// flight (another thread, or a nested call) goes to <c>Parallel.For</c>.
/// </summary>
internal static class KernelWorkers
{
    /// <summary>How long an idle worker keeps polling for the next job before it parks (GLM_KERNEL_SPIN_US overrides; 0 = park at once).</summary>
    public static readonly int SpinMicroseconds = int.TryParse(Environment.GetEnvironmentVariable("GLM_KERNEL_SPIN_US"), out int us) && us >= 0 ? us : 200;

    /// <summary>Set to false (or GLM_KERNEL_WORKERS=0) to use <c>Parallel.For</c> for every call.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("GLM_KERNEL_WORKERS") != "0";

    private static readonly object Gate = new();
    private static Worker[] _workers = [];
    private static Job? _current;
    private static int _busy, _parked;

    /// <summary>One call's work: workers compare the reference, so a late worker can never take a job twice.</summary>
    private sealed class Job(Action<int> body, int parts)
    {
        public readonly Action<int> Body = body;
        public readonly int Parts = parts;
        public int Pending = parts - 1;
        public Exception? Failure;
    }

    /// <summary>Runs <paramref name="body"/>(0 … <paramref name="parts"/>−1), part 0 on the calling thread; returns when all are done.</summary>
    public static void Run(int parts, Action<int> body)
    {
        if (parts <= 1) { body(0); return; }
        if (!Enabled || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            // Same exception as the worker path: the part's own, not Parallel.For's AggregateException wrapper.
            try { Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, body); }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0) { ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw(); }
            return;
        }
        try
        {
            EnsureWorkers(parts - 1);
            var job = new Job(body, parts);
            Interlocked.Exchange(ref _current, job); // full fence: pairs with the worker's Interlocked.Increment(_parked)
            if (Volatile.Read(ref _parked) > 0) lock (Gate) Monitor.PulseAll(Gate);
            Exception? own = null;
            try { body(0); }
            catch (Exception e) { own = e; }
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
            if (own is not null) ExceptionDispatchInfo.Capture(own).Throw();
            if (job.Failure is { } failure) ExceptionDispatchInfo.Capture(failure).Throw();
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    private static void EnsureWorkers(int count)
    {
        if (_workers.Length >= count) return;
        var grown = new Worker[count];
        Array.Copy(_workers, grown, _workers.Length);
        for (int i = _workers.Length; i < count; i++) grown[i] = new Worker(i + 1, Volatile.Read(ref _current));
        _workers = grown;
    }

    private sealed class Worker
    {
        private readonly int _part;
        private Job? _seen;

        public Worker(int part, Job? current)
        {
            _part = part;
            _seen = current;
            new Thread(Loop) { IsBackground = true, Name = $"glm-kernel-{part}" }.Start();
        }

        private void Loop()
        {
            long spinTicks = SpinMicroseconds * Stopwatch.Frequency / 1_000_000;
            while (true)
            {
                long start = Stopwatch.GetTimestamp();
                while (Volatile.Read(ref _current) == _seen && Stopwatch.GetTimestamp() - start < spinTicks) Thread.SpinWait(20);
                if (Volatile.Read(ref _current) == _seen)
                {
                    lock (Gate)
                    {
                        Interlocked.Increment(ref _parked);
                        while (Volatile.Read(ref _current) == _seen) Monitor.Wait(Gate);
                        Interlocked.Decrement(ref _parked);
                    }
                }
                var job = Volatile.Read(ref _current)!;
                _seen = job;
                if (_part >= job.Parts) continue;
                try { job.Body(_part); }
                catch (Exception e) { job.Failure ??= e; }
                finally { Interlocked.Decrement(ref job.Pending); }
            }
        }
    }
}
