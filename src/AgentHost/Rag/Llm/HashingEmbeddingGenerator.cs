using System.Text;
using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Llm;

/// <summary>
/// Embedding by feature hashing of character 1–3-grams (punctuation and spaces ignored), L2-normalised. It is a
/// <b>lexical baseline</b>, not a semantic model: it lets the dense and hybrid code paths run (and be measured) without an
/// embedding server. Configure <c>Embedding:Provider = openai</c> for a real embedding model.
/// </summary>
public sealed class HashingEmbeddingGenerator(int dimensions = 256) : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>Vector size.</summary>
    public int Dimensions { get; } = dimensions;

    /// <summary>The vector for one text.</summary>
    public float[] Embed(string text)
    {
        var v = new float[Dimensions];
        var chars = text.Where(c => !char.IsWhiteSpace(c) && !char.IsPunctuation(c) && !char.IsSymbol(c)).ToArray();
        Span<byte> buffer = stackalloc byte[12];
        for (int n = 1; n <= 3; n++)
            for (int i = 0; i + n <= chars.Length; i++)
            {
                int len = Encoding.UTF8.GetBytes(chars.AsSpan(i, n), buffer);
                ulong hash = Fnv1a(buffer[..len]);
                int slot = (int)(hash % (ulong)Dimensions);
                v[slot] += ((hash >> 40) & 1) == 0 ? 1f : -1f;
            }
        float norm = MathF.Sqrt(v.Sum(x => x * x));
        if (norm > 0) for (int i = 0; i < v.Length; i++) v[i] /= norm;
        return v;
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in bytes) { h ^= b; h *= 1099511628211UL; }
        return h ^ (h >> 29);
    }

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default) =>
        Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v)) { ModelId = "hashing-char-ngram" })));

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(EmbeddingGeneratorMetadata)
            ? new EmbeddingGeneratorMetadata("glmsk-hashing", null, "hashing-char-ngram", Dimensions)
            : serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    /// <inheritdoc />
    public void Dispose() { }
}
