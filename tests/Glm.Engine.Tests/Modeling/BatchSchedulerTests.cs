using Glm.Engine.Generation;
using Glm.Engine.Modeling;

namespace Glm.Engine.Tests.Modeling;

// Asserts that decode steps ran through the fused step, which the collection's tests switch off while they compare paths
// (CpuDecodeOps.Enabled, ChatGlmDecodeStep.Enabled): running beside them, a whole generation could fall in that window.
[Collection("KernelSwitches")]
public class BatchSchedulerTests
{
    private static GlmModel Tiny(string preset = "glm4-tiny", string dtype = "fp32") =>
        GlmModel.CreateRandom(ModelPresets.Get(preset), new GlmLoadOptions { DType = dtype, Seed = 3, Device = "cpu" });

    private static int[] RandomPrompt(int length, int seed, int vocab)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => rng.Next(vocab)).ToArray();
    }

    // Reads a stream to the end; signals after `signalAfter` tokens so the test can submit more requests mid-run.
    private static async Task<(List<int> Ids, FinishReason Finish)> Consume(IAsyncEnumerable<GenerationChunk> stream, IReadOnlyCollection<int> stopIds,
        TaskCompletionSource? signal = null, int signalAfter = 0)
    {
        var ids = new List<int>();
        var finish = FinishReason.None;
        await foreach (var c in stream)
        {
            if (c.TokenId >= 0 && (c.Finish != FinishReason.Stop || !stopIds.Contains(c.TokenId))) ids.Add(c.TokenId);
            if (ids.Count == signalAfter) signal?.TrySetResult();
            finish = c.Finish;
        }
        signal?.TrySetResult();
        return (ids, finish);
    }

    [Theory]
    [InlineData("fp32")]
    [InlineData("bf16")]
    public async Task ALoneRequestDecodesThroughTheFusedStepWithTheSameTokens(string dtype)
    {
        using var model = Tiny("glm4-tiny", dtype);
        var prompt = RandomPrompt(13, 7, model.Config.VocabSize);
        var options = new GenerationOptions { MaxNewTokens = 20, StopTokenIds = Array.Empty<int>() };
        var expected = await model.GenerateIdsAsync(prompt, options);
        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = 4, MaxContext = 64 });
        var (ids, _) = await Consume(scheduler.GenerateAsync(prompt, options), Array.Empty<int>());
        Assert.Equal(expected, ids);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) // the fused step needs the managed kernels
            Assert.Equal(scheduler.DecodeSteps, scheduler.FusedDecodeSteps);
    }

    [Theory]
    [InlineData("glm4-tiny", 4, "fp32")]
    [InlineData("glm4-tiny", 8, "fp32")]
    [InlineData("chatglm3-tiny", 6, "fp32")]
    [InlineData("glm4-tiny", 8, "bf16")] // 2–8 rows through the vdpbf16ps tiles where the CPU has them, one row through the single-row kernel
    public async Task StaggeredContinuousBatchingEqualsSequentialGreedy(string preset, int maxBatch, string dtype)
    {
        using var model = Tiny(preset, dtype);
        var lengths = new[] { 9, 1, 23, 5, 40, 2, 17, 11 };
        var prompts = lengths.Select((n, i) => RandomPrompt(n, 100 + i, model.Config.VocabSize)).ToArray();
        // Mixed limits; two requests use the model's default stop ids, so some may end on a stop token.
        var options = prompts.Select((_, i) => new GenerationOptions
        {
            MaxNewTokens = i < 3 ? 60 + 5 * i : 10 + 3 * i,
            StopTokenIds = i % 4 == 3 ? null : Array.Empty<int>(),
        }).ToArray();
        var expected = new List<IReadOnlyList<int>>();
        for (int i = 0; i < prompts.Length; i++) expected.Add(await model.GenerateIdsAsync(prompts[i], options[i]));

        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = maxBatch, MaxContext = 128 });
        var tasks = new Task<(List<int> Ids, FinishReason Finish)>[prompts.Length];
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Three requests first; the rest join while the first is decoding (and some wait for a free slot: MaxBatch = 4).
        for (int i = 0; i < 3; i++)
            tasks[i] = Consume(scheduler.GenerateAsync(prompts[i], options[i]), options[i].StopTokenIds ?? model.DefaultStopIds, i == 0 ? started : null, 4);
        await started.Task;
        for (int i = 3; i < prompts.Length; i++)
        {
            tasks[i] = Consume(scheduler.GenerateAsync(prompts[i], options[i]), options[i].StopTokenIds ?? model.DefaultStopIds);
            await Task.Delay(3);
        }
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < prompts.Length; i++)
            Assert.True(expected[i].SequenceEqual(results[i].Ids),
                $"request {i} (prompt {lengths[i]} tokens): expected [{string.Join(",", expected[i])}] got [{string.Join(",", results[i].Ids)}]");
        Assert.Equal(0, scheduler.ActiveCount);
        Assert.Equal(0, scheduler.WaitingCount);
        Assert.InRange(scheduler.PeakActive, 4, maxBatch);
        Assert.True(scheduler.JoinedRunningBatch >= 5, $"only {scheduler.JoinedRunningBatch} requests joined a running batch");
    }

    [Fact]
    public async Task CancelledRequestFreesItsSlotWithoutDisturbingOthers()
    {
        using var model = Tiny();
        var noStop = Array.Empty<int>();
        var a = RandomPrompt(7, 1, 512);
        var b = RandomPrompt(13, 2, 512);
        var c = RandomPrompt(4, 3, 512);
        var options = new GenerationOptions { MaxNewTokens = 30, StopTokenIds = noStop };
        var expectedB = await model.GenerateIdsAsync(b, options);
        var expectedC = await model.GenerateIdsAsync(c, options);

        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = 2, MaxContext = 600 });
        using var cts = new CancellationTokenSource();
        var taskB = Consume(scheduler.GenerateAsync(b, options), noStop);
        var chunksA = new List<GenerationChunk>();
        await foreach (var chunk in scheduler.GenerateAsync(a, options with { MaxNewTokens = 500 }, cts.Token))
        {
            chunksA.Add(chunk);
            if (chunksA.Count == 3) cts.Cancel();
        }
        Assert.Equal(FinishReason.Cancelled, chunksA[^1].Finish);
        Assert.True(chunksA.Count < 400, $"cancelled request went on for {chunksA.Count} chunks");
        // Only two slots: C can run only because A's slot was freed.
        var resultC = await Consume(scheduler.GenerateAsync(c, options), noStop);
        var resultB = await taskB;
        Assert.Equal(expectedB, resultB.Ids);
        Assert.Equal(expectedC, resultC.Ids);

        // Abandoning an enumeration (break) frees the slot too.
        await foreach (var _ in scheduler.GenerateAsync(a, options with { MaxNewTokens = 500 })) break;
        for (int i = 0; i < 200 && scheduler.ActiveCount > 0; i++) await Task.Delay(10);
        Assert.Equal(0, scheduler.ActiveCount);
    }

    [Fact]
    public async Task SeededSampledRequestGivesTheSameTokensBatchedAsAlone()
    {
        using var model = Tiny();
        var prompt = RandomPrompt(12, 7, 512);
        var sampled = new GenerationOptions { MaxNewTokens = 24, Temperature = 0.9f, TopP = 0.9f, TopK = 50, RepetitionPenalty = 1.1f, Seed = 42, StopTokenIds = Array.Empty<int>() };
        var greedy = new GenerationOptions { MaxNewTokens = 24, StopTokenIds = Array.Empty<int>() };
        var alone = await model.GenerateIdsAsync(prompt, sampled);

        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = 4, MaxContext = 64 });
        var neighbours = Enumerable.Range(0, 3).Select(i => scheduler.GenerateIdsAsync(RandomPrompt(3 + 5 * i, 20 + i, 512), greedy)).ToArray();
        var batched = await scheduler.GenerateIdsAsync(prompt, sampled);
        await Task.WhenAll(neighbours);
        Assert.Equal(alone, batched);
    }

    [Fact]
    public async Task PromptsThatDoNotFitAreRejectedClearly()
    {
        using var model = Tiny();
        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = 2, MaxContext = 16 });
        var ex = Assert.Throws<GlmException>(() => scheduler.GenerateAsync(RandomPrompt(16, 1, 512)));
        Assert.Contains("does not fit", ex.Message);
        Assert.Throws<GlmException>(() => scheduler.GenerateAsync(Array.Empty<int>()));
        // A prompt that fits is capped at the scheduler's context, as GenerateAsync caps at the model's.
        var ids = await scheduler.GenerateIdsAsync(RandomPrompt(12, 1, 512), new GenerationOptions { MaxNewTokens = 50, StopTokenIds = Array.Empty<int>() });
        Assert.Equal(4, ids.Count);
        Assert.Throws<GlmException>(() => new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = 0 }));
    }
}

/// <summary>Counts live tensors process-wide, so it runs with no other test class beside it.</summary>
[CollectionDefinition(nameof(TensorCountingTests), DisableParallelization = true)]
public sealed class TensorCountingCollection { }

[Collection(nameof(TensorCountingTests))]
public class TensorCountingTests
{
    private static int[] RandomPrompt(int length, int seed, int vocab)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => rng.Next(vocab)).ToArray();
    }

    [Fact]
    public async Task DecodeLoopDoesNotLeakTensors()
    {
        using var model = GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny"), new GlmLoadOptions { DType = "fp32", Seed = 3, Device = "cpu" });
        using var scheduler = new BatchScheduler(model, new BatchSchedulerOptions { MaxBatch = 3, MaxContext = 400 });
        var options = new GenerationOptions { MaxNewTokens = 20, StopTokenIds = Array.Empty<int>() };
        async Task Round(int tokens) => await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            scheduler.GenerateIdsAsync(RandomPrompt(5 + i, i, 512), options with { MaxNewTokens = tokens - 7 * i })));
        await Round(20);
        long before = TorchSharp.torch.Tensor.TotalCount;
        await Round(300);
        long after = TorchSharp.torch.Tensor.TotalCount;
        Assert.True(after - before < 20, $"live tensors grew from {before} to {after} over ~900 decoded tokens");
    }
}
