using System.Linq.Expressions;
using System.Reflection;

namespace AgentHost.Rag.Stores.VectorData;

/// <summary>
/// What the store-specific filter translators (SQLite, Qdrant) share when they read a VectorData filter lambda
/// <c>r =&gt; …</c>: which record property a node reads, the value of a sub-expression that must not read the record, and the
/// error for anything outside the supported subset.
/// </summary>
internal sealed class RecordFilterReader(ParameterExpression record)
{
    /// <summary>The record property that <paramref name="e"/> reads (through conversions), or null when it does not read one directly.</summary>
    public MemberInfo? Field(Expression e)
    {
        while (e is UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } u) e = u.Operand;
        return e is MemberExpression { Expression: var owner, Member: PropertyInfo p } && owner == record ? p : null;
    }

    /// <summary>Evaluates a sub-expression that must not read the record (constants, captured variables, computations on them).</summary>
    public object? Value(Expression e, Expression whole, string store)
    {
        if (new RecordFinder(record).Finds(e)) throw Unsupported(whole, $"'{e}' reads the record where a value was expected", store);
        return e is ConstantExpression c ? c.Value : Expression.Lambda(e).Compile(preferInterpretation: true).DynamicInvoke();
    }

    /// <summary>The error for a filter node outside the supported subset, naming the node, the store and what is supported.</summary>
    public static NotSupportedException Unsupported(Expression node, string? why, string store) => new(
        $"filter expression '{node}' ({node.NodeType}) is not supported by the {store} knowledge-base collection"
        + (why is null ? "" : $": {why}") + "; supported: r.Field == value, &&, values.Contains(r.Field), r.StringField.Contains(text)");

    private sealed class RecordFinder(ParameterExpression record) : ExpressionVisitor
    {
        private bool _found;

        public bool Finds(Expression e)
        {
            Visit(e);
            return _found;
        }

        protected override Expression VisitParameter(ParameterExpression node)
        {
            _found |= node == record;
            return node;
        }
    }
}
