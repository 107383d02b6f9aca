using Glm.Engine.Runtime;
using static TorchSharp.torch;

namespace Glm.Engine.Tests;

/// <summary>Moving tensors onto 2 MiB pages (<see cref="HugePages"/>) changes where they live, never what they hold.</summary>
public class HugePagesTests
{
    [Fact]
    public void CollapsingKeepsATensorsValues()
    {
        Glm.Engine.Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var t = randn(4, 1 << 20); // 16 MiB: at least seven whole 2 MiB pages inside
        var copy = t.clone();
        long bytes = HugePages.Collapse(t);
        if (HugePages.Supported && bytes == 0) bytes = HugePages.Collapse(t); // once more: the kernel may be busy compacting
        Assert.True(t.equal(copy).all().item<bool>(), "values changed");
        Assert.InRange(bytes, 0, 16L << 20);
        Assert.Equal(0, bytes % (2L << 20)); // whole huge pages only
        if (HugePages.Supported) Assert.True(bytes >= 12L << 20, $"collapsed {bytes} bytes of a 16 MiB tensor");
        if (bytes > 0) Assert.True(HugePages.ProcessBytes() >= bytes, "/proc/self/smaps_rollup does not show the huge pages");
    }

    [Fact]
    public void TensorsWithoutAWhole2MiBPageAreLeftAlone()
    {
        Glm.Engine.Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        Assert.Equal(0, HugePages.Collapse(ones(1 << 18))); // 1 MiB
        Assert.Equal(0, HugePages.Collapse(ones(0)));
    }

    /// <summary>A model's logits are bit for bit the same after its weights move onto huge pages (raw pointers held by the
    /// decode kernels stay valid: the kernel remaps the same addresses).</summary>
    [Fact]
    public void ModelLogitsDoNotChangeWhenTheWeightsMove()
    {
        var cfg = Glm.Engine.Modeling.ModelPresets.Get("glm4-tiny") with { HiddenSize = 128, FfnHiddenSize = 256, VocabSize = 8192 };
        using var model = GlmModel.CreateRandom(cfg, new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 3, HugePages = false });
        int[] prompt = [5, 17, 301, 44, 9];
        var before = model.ComputeLogits(prompt, incremental: true);
        long bytes = model.MapWeightsOntoHugePages(); // the 8192 × 128 fp32 embedding and head are 4 MiB each
        var after = model.ComputeLogits(prompt, incremental: true);
        if (HugePages.Supported) Assert.True(bytes >= 2L << 20, $"collapsed {bytes} bytes");
        for (int i = 0; i < before.GetLength(0); i++)
            for (int j = 0; j < before.GetLength(1); j++)
                Assert.Equal(BitConverter.SingleToInt32Bits(before[i, j]), BitConverter.SingleToInt32Bits(after[i, j]));
    }

    /// <summary>A model disposed while its weights are still moving in the background (and disposed twice) stops cleanly.</summary>
    [Fact]
    public void DisposingDuringTheBackgroundMoveIsSafe()
    {
        var cfg = Glm.Engine.Modeling.ModelPresets.Get("glm4-tiny") with { HiddenSize = 128, FfnHiddenSize = 256, VocabSize = 8192 };
        var model = GlmModel.CreateRandom(cfg, new GlmLoadOptions { DType = "fp32", Device = "cpu", Seed = 4 });
        model.Dispose();
        model.Dispose();
    }
}
