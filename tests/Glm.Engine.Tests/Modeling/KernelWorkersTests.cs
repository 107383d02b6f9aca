using Glm.Engine.Modeling.Kernels;

namespace Glm.Engine.Tests.Modeling;

[Collection("KernelSwitches")] // one test flips KernelWorkers.Enabled
public class KernelWorkersTests
{
    [Fact]
    public void EveryPartRunsExactlyOncePerCall()
    {
        for (int call = 0; call < 2000; call++)
        {
            int parts = 2 + call % 3; // 2, 3, 4: the worker set grows and late workers must skip jobs with fewer parts
            var hits = new int[parts];
            KernelWorkers.Run(parts, p => Interlocked.Increment(ref hits[p]));
            Assert.All(hits, h => Assert.Equal(1, h));
            if (call % 500 == 0) Thread.Sleep(2); // let the workers park, so waking them is exercised too
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // the Parallel.For path (switched off, nested or concurrent callers) throws the same exception
    public void WorkerExceptionReachesTheCaller(bool workersEnabled)
    {
        bool before = KernelWorkers.Enabled;
        KernelWorkers.Enabled = workersEnabled;
        try
        {
            var error = Assert.Throws<InvalidOperationException>(() =>
                KernelWorkers.Run(2, p => { if (p == 1) throw new InvalidOperationException("part 1 failed"); }));
            Assert.Equal("part 1 failed", error.Message);
        }
        finally { KernelWorkers.Enabled = before; }
        int done = 0;
        KernelWorkers.Run(2, _ => Interlocked.Increment(ref done)); // still usable afterwards
        Assert.Equal(2, done);
    }

    [Fact]
    public void ConcurrentAndNestedCallersAllComplete()
    {
        long total = 0;
        Parallel.For(0, 8, _ =>
        {
            for (int i = 0; i < 300; i++)
                KernelWorkers.Run(2, p =>
                {
                    Interlocked.Increment(ref total);
                    if (i % 100 == 0) KernelWorkers.Run(2, _ => Interlocked.Increment(ref total)); // nested: falls back to Parallel.For
                });
        });
        // 8 callers × 300 calls × 2 parts, plus 8 × 3 outer calls × 2 parts × 2 nested parts.
        Assert.Equal(8 * 300 * 2 + 8 * 3 * 2 * 2, total);
    }
}
