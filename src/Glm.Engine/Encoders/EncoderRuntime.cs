using Glm.Engine.Checkpoints;
using Glm.Engine.Modeling;
using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Encoders;

/// <summary>Options shared by <see cref="EncoderEmbeddingModel"/> and <see cref="CrossEncoderReranker"/>.</summary>
public class EncoderOptions
{
    /// <summary>"cpu", "cuda", "cuda:N" or "auto"/null (CUDA when available).</summary>
    public string? Device { get; init; } = "cpu";
    /// <summary>Compute dtype: fp32 (default), bf16 or fp16.</summary>
    public string DType { get; init; } = "fp32";
    /// <summary>Longest token sequence per input, special tokens included; longer inputs are truncated. 0 = the model's limit (at most 512).</summary>
    public int MaxLength { get; init; }
    /// <summary>Inputs per forward pass. Inputs are sorted by length and padded per batch.</summary>
    public int BatchSize { get; init; } = 32;
}

/// <summary>
/// Runs an <see cref="EncoderNetwork"/> over many tokenized inputs: sorts them by length (longest first), cuts batches of
/// <see cref="EncoderOptions.BatchSize"/>, pads each batch only to its own longest input, and hands each batch's hidden
/// states to a callback together with the original indices.
/// </summary>
internal sealed class EncoderRunner : IDisposable
{
    public EncoderNetwork Network { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    public int MaxLength { get; }
    public int BatchSize { get; }

    public EncoderRunner(EncoderNetwork network, Device device, ScalarType dtype, EncoderOptions options, string source)
    {
        Network = network;
        Device = device;
        DType = dtype;
        int limit = network.Config.MaxSequenceLength;
        int max = options.MaxLength == 0 ? Math.Min(512, limit) : options.MaxLength;
        if (max < 2 || max > limit)
            throw new GlmException($"{source}: max length {options.MaxLength} is outside [2, {limit}] (the model's max_position_embeddings allows {limit} tokens).");
        if (options.BatchSize < 1)
            throw new GlmException($"{source}: batch size {options.BatchSize}; expected at least 1.");
        MaxLength = max;
        BatchSize = options.BatchSize;
    }

    /// <summary>
    /// Calls <paramref name="onBatch"/>(hidden [b, s, H], attention mask [b, s] bool, original indices) per batch, inside
    /// inference mode and a dispose scope; the callback copies out what it needs.
    /// </summary>
    public void Run(IReadOnlyList<EncodedText> inputs, bool useTypeIds, Action<Tensor, Tensor, int[]> onBatch)
    {
        int vocab = Network.Config.VocabSize, types = Network.Config.TypeVocabSize;
        var order = Enumerable.Range(0, inputs.Count).OrderByDescending(i => inputs[i].Ids.Length).ThenBy(i => i).ToArray();
        using var _ = inference_mode();
        for (int start = 0; start < order.Length; start += BatchSize)
        {
            var idx = order.Skip(start).Take(BatchSize).ToArray();
            int s = idx.Max(i => inputs[i].Ids.Length);
            var ids = new long[idx.Length * s];
            var typeIds = new long[idx.Length * s];
            var mask = new bool[idx.Length * s];
            Array.Fill(ids, Network.Config.PadTokenId);
            for (int r = 0; r < idx.Length; r++)
            {
                var e = inputs[idx[r]];
                for (int j = 0; j < e.Ids.Length; j++)
                {
                    int id = e.Ids[j];
                    if ((uint)id >= (uint)vocab)
                        throw new GlmException($"token id {id} is outside the model's vocabulary [0, {vocab}) (config.json vocab_size); the tokenizer does not match the weights.");
                    ids[r * s + j] = id;
                    typeIds[r * s + j] = Math.Min(e.TypeIds[j], types - 1);
                    mask[r * s + j] = true;
                }
            }
            using var scope = NewDisposeScope();
            var idT = tensor(ids, new long[] { idx.Length, s }, device: Device);
            var maskT = tensor(mask, new long[] { idx.Length, s }, device: Device);
            var typeT = useTypeIds ? tensor(typeIds, new long[] { idx.Length, s }, device: Device) : null;
            var hidden = Network.Forward(idT, maskT, typeT);
            onBatch(hidden, maskT, idx);
        }
    }

    /// <summary>Resolves device and dtype from the options.</summary>
    public static (Device Device, ScalarType DType) Resolve(EncoderOptions options)
    {
        TorchRuntime.EnsureInitialized();
        var device = TorchRuntime.ResolveDevice(options.Device);
        var dtype = options.DType.ToLowerInvariant() switch
        {
            "fp32" or "float32" => ScalarType.Float32,
            "bf16" or "bfloat16" => ScalarType.BFloat16,
            "fp16" or "float16" => ScalarType.Float16,
            _ => throw new GlmException($"dtype '{options.DType}' is not supported; expected fp32, bf16 or fp16."),
        };
        return (device, dtype);
    }

    /// <summary>Opens a model folder's checkpoint as a weight source; the caller disposes the reader.</summary>
    public static CheckpointReader OpenCheckpoint(string folder)
    {
        if (!Directory.Exists(folder))
            throw new GlmException($"model folder '{folder}' does not exist; expected a folder with config.json, weights and tokenizer files.");
        return CheckpointReader.Open(folder);
    }

    public void Dispose() => Network.Dispose();
}
