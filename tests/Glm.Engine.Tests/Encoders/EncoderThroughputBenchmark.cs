using System.Diagnostics;
using Glm.Engine.Encoders;
using Glm.Engine.Modeling;
using Xunit.Abstractions;

namespace Glm.Engine.Tests.Encoders;

/// <summary>A fact that runs only when GLM_BENCH is set (benchmarks are slow on the 2-core CI host).</summary>
public sealed class EncoderBenchFactAttribute : FactAttribute
{
    public EncoderBenchFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("GLM_BENCH"))) Skip = "env GLM_BENCH not set; set GLM_BENCH=1 to run encoder throughput benchmarks";
    }
}

/// <summary>
/// Passages/s of a random model shaped like bge-small-zh-v1.5 (BERT, hidden 512, 4 layers, 8 heads, FFN 2048, vocab 21128,
/// 512 positions) embedding 256-token passages on CPU, end to end (tokenization, batching, forward, pooling).
/// Run: <c>GLM_BENCH=1 dotnet test tests/Glm.Engine.Tests --filter EncoderThroughputBenchmark --logger "console;verbosity=detailed"</c>.
/// </summary>
public class EncoderThroughputBenchmark(ITestOutputHelper output)
{
    public static readonly EncoderConfig BgeSmallZh = new()
    {
        Family = EncoderFamily.Bert, VocabSize = 21128, HiddenSize = 512, NumLayers = 4, NumHeads = 8, IntermediateSize = 2048,
        MaxPositions = 512, TypeVocabSize = 2, LayerNormEps = 1e-12, PadTokenId = 0,
    };

    [EncoderBenchFact]
    public void BgeSmallZhShapedPassagesPerSecond()
    {
        // Vocabulary: the specials, then CJK ideographs, so a passage of 254 ideographs is exactly 256 tokens.
        var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        for (int cp = 0x4E00; vocab.Count < BgeSmallZh.VocabSize; cp++) vocab.Add(char.ConvertFromUtf32(cp));
        var tokenizer = new BertWordPieceTokenizer(vocab);
        var rng = new Random(1);
        var passages = Enumerable.Range(0, 64)
            .Select(_ => string.Concat(Enumerable.Range(0, 254).Select(_ => vocab[5 + rng.Next(vocab.Count - 5)]))).ToList();
        Assert.Equal(256, tokenizer.Encode(passages[0], 512).Ids.Length);

        var weights = EncoderWeights.Random(BgeSmallZh, 1, pooler: true);
        try
        {
            foreach (var (dtype, batch) in new[] { ("fp32", 32), ("fp32", 8), ("bf16", 32) })
            {
                using var model = EncoderEmbeddingModel.FromWeights(BgeSmallZh, new InMemoryWeights(weights, "random:bge-small-zh-v1.5"),
                    tokenizer, new EncoderEmbeddingOptions { DType = dtype, BatchSize = batch, MaxLength = 512 });
                model.Embed(passages.Take(batch).ToList(), isQuery: false); // warm-up
                var sw = Stopwatch.StartNew();
                var vectors = model.Embed(passages, isQuery: false);
                sw.Stop();
                Assert.Equal(passages.Count, vectors.Length);
                double rate = passages.Count / sw.Elapsed.TotalSeconds;
                output.WriteLine($"bge-small-zh-v1.5 shape, {dtype}, batch {batch}, 256 tokens/passage, {TorchSharp.torch.get_num_threads()} threads: " +
                                 $"{passages.Count} passages in {sw.Elapsed.TotalSeconds:F2} s = {rate:F1} passages/s ({rate * 256:F0} tokens/s)");
            }
            var t0 = Stopwatch.StartNew();
            int tokens = passages.Sum(p => tokenizer.Encode(p, 512).Ids.Length);
            output.WriteLine($"tokenization alone: {passages.Count} passages ({tokens} tokens) in {t0.Elapsed.TotalMilliseconds:F1} ms");
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }
}
