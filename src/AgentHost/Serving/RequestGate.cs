namespace AgentHost.Serving;

/// <summary>
/// Admits at most <c>concurrent</c> requests at once and lets at most <c>queued</c> more wait; beyond that a request is
/// refused at once (the server answers 429) instead of piling up.
/// </summary>
public sealed class RequestGate
{
    private readonly SemaphoreSlim _slots;
    private readonly int _capacity;
    private int _admitted;

    /// <summary>Creates a gate with <paramref name="concurrent"/> running slots and <paramref name="queued"/> waiting places.</summary>
    public RequestGate(int concurrent, int queued)
    {
        _slots = new SemaphoreSlim(concurrent, concurrent);
        _capacity = concurrent + queued;
    }

    /// <summary>Requests running or waiting now.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>Waits for a slot; returns null when the queue is full. Dispose the lease to free the slot.</summary>
    public async Task<IDisposable?> TryEnterAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _admitted) > _capacity)
        {
            Interlocked.Decrement(ref _admitted);
            return null;
        }
        try { await _slots.WaitAsync(cancellationToken).ConfigureAwait(false); }
        catch
        {
            Interlocked.Decrement(ref _admitted);
            throw;
        }
        return new Lease(this);
    }

    private sealed class Lease(RequestGate gate) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            gate._slots.Release();
            Interlocked.Decrement(ref gate._admitted);
        }
    }
}
