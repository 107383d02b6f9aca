using System.CommandLine;
using System.Globalization;
using Glm.Engine;
using Glm.Engine.Diagnostics;

namespace AgentHost.Cli.Verbs;

/// <summary>
/// <c>glm quantize</c>: saves an int8 weight-only checkpoint (<c>--out</c>) and/or reports the accuracy of int8 against the
/// unquantized model (<c>--report</c>): logit errors and the perplexity change, and on the decode path both activation modes of
/// the int8 GEMV (exact fp32 and int8).
/// </summary>
internal static class QuantizeVerb
{
    public static Command Create(CliConsole console)
    {
        var model = new ModelOptions();
        var output = new Option<string?>("--out") { Description = "Folder for the int8 checkpoint (safetensors with <name>.weight_scale tensors; config.json records the quantization)." };
        var report = new Option<bool>("--report") { Description = "Compare int8 with the unquantized model: max/mean |logit error|, arg-max agreement, perplexity change; on the decode path with exact and with int8 activations." };
        var textFile = new Option<string?>("--text-file") { Description = "UTF-8 text for --report (required for models with a tokenizer; random models use random ids)." };
        var logitTokens = new Option<int>("--report-tokens") { DefaultValueFactory = _ => 256, Description = "Tokens whose logits --report compares." };
        var decodeTokens = new Option<int>("--report-decode-tokens") { DefaultValueFactory = _ => 16, Description = "Tokens --report feeds one at a time (the decode path, where the int8 GEMV runs), with exact and with int8 activations." };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 2048, Description = "Tokens of the text --report scores for perplexity." };
        var context = new Option<int>("--context") { DefaultValueFactory = _ => 512, Description = "Perplexity sliding-window size." };
        var cmd = new Command("quantize", "Quantize linear layers to int8 (per-row symmetric, fp32 scales): save the checkpoint and/or report the accuracy loss.");
        model.AddTo(cmd);
        foreach (var o in new Option[] { output, report, textFile, logitTokens, decodeTokens, maxTokens, context }) cmd.Add(o);
        cmd.SetAction((parse, ct) =>
        {
            string? folder = parse.GetValue(output);
            if (folder is null && !parse.GetValue(report))
                throw new GlmException("glm quantize needs --out DIR (save an int8 checkpoint), --report (accuracy), or both.");
            using var quantized = model.Load(parse, GlmQuantization.Int8);
            if (folder is not null)
            {
                quantized.Save(folder);
                VerbHelpers.CopyTokenizerFiles(quantized.Source, folder);
                console.Out.WriteLine($"int8 model: {folder}");
            }
            if (!parse.GetValue(report)) return Task.FromResult(0);

            using var reference = model.Load(parse, GlmQuantization.None);
            if (reference.Quantization != GlmQuantization.None)
                throw new GlmException($"{reference.Source} is already an int8 checkpoint; --report needs the unquantized model.");
            var (ids, chars, what) = ReportInput(reference, parse.GetValue(textFile), parse.GetValue(maxTokens));
            var r = QuantizationReport.Compare(reference, quantized, ids, chars, parse.GetValue(logitTokens), parse.GetValue(decodeTokens), parse.GetValue(context), ct);
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine($"model: {reference.Source}  dtype: {GlmModel.DTypeName(reference.DType)}  text: {what}");
            console.Out.WriteLine(string.Format(inv, "logits ({0} tokens, full forward): max |error| {1:G4}  mean |error| {2:G4}  max |logit| {3:G4}  arg-max agreement {4:P1}",
                r.LogitTokens, r.MaxAbsLogitError, r.MeanAbsLogitError, r.MaxAbsReferenceLogit, r.ArgmaxAgreement));
            foreach (var d in new[] { r.DecodeExactActivations, r.DecodeInt8Activations })
                if (d is not null)
                    console.Out.WriteLine(string.Format(inv, "logits ({0} tokens, incremental decode / int8 GEMV, {1}): max |error| {2:G4}  mean |error| {3:G4}  arg-max agreement {4:P1}  perplexity reference {5:F4} → {6:F4} ({7:+0.00%;-0.00%})",
                        r.DecodeTokens, d.Activations, d.MaxAbsLogitError, d.MeanAbsLogitError,
                        d.ArgmaxAgreement, r.DecodeReferencePerplexity, d.Perplexity, d.Perplexity / r.DecodeReferencePerplexity - 1));
            console.Out.WriteLine(string.Format(inv, "perplexity ({0} tokens scored): reference {1:F4}  int8 {2:F4}  change {3:+0.00%;-0.00%}  bits/char {4:F4} → {5:F4}",
                r.Reference.ScoredTokens, r.Reference.Perplexity, r.Quantized.Perplexity, r.PerplexityChange, r.Reference.BitsPerCharacter, r.Quantized.BitsPerCharacter));
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static (IReadOnlyList<int> Ids, long Chars, string What) ReportInput(GlmModel model, string? textFile, int maxTokens)
    {
        if (textFile is not null)
        {
            string text = VerbHelpers.ReadText(textFile);
            var ids = VerbHelpers.RequireTokenizer(model, "--text-file").Encode(text);
            if (ids.Count > maxTokens)
            {
                ids = ids.Take(maxTokens).ToList();
                text = VerbHelpers.RequireTokenizer(model, "--text-file").Decode(ids);
            }
            return (ids, text.EnumerateRunes().LongCount(), $"{textFile} (first {ids.Count} tokens)");
        }
        if (model.Tokenizer is not null)
            throw new GlmException($"--report on {model.Source} needs --text-file (e.g. a file under ../shared/data/corpus).");
        var rng = new Random(1234);
        var random = Enumerable.Range(0, Math.Min(maxTokens, model.MaxContext)).Select(_ => rng.Next(model.Config.VocabSize)).ToList();
        return (random, random.Count, $"{random.Count} random ids (no tokenizer; bits/char counts one per id)");
    }
}
