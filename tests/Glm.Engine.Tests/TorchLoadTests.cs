using Glm.Engine.Runtime;
using TorchSharp;

namespace Glm.Engine.Tests;

public class TorchLoadTests
{
    [Fact]
    public void LibtorchLoadsAndComputesInBf16()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var a = torch.ones(4, 4, dtype: torch.bfloat16);
        var b = torch.matmul(a, a).to(torch.float32);
        Assert.Equal(4f, b[0, 0].item<float>());
    }
}
