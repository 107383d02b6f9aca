namespace AgentHost.Hosting;

/// <summary>
/// Everything the RAG verbs read from configuration (appsettings.json next to the program, then environment variables with
/// the prefix <c>GLM_</c> such as <c>GLM_Chat__Provider=openai</c>, then command-line options). Every key is documented in
/// the shipped appsettings.json.
/// </summary>
public sealed class GlmSettings
{
    /// <summary>Section "Rag".</summary>
    public RagSettings Rag { get; set; } = new();

    /// <summary>Section "Chat".</summary>
    public ChatSettings Chat { get; set; } = new();

    /// <summary>Section "Embedding".</summary>
    public EmbeddingSettings Embedding { get; set; } = new();

    /// <summary>Section "Summarize".</summary>
    public SummarizeSettings Summarize { get; set; } = new();
}

/// <summary>Knowledge bases, prompts and retrieval.</summary>
public sealed class RagSettings
{
    /// <summary>Folder of the knowledge-base files; null = env GLMSK_KB_ROOT, else ~/.glmsk/kb.</summary>
    public string? KbRoot { get; set; }

    /// <summary>Knowledge base used when --kb is not given; built from <see cref="SamplesDir"/> on first use when it is "samples".</summary>
    public string DefaultKb { get; set; } = "samples";

    /// <summary>Folder of the bundled sample documents; null = samples/docs next to the program or in a parent folder.</summary>
    public string? SamplesDir { get; set; }

    /// <summary>Folder of the prompt templates; null = prompts/ next to the program.</summary>
    public string? PromptsDir { get; set; }

    /// <summary>Chunks retrieved per question.</summary>
    public int TopK { get; set; } = 5;

    /// <summary>The top hits count as relevant when one holds at least this fraction of the question's terms (CJK bigrams, words) occurs in it.</summary>
    public double MinTermCoverage { get; set; } = 0.25;

    /// <summary>...or one reaches this cosine similarity (depends on the embedding model).</summary>
    public double MinCosine { get; set; } = 0.5;

    /// <summary>Most (approximate) tokens of retrieved text put into the QA prompt.</summary>
    public int ContextTokens { get; set; } = 1500;

    /// <summary>Chunk size for ingestion, in approximate tokens.</summary>
    public int ChunkTokens { get; set; } = 256;

    /// <summary>Chunk overlap for ingestion, in approximate tokens.</summary>
    public int OverlapTokens { get; set; } = 32;

    /// <summary>Section "Rag:Reranker": optional cross-encoder applied to the fused candidates.</summary>
    public RerankerSettings Reranker { get; set; } = new();

    /// <summary>
    /// Where retrieval searches: "sqlite" (the knowledge-base file itself) or "qdrant" (a Qdrant collection named after the knowledge
    /// base, which <c>glm ingest</c> fills from the file; see <see cref="Qdrant"/>).
    /// </summary>
    public string VectorStore { get; set; } = "sqlite";

    /// <summary>True when <see cref="VectorStore"/> is "qdrant".</summary>
    public bool UsesQdrant => VectorStore.Equals("qdrant", StringComparison.OrdinalIgnoreCase);

    /// <summary>Section "Rag:Qdrant": the server used when <see cref="VectorStore"/> is "qdrant".</summary>
    public QdrantSettings Qdrant { get; set; } = new();
}

/// <summary>The Qdrant server of <c>Rag:VectorStore = qdrant</c>.</summary>
public sealed class QdrantSettings
{
    /// <summary>REST base URL, e.g. http://localhost:6333.</summary>
    public string Url { get; set; } = "http://localhost:6333";

    /// <summary>Value of the api-key header; null when the server needs none.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Retries after the first attempt for connection failures, timeouts, 429 and 5xx.</summary>
    public int MaxRetries { get; set; } = 3;
}

/// <summary>Optional cross-encoder reranking of retrieved candidates (ask, chat's search_documents, eval-rag's "hybrid + rerank" row).</summary>
public sealed class RerankerSettings
{
    /// <summary>Cross-encoder folder (bge-reranker-base / -large / -v2-m3, BERT cross-encoders); null = no reranking.</summary>
    public string? ModelDir { get; set; }

    /// <summary>Fused candidates the cross-encoder scores before the top-k cut.</summary>
    public int Candidates { get; set; } = 20;

    /// <summary>Device for the cross-encoder: auto, cpu, cuda, cuda:N; null = cpu.</summary>
    public string? Device { get; set; }
}

/// <summary>Which chat model answers.</summary>
public sealed class ChatSettings
{
    /// <summary>"local" (a GLM checkpoint run in-process) or "openai" (an OpenAI-compatible endpoint such as vLLM serving GLM-4).</summary>
    public string Provider { get; set; } = "local";

    /// <summary>Local model folder or random:NAME; null = the bundled models/glm-zh-small.</summary>
    public string? ModelDir { get; set; }

    /// <summary>Local device: auto, cpu, cuda, cuda:N.</summary>
    public string? Device { get; set; }

    /// <summary>Local dtype: auto, fp32, bf16, fp16.</summary>
    public string? DType { get; set; }

    /// <summary>OpenAI-compatible base URL, e.g. http://localhost:8000/v1.</summary>
    public string? Endpoint { get; set; }

    /// <summary>API key for the endpoint (vLLM accepts any non-empty value).</summary>
    public string? ApiKey { get; set; }

    /// <summary>Model name sent to the endpoint.</summary>
    public string Model { get; set; } = "glm-4-9b-chat";

    /// <summary>Most tokens per answer (caps the qa prompt's max_tokens).</summary>
    public int MaxOutputTokens { get; set; } = 512;

    /// <summary>Sampling temperature (0 = greedy).</summary>
    public float Temperature { get; set; }
}

/// <summary>Which embedding model (if any) is used for dense retrieval.</summary>
public sealed class EmbeddingSettings
{
    /// <summary>"none" (keyword-only), "openai" (OpenAI-compatible /embeddings), "hashing" (char n-gram hashing: a lexical baseline, not semantic), "glm" (pooled hidden states of a local GLM model) or "bge" (a local BERT / XLM-R sentence-embedding model such as bge-small-zh).</summary>
    public string Provider { get; set; } = "none";

    /// <summary>OpenAI-compatible base URL.</summary>
    public string? Endpoint { get; set; }

    /// <summary>API key for the endpoint.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Embedding model name sent to the endpoint.</summary>
    public string? Model { get; set; }

    /// <summary>Vector size for the hashing embedder.</summary>
    public int Dimensions { get; set; } = 256;

    /// <summary>Model folder for the "glm" and "bge" providers ("glm" also takes random:NAME).</summary>
    public string? ModelDir { get; set; }

    /// <summary>"glm" provider: hidden-state layer to pool (-1 = last block + final norm, 0 = token embeddings, k = after k blocks).</summary>
    public int Layer { get; set; } = -1;

    /// <summary>Device for the "glm" and "bge" providers: auto, cpu, cuda, cuda:N; null = the engine's default.</summary>
    public string? Device { get; set; }
}

/// <summary>Map-reduce summarisation.</summary>
public sealed class SummarizeSettings
{
    /// <summary>Context window (approximate tokens) a single summarisation call may use, prompt and answer included.</summary>
    public int ContextTokens { get; set; } = 2048;

    /// <summary>Most tokens per partial or final summary.</summary>
    public int MaxOutputTokens { get; set; } = 400;
}
