using System.Text;
using System.Text.Json;

namespace Glm.Engine.Tokenization;

/// <summary>
/// GLM-4-9B-chat's jinja chat template, rendered as segments (special tokens as ids, text between them encoded as one
/// string, as HF does after splitting out added tokens): <c>[gMASK]&lt;sop&gt;</c>, an optional
/// <c>&lt;|system|&gt;</c> tool section (preamble, <c># 可用工具</c>, per tool <c>## name</c> (see the constructor) + function JSON with indent 4),
/// then <c>&lt;|role|&gt;{metadata}\n{content}</c> per non-empty turn and <c>&lt;|assistant|&gt;</c>.
/// </summary>
public sealed class Glm4ChatFormat : IChatFormat
{
    /// <summary>The tool-section preamble of the June-2024 glm-4-9b-chat template (later revisions say GLM-4).</summary>
    public const string ChatGlmToolPreamble =
        "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。";

    /// <summary>Sentence that follows every function definition in the tool section.</summary>
    public const string ToolCallInstruction = "在调用上述函数时，请使用 Json 格式表示调用的参数。";

    private static readonly string[] BuiltInToolNames = ["cogview", "simple_browser"];
    private readonly IGlmTokenizer _tokenizer;
    private readonly string _toolPreamble;
    private readonly string _toolHeading;

    /// <summary>
    /// Creates the format over a GLM-4 tokenizer. <paramref name="toolPreamble"/> overrides the tool-section preamble.
    /// <paramref name="jinjaTrimBlocks"/> (default) renders as HF <c>apply_chat_template</c> does: its jinja environment
    /// has <c>trim_blocks=True</c>, which drops the newline right after <c>{% if tool['type'] == 'function' %}</c>, so
    /// each tool heading is <c>"\n## name"</c>; false gives the template's literal <c>"\n\n## name"</c>.
    /// </summary>
    public Glm4ChatFormat(IGlmTokenizer tokenizer, string toolPreamble = ChatGlmToolPreamble, bool jinjaTrimBlocks = true)
    {
        _tokenizer = tokenizer;
        _toolPreamble = toolPreamble;
        _toolHeading = jinjaTrimBlocks ? "\n## " : "\n\n## ";
        StopIds = [Require("<|endoftext|>"), Require("<|user|>"), Require("<|observation|>")];
    }

    /// <inheritdoc />
    public IReadOnlyList<int> StopIds { get; }

    /// <inheritdoc />
    public IReadOnlyList<int> BuildPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        var ids = new List<int>();
        foreach (var (special, text) in Segments(turns, tools, addGenerationPrompt))
        {
            if (special is not null) ids.Add(Require(special));
            else ids.AddRange(_tokenizer.Encode(text!));
        }
        return ids;
    }

    /// <summary>The prompt as the template's text (special tokens written literally).</summary>
    public string RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt) =>
        string.Concat(Segments(turns, tools, addGenerationPrompt).Select(s => s.Special ?? s.Text));

    private List<(string? Special, string? Text)> Segments(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        var segments = new List<(string?, string?)> { ("[gMASK]", null), ("<sop>", null) };
        if (tools is { Count: > 0 })
        {
            // As the GLM-4 server does: a leading system message that carries only the tools.
            var text = new StringBuilder("\n").Append(_toolPreamble).Append("\n\n# 可用工具");
            foreach (var tool in tools)
            {
                text.Append(_toolHeading).Append(tool.Name).Append("\n\n").Append(ToolJson.Function(tool, indent: 4))
                    .Append('\n').Append(ToolCallInstruction);
            }
            segments.Add(("<|system|>", null));
            segments.Add((null, text.ToString()));
        }
        foreach (var turn in turns)
        {
            if (string.IsNullOrEmpty(turn.Content)) continue; // the template skips empty contents
            segments.Add((ChatGlm3ChatFormat.RoleToken(turn.Role), null));
            segments.Add((null, (turn.Metadata ?? "") + "\n" + turn.Content));
        }
        if (addGenerationPrompt) segments.Add(("<|assistant|>", null));
        return segments;
    }

    /// <summary>
    /// The GLM-4 server's parser: if the stripped output has ≥ 2 lines, line 2 starts with <c>{</c> and line 1 is a
    /// known tool (or <c>cogview</c>/<c>simple_browser</c>), lines 2.. are the JSON arguments; otherwise plain text.
    /// </summary>
    public ParsedResponse Parse(string decodedAssistantOutput, IReadOnlyCollection<string> knownToolNames)
    {
        string output = decodedAssistantOutput.Trim();
        string[] lines = output.Split('\n');
        if (lines.Length < 2 || !lines[1].StartsWith('{')) return ParsedResponse.Text(output);
        string name = lines[0].Trim();
        if (!knownToolNames.Contains(name) && !BuiltInToolNames.Contains(name)) return ParsedResponse.Text(output);
        string arguments = string.Join('\n', lines[1..]).Trim();
        try
        {
            using var doc = JsonDocument.Parse(arguments);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                return new ParsedResponse(output, [], name, $"Arguments of tool '{name}' are a JSON {doc.RootElement.ValueKind}, expected a JSON object.");
            return new ParsedResponse("", [new ToolCall(name, PythonJson.Dumps(doc.RootElement))], name);
        }
        catch (JsonException e)
        {
            return new ParsedResponse(output, [], name, $"Arguments of tool '{name}' are not valid JSON: {e.Message}");
        }
    }

    private int Require(string token) => _tokenizer.SpecialTokenId(token)
        ?? throw new GlmException($"The tokenizer has no special token '{token}' (a GLM-4 tokenizer is expected for the GLM-4 chat format).");
}
