namespace AgentHost.Rag.Chunking;

/// <summary>Token counters usable when the model tokenizer is not at hand.</summary>
public static class TokenCounters
{
    /// <summary>
    /// Approximates a GLM SentencePiece count: each CJK char is one token, each run of Latin letters/digits is one
    /// token per 4 chars (rounded up), other non-space chars one token each.
    /// </summary>
    public static int Approximate(string text)
    {
        int tokens = 0, latinRun = 0;
        foreach (char c in text)
        {
            if (char.IsAsciiLetterOrDigit(c)) { latinRun++; continue; }
            tokens += (latinRun + 3) / 4;
            latinRun = 0;
            if (!char.IsWhiteSpace(c)) tokens++;
        }
        return tokens + (latinRun + 3) / 4;
    }
}
