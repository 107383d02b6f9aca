using AgentHost.Rag.Chunking;
using AgentHost.Rag.Stores;
using Glm.Engine;
using Microsoft.Extensions.AI;

namespace AgentHost.Rag.Ingestion;

/// <summary>State of one document flowing through the handlers.</summary>
public sealed class IngestionContext(string path, byte[] content, string contentHash)
{
    /// <summary>Absolute file path; also the document's source key.</summary>
    public string Path { get; } = path;
    /// <summary>File bytes.</summary>
    public byte[] Content { get; } = content;
    /// <summary>SHA-256 of <see cref="Content"/>, hex.</summary>
    public string ContentHash { get; } = contentHash;
    /// <summary>Set by the extract step.</summary>
    public ExtractedDocument? Document { get; set; }
    /// <summary>Set by the chunk step.</summary>
    public IReadOnlyList<TextChunk>? Chunks { get; set; }
    /// <summary>Set by the embed step (stays null without an embedding generator).</summary>
    public IReadOnlyList<ReadOnlyMemory<float>>? Embeddings { get; set; }
}

/// <summary>One pipeline step (extract → chunk → embed → save), in the style of Kernel Memory's handlers.</summary>
public interface IIngestionHandler
{
    /// <summary>Short step name for messages.</summary>
    string StepName { get; }

    /// <summary>Runs the step; throws <see cref="GlmException"/> for bad input.</summary>
    Task InvokeAsync(IngestionContext context, CancellationToken cancellationToken);
}

/// <summary>Extracts plain text and headings with the extractor for the file's extension.</summary>
public sealed class ExtractHandler(ExtractorRegistry extractors) : IIngestionHandler
{
    /// <inheritdoc />
    public string StepName => "extract";

    /// <inheritdoc />
    public Task InvokeAsync(IngestionContext context, CancellationToken cancellationToken)
    {
        var extractor = extractors.For(context.Path) ?? throw new GlmException($"{context.Path}: unsupported format");
        context.Document = extractor.Extract(context.Path, context.Content);
        return Task.CompletedTask;
    }
}

/// <summary>Cuts the extracted text into chunks.</summary>
public sealed class ChunkHandler(ChineseChunker chunker) : IIngestionHandler
{
    /// <inheritdoc />
    public string StepName => "chunk";

    /// <inheritdoc />
    public Task InvokeAsync(IngestionContext context, CancellationToken cancellationToken)
    {
        var doc = context.Document ?? throw new InvalidOperationException("chunk step ran before extract");
        context.Chunks = chunker.Chunk(doc.Text, doc.Headings);
        if (context.Chunks.Count == 0) throw new GlmException($"{context.Path}: no text to index after extraction");
        return Task.CompletedTask;
    }
}

/// <summary>Embeds each chunk's retrieval text (section + text) in batches; does nothing without a generator.</summary>
public sealed class EmbedHandler(IEmbeddingGenerator<string, Embedding<float>>? generator, int batchSize) : IIngestionHandler
{
    /// <inheritdoc />
    public string StepName => "embed";

    /// <inheritdoc />
    public async Task InvokeAsync(IngestionContext context, CancellationToken cancellationToken)
    {
        if (generator is null) return;
        var chunks = context.Chunks ?? throw new InvalidOperationException("embed step ran before chunk");
        var vectors = new List<ReadOnlyMemory<float>>(chunks.Count);
        foreach (var batch in chunks.Chunk(Math.Max(1, batchSize)))
        {
            var embeddings = await generator.GenerateAsync(batch.Select(c => c.RetrievalText), cancellationToken: cancellationToken);
            if (embeddings.Count != batch.Length)
                throw new GlmException($"{context.Path}: embedding generator returned {embeddings.Count} vectors for {batch.Length} chunks");
            vectors.AddRange(embeddings.Select(e => e.Vector));
        }
        context.Embeddings = vectors;
    }
}

/// <summary>Writes the document and its chunks to the knowledge base in one transaction.</summary>
public sealed class SaveHandler(IKnowledgeBase knowledgeBase) : IIngestionHandler
{
    /// <inheritdoc />
    public string StepName => "save";

    /// <inheritdoc />
    public Task InvokeAsync(IngestionContext context, CancellationToken cancellationToken)
    {
        var doc = context.Document ?? throw new InvalidOperationException("save step ran before extract");
        var chunks = context.Chunks ?? throw new InvalidOperationException("save step ran before chunk");
        cancellationToken.ThrowIfCancellationRequested();
        knowledgeBase.UpsertDocument(new DocumentUpsert(context.Path, context.ContentHash, doc.Format, doc.Text.Length, chunks, context.Embeddings));
        return Task.CompletedTask;
    }
}

/// <summary>Maps file extensions to extractors.</summary>
public sealed class ExtractorRegistry
{
    private readonly Dictionary<string, IDocumentExtractor> _byExtension = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Registry with the given extractors, or the built-in txt/md/html/pdf/docx ones.</summary>
    public ExtractorRegistry(IEnumerable<IDocumentExtractor>? extractors = null)
    {
        foreach (var e in extractors ?? [new PlainTextExtractor(), new MarkdownExtractor(), new HtmlExtractor(), new PdfExtractor(), new DocxExtractor()])
            foreach (var ext in e.Extensions) _byExtension[ext] = e;
    }

    /// <summary>Supported extensions, sorted.</summary>
    public IReadOnlyList<string> Extensions => _byExtension.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>The extractor for the path's extension, or null when unsupported.</summary>
    public IDocumentExtractor? For(string path) => _byExtension.GetValueOrDefault(System.IO.Path.GetExtension(path));
}
