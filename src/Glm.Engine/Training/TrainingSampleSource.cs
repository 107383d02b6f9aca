namespace Glm.Engine.Training;

/// <summary>
/// Where training (or evaluation) samples come from: token-id arrays that each start with [CLS], as the
/// <see cref="Data.BlankInfillingCollator"/> expects. The trainer records how many samples it consumed (the data cursor) and
/// reopens the source at that cursor on resume, so a source must return the same sequence every time it is opened.
/// </summary>
public interface ITrainingSampleSource
{
    /// <summary>
    /// Samples from index <paramref name="cursor"/> on (0 = the first sample). Training sources should not end (cycle over
    /// epochs); an evaluation source is read from 0 for as many samples as evaluation asks.
    /// </summary>
    IEnumerable<int[]> ReadFrom(long cursor);
}

/// <summary>An in-memory list of samples, cycled endlessly; seeking is O(1).</summary>
public sealed class ListSampleSource : ITrainingSampleSource
{
    private readonly IReadOnlyList<int[]> _samples;

    /// <summary>Wraps <paramref name="samples"/> (not copied; do not change it while training).</summary>
    public ListSampleSource(IReadOnlyList<int[]> samples)
    {
        if (samples.Count == 0) throw new GlmException("ListSampleSource: no samples; expected at least one token array.");
        _samples = samples;
    }

    /// <summary>Number of distinct samples (one epoch).</summary>
    public int Count => _samples.Count;

    /// <inheritdoc />
    public IEnumerable<int[]> ReadFrom(long cursor)
    {
        for (long i = cursor; ; i++) yield return _samples[(int)(i % _samples.Count)];
    }
}

/// <summary>
/// Adapts any re-enumerable sequence (a file reader, the packed-sample stream) to <see cref="ITrainingSampleSource"/>: each
/// pass calls <c>open</c> again (epochs), and a cursor is reached by skipping that many samples.
/// </summary>
public sealed class EnumerableSampleSource : ITrainingSampleSource
{
    private readonly Func<IEnumerable<int[]>> _open;
    private readonly bool _cycle;

    /// <summary>Creates a source over <paramref name="open"/>; with <paramref name="cycle"/> it restarts at the end (epochs).</summary>
    public EnumerableSampleSource(Func<IEnumerable<int[]>> open, bool cycle = true)
    {
        _open = open ?? throw new ArgumentNullException(nameof(open));
        _cycle = cycle;
    }

    /// <inheritdoc />
    public IEnumerable<int[]> ReadFrom(long cursor)
    {
        long skip = cursor;
        while (true)
        {
            long produced = 0;
            foreach (var sample in _open())
            {
                produced++;
                if (skip > 0) { skip--; continue; }
                yield return sample;
            }
            if (produced == 0) throw new GlmException("EnumerableSampleSource: the sample sequence is empty; expected at least one sample per pass.");
            if (!_cycle) yield break;
        }
    }
}
