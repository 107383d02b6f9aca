using System.Text;

namespace Glm.Engine.Tokenization;

/// <summary>
/// Chat for a base original-GLM model (no role tokens learned): the dialogue is written as plain text
/// (<c>问：…\n答：…\n</c>) in Part A, followed by <c>[gMASK]</c>; the prompt ends with <c>sop</c>, so the reply is generated
/// in the document-level blank (GLM's own way of continuing text) and ends at <c>eop</c> or at the first line break.
/// Tools are not supported by this format.
/// </summary>
public sealed class GlmBlankChatFormat : IChatFormat
{
    /// <summary>Prefix of a user line.</summary>
    public const string UserPrefix = "问：";
    /// <summary>Prefix of an answer line.</summary>
    public const string AnswerPrefix = "答：";

    private readonly IGlmTokenizer _tokenizer;
    private readonly int? _cls;
    private readonly int _gmask, _sop;

    /// <summary>Creates the format; the tokenizer must know [gMASK], sop and eop.</summary>
    public GlmBlankChatFormat(IGlmTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        _cls = tokenizer.SpecialTokenId("[CLS]");
        _gmask = tokenizer.SpecialTokenId("[gMASK]") ?? throw new GlmException("the tokenizer has no [gMASK]; a GLM blank chat needs it.");
        _sop = tokenizer.SpecialTokenId("sop") ?? tokenizer.SpecialTokenId("<|startofpiece|>")
               ?? throw new GlmException("the tokenizer has no sop; a GLM blank chat needs it.");
        int eop = tokenizer.SpecialTokenId("eop") ?? tokenizer.SpecialTokenId("<|endofpiece|>")
                  ?? throw new GlmException("the tokenizer has no eop; a GLM blank chat needs it.");
        StopIds = new[] { eop };
    }

    /// <inheritdoc />
    public IReadOnlyList<int> StopIds { get; }

    /// <inheritdoc />
    public IReadOnlyList<int> BuildPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        if (tools is { Count: > 0 })
            throw new GlmException("this base GLM model has no tool format; function calling needs a ChatGLM3 or GLM-4 chat model.");
        var text = new StringBuilder();
        foreach (var turn in turns)
            text.Append(turn.Role switch
            {
                ChatRole.User => UserPrefix,
                ChatRole.Assistant => AnswerPrefix,
                _ => "",
            }).Append(turn.Content.Trim()).Append('\n');
        if (addGenerationPrompt) text.Append(AnswerPrefix);
        var ids = new List<int>();
        if (_cls is int cls) ids.Add(cls);
        ids.AddRange(_tokenizer.Encode(text.ToString()));
        if (addGenerationPrompt)
        {
            ids.Add(_gmask);
            ids.Add(_sop);
        }
        return ids;
    }

    /// <summary>Ids of a reply as the model generates it in the blank (trimmed text, no prefix; the caller appends eop).</summary>
    public IReadOnlyList<int> EncodeReply(string content) => _tokenizer.Encode(content.Trim());

    /// <inheritdoc />
    public ParsedResponse Parse(string decodedAssistantOutput, IReadOnlyCollection<string> knownToolNames)
    {
        // A base model runs on into invented turns: keep the first line of the answer.
        string text = decodedAssistantOutput.TrimStart();
        int end = text.IndexOf('\n');
        return ParsedResponse.Text((end >= 0 ? text[..end] : text).Trim());
    }
}
