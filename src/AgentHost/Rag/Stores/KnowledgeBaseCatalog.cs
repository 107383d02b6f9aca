using System.Text.RegularExpressions;
using Glm.Engine;

namespace AgentHost.Rag.Stores;

/// <summary>Knowledge bases as <c>&lt;root&gt;/&lt;name&gt;.db</c> files (default root <c>~/.glmsk/kb</c>, or env <c>GLMSK_KB_ROOT</c>).</summary>
public sealed partial class KnowledgeBaseCatalog
{
    /// <summary>Folder holding the knowledge-base files.</summary>
    public string Root { get; }

    /// <summary>Uses <paramref name="root"/>, else env GLMSK_KB_ROOT, else <c>~/.glmsk/kb</c>.</summary>
    public KnowledgeBaseCatalog(string? root = null)
    {
        Root = Path.GetFullPath(root ?? Environment.GetEnvironmentVariable("GLMSK_KB_ROOT")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".glmsk", "kb"));
    }

    [GeneratedRegex(@"^[\p{L}\p{N}_][\p{L}\p{N}_.\-]{0,63}$")]
    private static partial Regex ValidName();

    /// <summary>The file path for a knowledge-base name; throws <see cref="GlmException"/> for names that are not safe file names.</summary>
    public string PathFor(string name)
    {
        if (!ValidName().IsMatch(name) || name.EndsWith('.'))
            throw new GlmException($"knowledge-base name '{name}' is invalid; expected 1–64 letters, digits, '_', '-' or '.', not starting with '-' or '.'");
        return Path.Combine(Root, name + ".db");
    }

    /// <summary>Names of the existing knowledge bases, sorted.</summary>
    public IReadOnlyList<string> ListKnowledgeBases() =>
        Directory.Exists(Root)
            ? Directory.EnumerateFiles(Root, "*.db").Select(Path.GetFileNameWithoutExtension).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>True when a knowledge base with this name exists.</summary>
    public bool Exists(string name) => File.Exists(PathFor(name));

    /// <summary>Opens a knowledge base; creates it unless <paramref name="mustExist"/>.</summary>
    public SqliteKnowledgeBase Open(string name, bool mustExist = false)
    {
        if (mustExist) CheckExists(name);
        return new SqliteKnowledgeBase(PathFor(name), name);
    }

    /// <summary>Throws a <see cref="GlmException"/> naming the path and the existing knowledge bases when <paramref name="name"/> does not exist.</summary>
    public void CheckExists(string name)
    {
        string path = PathFor(name);
        if (File.Exists(path)) return;
        var known = ListKnowledgeBases();
        throw new GlmException($"knowledge base '{name}' not found at {path}; existing: {(known.Count == 0 ? "(none)" : string.Join(", ", known))}");
    }

    /// <summary>Deletes the knowledge-base file and its WAL/SHM side files; false when it did not exist.</summary>
    public bool Delete(string name)
    {
        string path = PathFor(name);
        if (!File.Exists(path)) return false;
        foreach (var suffix in new[] { "-wal", "-shm", "-journal", "" })
            if (File.Exists(path + suffix)) File.Delete(path + suffix);
        return true;
    }
}
