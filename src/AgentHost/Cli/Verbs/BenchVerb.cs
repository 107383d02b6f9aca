using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.Diagnostics;
using Glm.Engine.Modeling;

namespace AgentHost.Cli.Verbs;

/// <summary><c>glm bench</c>: prefill/decode speed against the machine's measured memory bandwidth.</summary>
internal static class BenchVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var promptTokens = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 128, Description = "Prompt length." };
        var newTokens = new Option<int>("--new-tokens") { DefaultValueFactory = _ => 256, Description = "Tokens to decode." };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "Prompts decoded together." };
        var cmd = new Command("bench", "Measure prefill and decode tokens/s, time to first token, peak memory and the fraction of the decode roofline.");
        model.AddTo(cmd);
        cmd.Add(promptTokens);
        cmd.Add(newTokens);
        cmd.Add(batch);
        cmd.SetAction((parse, ct) =>
        {
            var load = System.Diagnostics.Stopwatch.StartNew();
            using var glm = model.Load(parse);
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine(string.Format(inv, "model: {0}  layout: {1}  dtype: {2}  quantization: {7}  device: {3}  threads: {4}  parameters: {5:N0}  (loaded in {6:F1} s)",
                glm.Source, glm.Config.Layout, GlmModel.DTypeName(glm.DType), glm.Device, TorchSharp.torch.get_num_threads(),
                ModelPresets.ParameterCount(glm.Config), load.Elapsed.TotalSeconds, GlmQuantizationNames.Name(glm.Quantization)));
            var settings = new BenchmarkSettings(parse.GetValue(promptTokens), parse.GetValue(newTokens), parse.GetValue(batch));
            var r = DecodeBenchmark.Run(glm, settings, new Progress<string>(s => console.Error.WriteLine($"... {s}")), ct);
            console.Out.WriteLine(string.Format(inv, "prefill: {0:F1} tok/s   decode: {1:F2} tok/s   time to first token: {2:F0} ms   peak memory: {3:F2} GiB",
                r.PrefillTokensPerSecond, r.DecodeTokensPerSecond, r.TimeToFirstToken.TotalMilliseconds, r.PeakWorkingSetBytes / (double)(1L << 30)));
            console.Out.WriteLine(string.Format(inv, "read bandwidth: {0:F1} GB/s   weights per token: {1:F1} MB{4}   roofline: {2:F2} tok/s   decode = {3:P1} of roofline",
                r.ReadBandwidthGBs, r.WeightBytesPerToken / 1e6, r.RooflineStepsPerSecond, r.FractionOfRoofline,
                glm.Quantization == GlmQuantization.Int8 ? " (int8 weights + fp32 scales)" : ""));
            return Task.FromResult(0);
        });
        return cmd;
    }
}
