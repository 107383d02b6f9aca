using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace AgentHost.Rag.Stores;

public sealed partial class SqliteKnowledgeBase
{
    private const string HitColumns = "c.id, d.source, c.section, c.text, c.start_offset, c.end_offset, c.ordinal";

    /// <inheritdoc />
    public IReadOnlyList<SearchHit> KeywordSearch(string query, int top, SearchFilter? filter = null)
    {
        query = query.Trim();
        string table, match;
        if (query.Length >= 5 && query[0] == '"' && query[^1] == '"')
        {
            table = "chunk_trigrams";
            match = "\"" + query[1..^1].Replace("\"", "\"\"") + "\"";
        }
        else
        {
            table = "chunk_terms";
            if (CjkTerms.MatchExpression(query) is not { } expression) return [];
            match = expression;
        }
        var (filterSql, filterParams) = FilterSql(filter);
        using var cmd = Command($"""
            SELECT {HitColumns}, bm25({table}) AS rank
            FROM {table} JOIN chunks c ON c.id = {table}.rowid JOIN documents d ON d.id = c.document_id
            WHERE {table} MATCH $q {filterSql}
            ORDER BY rank LIMIT $top
            """, [("$q", match), ("$top", top), .. filterParams]);
        return ReadHits(cmd, r => -r.GetDouble(7));
    }

    /// <inheritdoc />
    public IReadOnlyList<SearchHit> VectorSearch(ReadOnlyMemory<float> queryVector, int top, SearchFilter? filter = null)
    {
        var index = _vectorIndex ??= LoadVectorIndex();
        if (index.Count == 0) return [];
        if (queryVector.Length != index.Dimensions)
            throw new Glm.Engine.GlmException($"query embedding has {queryVector.Length} dimensions but knowledge base '{Name}' holds "
                + $"{index.Dimensions}-dimension embeddings; use the embedding model the knowledge base was built with");
        var best = filter?.Conditions is null
            ? index.Search(queryVector.Span, top, filter)
            : index.Search(queryVector.Span, top, null, FilteredChunkIds(filter));
        if (best.Count == 0) return [];
        var scores = best.ToDictionary(b => b.Id, b => b.Score);
        using var cmd = Command($"""
            SELECT {HitColumns} FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE c.id IN ({string.Join(',', scores.Keys)})
            """);
        return ReadHits(cmd, r => scores[r.GetInt64(0)]).OrderByDescending(h => h.Score).ToList();
    }

    /// <inheritdoc />
    public IReadOnlyList<SearchHit> HybridSearch(string query, ReadOnlyMemory<float>? queryVector, int top, SearchFilter? filter = null)
    {
        int candidates = Math.Max(top * 5, 50);
        var lists = new List<IReadOnlyList<SearchHit>> { KeywordSearch(query, candidates, filter) };
        if (queryVector is { } vector) lists.Add(VectorSearch(vector, candidates, filter));
        return ReciprocalRankFusion.Fuse(lists, top);
    }

    private VectorIndex LoadVectorIndex()
    {
        int dims = EmbeddingDimensions ?? 0;
        var rows = new List<(long, string, string, float[])>();
        using var cmd = Command("""
            SELECT c.id, d.source, c.section, c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE c.embedding IS NOT NULL
            """);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            var blob = (byte[])reader.GetValue(3);
            rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), MemoryMarshal.Cast<byte, float>(blob).ToArray()));
        }
        return new VectorIndex(dims, rows);
    }

    private static (string Sql, (string, object?)[] Params) FilterSql(SearchFilter? filter)
    {
        var sql = new List<string>();
        var ps = new List<(string, object?)>();
        if (filter?.Sources is { } sources)
        {
            var names = sources.Select((s, i) => { ps.Add(($"$src{i}", s)); return $"$src{i}"; }).ToList();
            sql.Add(names.Count == 0 ? "AND 0" : $"AND d.source IN ({string.Join(',', names)})");
        }
        if (filter?.SectionContains is { } section)
        {
            sql.Add("AND instr(c.section, $sec) > 0");
            ps.Add(("$sec", section));
        }
        if (filter?.Conditions is { } conditions)
        {
            sql.Add(conditions.Sql);
            ps.AddRange(conditions.Parameters);
        }
        return (string.Join(' ', sql), ps.ToArray());
    }

    private static List<SearchHit> ReadHits(SqliteCommand cmd, Func<SqliteDataReader, double> score)
    {
        using var reader = cmd.ExecuteReader();
        var hits = new List<SearchHit>();
        while (reader.Read())
            hits.Add(new SearchHit(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.GetInt32(4), reader.GetInt32(5), reader.GetInt32(6), score(reader)));
        return hits;
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        SetParameters(cmd, parameters);
        return cmd;
    }

    private static void SetParameters(SqliteCommand cmd, params (string Name, object? Value)[] parameters)
    {
        foreach (var (name, value) in parameters)
        {
            if (cmd.Parameters.Contains(name)) cmd.Parameters[name].Value = value ?? DBNull.Value;
            else cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
    }

    private void Execute(string sql, params (string, object?)[] parameters)
    {
        using var cmd = Command(sql, parameters);
        cmd.ExecuteNonQuery();
    }

    private T Scalar<T>(string sql, params (string, object?)[] parameters)
    {
        using var cmd = Command(sql, parameters);
        object? value = cmd.ExecuteScalar();
        if (value is null or DBNull) return default!;
        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)Convert.ChangeType(value, target);
    }
}
