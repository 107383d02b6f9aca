using System.Collections;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>
/// Translates a VectorData filter over <see cref="KnowledgeChunk"/> into SQL conditions of the SQLite store. Supported:
/// <c>r.Field == value</c> (either side; any data field or the key), <c>&amp;&amp;</c>, the constant <c>true</c>, and the two forms the
/// host's <see cref="SearchFilter"/> needs: <c>values.Contains(r.Source)</c> (any data field) and <c>r.Section.Contains("text")</c>
/// (any string data field). Anything else throws <see cref="NotSupportedException"/> naming the node.
/// </summary>
public static class ChunkFilterTranslator
{
    private static readonly Dictionary<string, string> Columns = new()
    {
        [nameof(KnowledgeChunk.Source)] = "d.source", [nameof(KnowledgeChunk.Ordinal)] = "c.ordinal",
        [nameof(KnowledgeChunk.Section)] = "c.section", [nameof(KnowledgeChunk.Text)] = "c.text",
        [nameof(KnowledgeChunk.StartOffset)] = "c.start_offset", [nameof(KnowledgeChunk.EndOffset)] = "c.end_offset",
        [nameof(KnowledgeChunk.TokenCount)] = "c.token_count",
    };

    /// <summary>The SQL column of a data field (for ordering), or a <see cref="NotSupportedException"/> naming the field.</summary>
    public static string ColumnOf(string field) => Columns.TryGetValue(field, out var column) ? column
        : throw new NotSupportedException($"'{field}' is not a data field of {nameof(KnowledgeChunk)}; expected one of {string.Join(", ", Columns.Keys)}");

    /// <summary>A store filter equivalent to <paramref name="filter"/> (null for no filter).</summary>
    /// <exception cref="NotSupportedException">The expression uses a construct other than those listed on the class.</exception>
    public static SearchFilter? Translate(Expression<Func<KnowledgeChunk, bool>>? filter)
    {
        if (filter is null) return null;
        var state = new State(filter.Parameters[0]);
        state.Visit(filter.Body);
        return state.Sql.Count == 0 ? null : new SearchFilter { Conditions = (string.Join(' ', state.Sql), state.Parameters) };
    }

    /// <summary>The VectorData filter for the host's <see cref="SearchFilter"/> (sources by exact match, section by substring).</summary>
    public static Expression<Func<KnowledgeChunk, bool>>? FromSearchFilter(SearchFilter? filter)
    {
        if (filter is null) return null;
        if (filter.Conditions is not null) throw new NotSupportedException("a SearchFilter carrying translated SQL conditions cannot be turned back into an expression");
        IEnumerable<string>? sources = filter.Sources?.ToList(); // IEnumerable: binds Enumerable.Contains, not the span overload
        string? section = filter.SectionContains;
        return (sources, section) switch
        {
            (null, null) => null,
            (not null, null) => r => sources.Contains(r.Source),
            (null, not null) => r => r.Section.Contains(section),
            _ => r => sources!.Contains(r.Source) && r.Section.Contains(section!),
        };
    }

    private sealed class State(ParameterExpression record)
    {
        private const string Store = "SQLite";
        private readonly RecordFilterReader _reader = new(record);

        public List<string> Sql { get; } = [];
        public List<(string Name, object? Value)> Parameters { get; } = [];

        public void Visit(Expression node)
        {
            switch (node)
            {
                case BinaryExpression { NodeType: ExpressionType.AndAlso } and:
                    Visit(and.Left);
                    Visit(and.Right);
                    return;
                case BinaryExpression { NodeType: ExpressionType.Equal } eq:
                    if (Field(eq.Left) is { } left && Field(eq.Right) is null) Equal(left, Value(eq.Right, node));
                    else if (Field(eq.Right) is { } right && Field(eq.Left) is null) Equal(right, Value(eq.Left, node));
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
            // r.Section.Contains("text"): substring of a string field.
            if (call.Object is { } target && Field(target) is { } field && call.Arguments.Count == 1 && call.Method.DeclaringType == typeof(string))
            {
                Sql.Add($"AND instr({Column(field, call)}, {Add(Value(call.Arguments[0], call))}) > 0");
                return;
            }
            // values.Contains(r.Field): Enumerable.Contains(values, r.Field), or an instance collection's Contains(r.Field).
            var (source, item) = call.Object is null && call.Arguments.Count == 2 ? (call.Arguments[0], call.Arguments[1])
                : call.Object is not null && call.Arguments.Count == 1 ? (call.Object, call.Arguments[0]) : (null, null);
            // C# 14 binds array.Contains(x) to MemoryExtensions.Contains(span, x): look through the array-to-span conversion.
            if (source is MethodCallExpression { Method.Name: "op_Implicit", Arguments: [var array] }) source = array;
            else if (source is UnaryExpression { NodeType: ExpressionType.Convert, Method.Name: "op_Implicit" } conversion) source = conversion.Operand;
            if (source is null || item is null || Field(item) is not { } member || Field(source) is not null)
                throw Unsupported(call, "Contains is supported as values.Contains(r.Field) or r.StringField.Contains(text)");
            var values = Value(source, call) as IEnumerable ?? throw Unsupported(call, "the values of Contains must be a collection");
            var names = values.Cast<object?>().Select(v => Add(v)).ToList();
            Sql.Add(names.Count == 0 ? "AND 0" : $"AND {Column(member, call)} IN ({string.Join(',', names)})");
        }

        private void Equal(MemberInfo field, object? value)
        {
            if (value is null) throw new NotSupportedException($"filter {field.Name} == null: chunk fields are never null; expected a value");
            if (field.Name == nameof(KnowledgeChunk.Key))
            {
                if (KnowledgeChunk.TryParseKey((string)value, out string source, out int ordinal))
                    Sql.Add($"AND d.source = {Add(source)} AND c.ordinal = {Add(ordinal)}");
                else Sql.Add("AND 0"); // not a key this store makes: matches nothing
                return;
            }
            Sql.Add($"AND {Column(field, null)} = {Add(value)}");
        }

        private string Add(object? value)
        {
            string name = "$f" + Parameters.Count.ToString(CultureInfo.InvariantCulture);
            Parameters.Add((name, value));
            return name;
        }

        private static string Column(MemberInfo field, Expression? node) => Columns.TryGetValue(field.Name, out var column) ? column
            : throw new NotSupportedException($"filter on '{field.Name}'{(node is null ? "" : $" in '{node}'")} is not supported; "
                + $"expected a data field of {nameof(KnowledgeChunk)} ({string.Join(", ", Columns.Keys)}) or {nameof(KnowledgeChunk.Key)} with ==");

        private MemberInfo? Field(Expression e) => _reader.Field(e);

        private object? Value(Expression e, Expression whole) => _reader.Value(e, whole, Store);

        private static NotSupportedException Unsupported(Expression node, string? why) => RecordFilterReader.Unsupported(node, why, Store);
    }
}
