using System.Runtime.CompilerServices;
using System.Text;
using Glm.Engine.Generation;
using Glm.Engine.Tokenization;

namespace Glm.Connector.Tests.Support;

/// <summary>
/// A token source whose replies are scripted while the tokenizer and chat format are real. It records every prompt (ids and
/// the text they decode to, special tokens kept) and the generation options it was given, and streams each reply in small
/// pieces, honouring MaxNewTokens (one piece = one "token"), special-token skipping and cancellation as the engine does.
/// </summary>
internal sealed class ScriptedTokenSource : IGlmTokenSource
{
    private readonly Queue<string> _replies;
    private readonly int _pieceLength;

    public ScriptedTokenSource(IGlmTokenizer tokenizer, IEnumerable<string> replies, int pieceLength = 3, string modelId = "scripted-glm")
    {
        Tokenizer = tokenizer;
        ChatFormat = TokenizerFactory.CreateChatFormat(tokenizer) ?? throw new ArgumentException("tokenizer without chat format");
        _replies = new Queue<string>(replies);
        _pieceLength = pieceLength;
        ModelId = modelId;
    }

    public string ModelId { get; }
    public IGlmTokenizer Tokenizer { get; }
    public IChatFormat ChatFormat { get; }
    public int MaxContext => 8192;

    public List<IReadOnlyList<int>> PromptIds { get; } = new();
    public List<string> Prompts { get; } = new();
    public List<GenerationOptions> Options { get; } = new();

    /// <summary>Called after each emitted piece (tests cancel from here).</summary>
    public Action<int>? AfterPiece { get; set; }

    public async IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        PromptIds.Add(promptIds.ToArray());
        Prompts.Add(Tokenizer.Decode(promptIds));
        Options.Add(options);
        if (_replies.Count == 0) throw new InvalidOperationException("the script has no more replies; prompt was: " + Prompts[^1]);
        string reply = _replies.Dequeue();
        if (options.SkipSpecialTokensInText)
            foreach (var special in new[] { "<|assistant|>", "<|user|>", "<|observation|>", "<|system|>" }) reply = reply.Replace(special, "");
        var pieces = new List<string>();
        for (int i = 0; i < reply.Length; i += _pieceLength) pieces.Add(reply.Substring(i, Math.Min(_pieceLength, reply.Length - i)));
        int n = promptIds.Count;
        for (int i = 0; i < pieces.Count; i++)
        {
            await Task.Yield();
            if (i + 1 >= options.MaxNewTokens)
            {
                yield return new GenerationChunk(i, pieces[i], i + 1 == pieces.Count ? FinishReason.Stop : FinishReason.Length, n, i + 1);
                yield break;
            }
            yield return new GenerationChunk(i, pieces[i], FinishReason.None, n, i + 1);
            AfterPiece?.Invoke(i);
            if (cancellationToken.IsCancellationRequested)
            {
                yield return new GenerationChunk(-1, "", FinishReason.Cancelled, n, i + 1);
                yield break;
            }
        }
        yield return new GenerationChunk(2, "", FinishReason.Stop, n, pieces.Count);
    }

    /// <summary>The text of all pieces of a reply as the client sees it (for assertions).</summary>
    public static string Join(IEnumerable<string> parts) => new StringBuilder().AppendJoin("", parts).ToString();
}
