using System.Collections;
using System.Linq.Expressions;
using System.Reflection;
using AgentHost.Rag.Stores.Qdrant;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>A VectorData filter translated into a Qdrant payload filter.</summary>
/// <param name="Filter">The <c>must</c> conditions, or null when the expression places no condition.</param>
/// <param name="MatchesNothing">True when the expression can match no record (e.g. <c>new string[0].Contains(r.Source)</c>); no request is needed.</param>
public sealed record QdrantChunkFilter(QdrantFilter? Filter, bool MatchesNothing);

/// <summary>
/// Translates a VectorData filter over <see cref="KnowledgeChunk"/> into a Qdrant payload filter (conditions under <c>must</c>) —
/// the same subset <see cref="ChunkFilterTranslator"/> takes for SQLite: <c>r.Field == value</c> (either side; any data field or
/// the key) → <c>match.value</c>; <c>&amp;&amp;</c> → more <c>must</c> conditions; the constant <c>true</c>;
/// <c>values.Contains(r.Field)</c> → <c>match.any</c>; <c>r.StringField.Contains("text")</c> → <c>match.text</c> (on a field
/// without a full-text index Qdrant checks that each whitespace-separated term of the text occurs as a substring; for one term,
/// as the host's section filter uses it, that is the SQLite store's substring match). Anything else throws a
/// <see cref="NotSupportedException"/> naming the expression.
/// </summary>
public static class QdrantChunkFilterTranslator
{
    /// <summary>Payload field of each <see cref="KnowledgeChunk"/> property (the key is kept in the payload so reads return it).</summary>
    public static IReadOnlyDictionary<string, string> PayloadFields { get; } = new Dictionary<string, string>
    {
        [nameof(KnowledgeChunk.Key)] = "key", [nameof(KnowledgeChunk.Source)] = "source", [nameof(KnowledgeChunk.Ordinal)] = "ordinal",
        [nameof(KnowledgeChunk.Section)] = "section", [nameof(KnowledgeChunk.Text)] = "text", [nameof(KnowledgeChunk.StartOffset)] = "start_offset",
        [nameof(KnowledgeChunk.EndOffset)] = "end_offset", [nameof(KnowledgeChunk.TokenCount)] = "token_count",
    };

    /// <summary>The Qdrant filter equivalent to <paramref name="filter"/> (no filter for null or <c>r =&gt; true</c>).</summary>
    /// <exception cref="NotSupportedException">The expression uses a construct other than those listed on the class.</exception>
    public static QdrantChunkFilter Translate(Expression<Func<KnowledgeChunk, bool>>? filter)
    {
        if (filter is null) return new QdrantChunkFilter(null, false);
        var state = new State(filter.Parameters[0]);
        state.Visit(filter.Body);
        return new QdrantChunkFilter(state.Must.Count == 0 ? null : new QdrantFilter(state.Must), state.MatchesNothing);
    }

    private sealed class State(ParameterExpression record)
    {
        private const string Store = "Qdrant";
        private readonly RecordFilterReader _reader = new(record);

        public List<(string Key, object Value)> Must { get; } = [];
        public bool MatchesNothing { get; private set; }

        public void Visit(Expression node)
        {
            switch (node)
            {
                case BinaryExpression { NodeType: ExpressionType.AndAlso } and:
                    Visit(and.Left);
                    Visit(and.Right);
                    return;
                case BinaryExpression { NodeType: ExpressionType.Equal } eq:
                    if (Field(eq.Left) is { } left && Field(eq.Right) is null) Equal(left, Value(eq.Right, node), node);
                    else if (Field(eq.Right) is { } right && Field(eq.Left) is null) Equal(right, Value(eq.Left, node), node);
                    else throw Unsupported(node, "== needs a record field on one side and a value on the other");
                    return;
                case ConstantExpression { Value: true }:
                    return;
                case MethodCallExpression { Method.Name: "Contains" } call:
                    VisitContains(call);
                    return;
                default:
                    throw Unsupported(node, null);
            }
        }

        private void VisitContains(MethodCallExpression call)
        {
            if (call.Object is { } target && Field(target) is { } field && call.Arguments.Count == 1 && call.Method.DeclaringType == typeof(string))
            {
                if (Value(call.Arguments[0], call) is not string text) throw Unsupported(call, "the text of Contains must be a non-null string");
                Must.Add((PayloadField(field, call), new QdrantTextMatch(text)));
                return;
            }
            var (source, item) = call.Object is null && call.Arguments.Count == 2 ? (call.Arguments[0], call.Arguments[1])
                : call.Object is not null && call.Arguments.Count == 1 ? (call.Object, call.Arguments[0]) : (null, null);
            // C# 14 binds array.Contains(x) to MemoryExtensions.Contains(span, x): look through the array-to-span conversion.
            if (source is MethodCallExpression { Method.Name: "op_Implicit", Arguments: [var array] }) source = array;
            else if (source is UnaryExpression { NodeType: ExpressionType.Convert, Method.Name: "op_Implicit" } conversion) source = conversion.Operand;
            if (source is null || item is null || Field(item) is not { } member || Field(source) is not null)
                throw Unsupported(call, "Contains is supported as values.Contains(r.Field) or r.StringField.Contains(text)");
            var values = Value(source, call) as IEnumerable ?? throw Unsupported(call, "the values of Contains must be a collection");
            var list = values.Cast<object?>().Select(v => v ?? throw Unsupported(call, "the values of Contains must not include null")).Distinct().ToList();
            if (list.Count == 0) MatchesNothing = true; // Qdrant has no "false" condition; the caller skips the request
            else Must.Add((PayloadField(member, call), list));
        }

        private void Equal(MemberInfo field, object? value, Expression node)
        {
            string name = PayloadField(field, node);
            if (value is null) throw Unsupported(node, $"{field.Name} == null: chunk fields are never null; expected a value");
            Must.Add((name, value));
        }

        private static string PayloadField(MemberInfo field, Expression node) => PayloadFields.TryGetValue(field.Name, out var name) ? name
            : throw Unsupported(node, $"'{field.Name}' is not a data field or the key of {nameof(KnowledgeChunk)} (expected one of {string.Join(", ", PayloadFields.Keys)})");

        private MemberInfo? Field(Expression e) => _reader.Field(e);

        private object? Value(Expression e, Expression whole) => _reader.Value(e, whole, Store);

        private static NotSupportedException Unsupported(Expression node, string? why) => RecordFilterReader.Unsupported(node, why, Store);
    }
}
