namespace Glm.Engine.Tokenization;

/// <summary>Special tokens appended after a base vocabulary at consecutive ids (GLM models add them in a fixed order).</summary>
internal sealed class SpecialTokenTable
{
    private readonly Dictionary<string, int> _idsByToken = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _tokensById = new();

    public SpecialTokenTable(int firstId, IEnumerable<string> tokens)
    {
        int id = firstId;
        foreach (string token in tokens) Add(token, id++);
    }

    public SpecialTokenTable(IEnumerable<KeyValuePair<string, int>> tokens)
    {
        foreach (var (token, id) in tokens) Add(token, id);
    }

    public int Count => _tokensById.Count;

    public IReadOnlyDictionary<string, int> IdsByToken => _idsByToken;

    public int? IdOf(string token) => _idsByToken.TryGetValue(token, out int id) ? id : null;

    public bool TryGetToken(int id, out string token) => _tokensById.TryGetValue(id, out token!);

    private void Add(string token, int id)
    {
        _idsByToken[token] = id;
        _tokensById[id] = token;
    }
}
