using System.Text;

namespace AgentHost.Rag.Stores;

public sealed partial class SqliteKnowledgeBase
{
    /// <summary>
    /// The stored text of one document rebuilt from its chunks (overlaps removed by offset; section titles that separate
    /// chunks become "## title" lines), or null when the source is not stored. Used by <c>glm summarize --kb</c>.
    /// </summary>
    public string? ReadDocumentText(string source)
    {
        using var cmd = Command("""
            SELECT c.section, c.text, c.start_offset, c.end_offset FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE d.source = $s ORDER BY c.ordinal
            """, ("$s", source));
        using var reader = cmd.ExecuteReader();
        var sb = new StringBuilder();
        int covered = -1;
        string? section = null;
        bool any = false;
        while (reader.Read())
        {
            any = true;
            string sec = reader.GetString(0), text = reader.GetString(1);
            int start = reader.GetInt32(2), end = reader.GetInt32(3);
            if (sec != section && sec.Length > 0) sb.Append(sb.Length > 0 ? "\n\n" : "").Append("## ").Append(sec).Append("\n\n");
            else if (start > covered && sb.Length > 0) sb.Append("\n\n");
            section = sec;
            if (start < covered) text = covered - start < text.Length ? text[(covered - start)..] : "";
            sb.Append(text);
            covered = Math.Max(covered, end);
        }
        return any ? sb.ToString() : GetDocument(source) is null ? null : "";
    }
}
