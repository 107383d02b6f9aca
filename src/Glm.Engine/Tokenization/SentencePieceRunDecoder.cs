using System.Text;
using Glm.Engine.Tokenization.SentencePiece;

namespace Glm.Engine.Tokenization;

/// <summary>
/// Decoding shared by the SentencePiece-based GLM tokenizers: special ids become their literal strings and each run
/// of ordinary ids between them is decoded by SentencePiece on its own (so each run loses its leading <c>▁</c>).
/// </summary>
internal static class SentencePieceRunDecoder
{
    public static string Decode(SentencePieceBpe sp, SpecialTokenTable specials, IEnumerable<int> ids,
        bool skipSpecialTokens, Func<int, bool> dropFromRuns)
    {
        var text = new StringBuilder();
        var run = new List<int>();
        foreach (int id in ids)
        {
            if (specials.TryGetToken(id, out string token))
            {
                Flush(sp, run, text);
                if (!skipSpecialTokens) text.Append(token);
            }
            else if (id >= 0 && id < sp.PieceCount && !dropFromRuns(id))
            {
                run.Add(id);
            }
        }
        Flush(sp, run, text);
        return text.ToString();
    }

    private static void Flush(SentencePieceBpe sp, List<int> run, StringBuilder text)
    {
        if (run.Count == 0) return;
        text.Append(sp.Decode(run));
        run.Clear();
    }
}
