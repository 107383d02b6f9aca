using AgentHost.Cli;

namespace AgentHost.Tests.Serving;

/// <summary>The <c>glm serve</c> verb's argument handling (no model is loaded when the options are invalid).</summary>
public sealed class ServeVerbTests
{
    [Fact]
    public async Task ServingOnAPublicAddressWithoutAKeyIsRefused()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Environment.SetEnvironmentVariable("GLM_API_KEY", null);
        int code = await GlmCommandLine.RunAsync(["serve", "--host", "0.0.0.0", "--model", "random:chatglm3-tiny"], output, error);
        Assert.Equal(1, code);
        Assert.Contains("--api-key", error.ToString());
    }

    [Fact]
    public async Task HelpListsTheServerOptions()
    {
        var output = new StringWriter();
        await GlmCommandLine.RunAsync(["serve", "--help"], output, new StringWriter());
        foreach (var option in new[] { "--host", "--port", "--api-key", "--max-queue", "--max-body-bytes" })
            Assert.Contains(option, output.ToString());
    }
}
