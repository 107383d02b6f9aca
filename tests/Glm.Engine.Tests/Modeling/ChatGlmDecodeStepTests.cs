using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Tests.Modeling;

/// <summary>The fused single-sequence decode step against the tensor path it replaces: the same logits to the last bit.</summary>
[Collection("KernelSwitches")] // flips ChatGlmDecodeStep.Enabled and CpuInt8Gemv.Int8Activations
public class ChatGlmDecodeStepTests
{
    private static readonly int[] Prompt = { 5, 17, 301, 44, 9, 120, 77, 3, 260, 11 };

    private static GlmModel Model(GlmLayout layout, string dtype, int headDim, bool int8 = false, int hidden = 64) =>
        GlmModel.CreateRandom(ModelPresets.Get("glm4-tiny") with
            {
                Layout = layout, HeadDim = headDim, RotaryDim = headDim / 2, HiddenSize = hidden, FfnHiddenSize = 2 * hidden,
            },
            new GlmLoadOptions { DType = dtype, Device = "cpu", Seed = 17, Quantization = int8 ? GlmQuantization.Int8 : GlmQuantization.None });

    [Theory]
    [InlineData(GlmLayout.ChatGlm, "bf16", 32)] // rotary half 8: the vector rotation
    [InlineData(GlmLayout.ChatGlm, "bf16", 16)] // rotary half 4: the scalar rotation
    [InlineData(GlmLayout.ChatGlm, "fp16", 32)]
    [InlineData(GlmLayout.ChatGlm, "fp32", 32)]
    [InlineData(GlmLayout.HfGlm4, "bf16", 32)] // sandwich norms, HF norm rounding
    [InlineData(GlmLayout.HfGlm4, "fp16", 16)]
    public void FusedStepGivesTheTensorPathsLogitsBitForBit(GlmLayout layout, string dtype, int headDim)
    {
        using var model = Model(layout, dtype, headDim);
        AssertFusedEqualsTensorPath(model);
    }

    [Theory]
    [InlineData(true, 64)]   // int8 activations (AVX512_VNNI machine code for the 128-wide down projection, AVX-VNNI loops
                             // elsewhere; the exact path on CPUs without either)
    [InlineData(true, 128)]  // every layer 128 or 256 wide: all through the machine code where the CPU has AVX512_VNNI
    [InlineData(false, 64)]  // exact fp32 activations
    public void FusedStepWithInt8LayersGivesTheTensorPathsLogitsBitForBit(bool int8Activations, int hidden)
    {
        bool saved = Glm.Engine.Modeling.Kernels.CpuInt8Gemv.Int8Activations;
        try
        {
            Glm.Engine.Modeling.Kernels.CpuInt8Gemv.Int8Activations = int8Activations;
            using var model = Model(GlmLayout.ChatGlm, "bf16", 32, int8: true, hidden);
            Assert.Equal(GlmQuantization.Int8, model.Config.Quantization);
            long before = Glm.Engine.Modeling.Kernels.Int8DotKernel.Calls;
            AssertFusedEqualsTensorPath(model);
            if (int8Activations && Glm.Engine.Modeling.Kernels.Int8DotKernel.IsSupported) // both paths ran the machine code
                Assert.True(Glm.Engine.Modeling.Kernels.Int8DotKernel.Calls - before >= 2 * 10 * 4, "the AVX512_VNNI loops did not run");
        }
        finally { Glm.Engine.Modeling.Kernels.CpuInt8Gemv.Int8Activations = saved; }
    }

    private static void AssertFusedEqualsTensorPath(GlmModel model)
    {
        try
        {
            ChatGlmDecodeStep.Enabled = true;
            long before = ChatGlmDecodeStep.TokensRun;
            var fused = model.ComputeLogits(Prompt, incremental: true);
            Assert.Equal(Prompt.Length, ChatGlmDecodeStep.TokensRun - before);
            ChatGlmDecodeStep.Enabled = false;
            var reference = model.ComputeLogits(Prompt, incremental: true);
            Assert.Equal(Prompt.Length, ChatGlmDecodeStep.TokensRun - before);
            for (int i = 0; i < reference.GetLength(0); i++)
                for (int j = 0; j < reference.GetLength(1); j++)
                    Assert.True(BitConverter.SingleToInt32Bits(reference[i, j]) == BitConverter.SingleToInt32Bits(fused[i, j]),
                        $"token {i}, logit {j}: fused {fused[i, j]} vs tensor path {reference[i, j]}");
        }
        finally { ChatGlmDecodeStep.Enabled = true; }
    }

    [Fact]
    public void ADecodeTokenAllocatesOnlyItsLogits()
    {
        using var model = Model(GlmLayout.ChatGlm, "bf16", 32);
        var network = model.Network;
        using var inference = torch.inference_mode();
        using var cache = network.CreateCache(1, 16);
        using var ids = tensor(new long[] { 7 }, new long[] { 1, 1 });
        for (int position = 0; position < 4; position++)
        {
            using var positions = tensor(new long[] { position }, new long[] { 1, 1 });
            using var scope = NewDisposeScope();
            var logits = network.Forward(ids, positions, cache, null, lastOnly: true);
            Assert.Equal(new long[] { 1, 1, model.Config.VocabSize }, logits.shape);
            Assert.Equal(1, scope.DisposablesCount); // the logits; the tensor path makes ~10 per layer
        }
        Assert.Equal(4, cache.Length);
    }

    [Fact]
    public void MultiRowCachesTakeTheTensorPath()
    {
        using var model = Model(GlmLayout.ChatGlm, "fp32", 32);
        var network = model.Network;
        using var inference = torch.inference_mode();
        using var cache = network.CreateCache(2, 8); // two rows: the scheduler's shape, not the fused step's
        using var ids = tensor(new long[] { 7, 9 }, new long[] { 2, 1 });
        using var positions = tensor(new long[] { 0, 0 }, new long[] { 2, 1 });
        long before = ChatGlmDecodeStep.TokensRun;
        using var logits = network.Forward(ids, positions, cache, null, lastOnly: true);
        Assert.Equal(new long[] { 2, 1, model.Config.VocabSize }, logits.shape);
        Assert.Equal(before, ChatGlmDecodeStep.TokensRun);
    }
}
