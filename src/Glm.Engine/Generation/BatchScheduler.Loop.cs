using Glm.Engine.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine.Generation;

public sealed partial class BatchScheduler
{
    private readonly KvCache _cache;
    // Active requests; _active[i] owns row i of the cache (rows stay packed: a retired row is refilled from the last one).
    private readonly List<Request> _active = new();
    private int _activeCount;
    private long _steps, _rowSteps, _joined, _fusedSteps;
    private int _peak;

    /// <summary>Batched decode steps run so far.</summary>
    public long DecodeSteps => Interlocked.Read(ref _steps);

    /// <summary>Decode steps of a lone request that ran through the model's fused single-sequence step (the tensor path
    /// otherwise).</summary>
    public long FusedDecodeSteps => Interlocked.Read(ref _fusedSteps);

    /// <summary>Tokens decoded by those steps (the mean batch is this ÷ <see cref="DecodeSteps"/>).</summary>
    public long DecodedRows => Interlocked.Read(ref _rowSteps);

    /// <summary>Requests admitted while other requests were being decoded (joined a running batch).</summary>
    public long JoinedRunningBatch => Interlocked.Read(ref _joined);

    /// <summary>Most requests decoded together so far.</summary>
    public int PeakActive => Volatile.Read(ref _peak);

    private void RunLoop()
    {
        // Torch's inference mode is per thread: this thread runs every forward of the scheduler.
        using var inference = torch.inference_mode();
        while (!_stopping)
        {
            if (_active.Count == 0 && !HasWaiting()) _wake.Wait();
            if (_stopping) break;
            _model.ForwardGate.Wait();
            try
            {
                DropCancelledWaiting();
                RetireCancelledActive();
                Admit();
                if (_active.Count > 0) DecodeStep();
            }
            catch (Exception ex)
            {
                // A failed forward fails the requests it was serving; the loop keeps serving new ones.
                foreach (var r in _active) r.Output.Writer.TryComplete(ex);
                _active.Clear();
            }
            finally
            {
                _model.ForwardGate.Release();
                Volatile.Write(ref _activeCount, _active.Count);
            }
        }
    }

    private bool HasWaiting()
    {
        lock (_lock) return _waiting.Count > 0;
    }

    private void DropCancelledWaiting()
    {
        List<Request>? dropped = null;
        lock (_lock)
        {
            for (int i = _waiting.Count - 1; i >= 0; i--)
                if (_waiting[i].Cancelled)
                {
                    (dropped ??= new()).Add(_waiting[i]);
                    _waiting.RemoveAt(i);
                }
        }
        if (dropped is not null)
            foreach (var r in dropped) r.FinishCancelled();
    }

    private void RetireCancelledActive()
    {
        for (int i = _active.Count - 1; i >= 0; i--)
            if (_active[i].Cancelled)
            {
                _active[i].FinishCancelled();
                Retire(i);
            }
    }

    // Prefills waiting requests (oldest first) into free rows while there are any.
    private void Admit()
    {
        while (_active.Count < MaxBatch)
        {
            Request? r;
            lock (_lock)
            {
                if (_waiting.Count == 0) return;
                r = _waiting[0];
                _waiting.RemoveAt(0);
            }
            if (r.Budget == 0)
            {
                r.Finish(new GenerationChunk(-1, "", FinishReason.Length, r.Prompt.Length, 0));
                continue;
            }
            int row = _active.Count;
            int first;
            try
            {
                first = Prefill(r, row);
            }
            catch (Exception ex)
            {
                r.Output.Writer.TryComplete(ex);
                continue;
            }
            r.Length = r.Prompt.Length;
            if (_active.Count > 0) Interlocked.Increment(ref _joined);
            _active.Add(r);
            if (_active.Count > _peak) Volatile.Write(ref _peak, _active.Count);
            if (r.Accept(first)) Retire(row);
        }
    }

    private int Prefill(Request r, int row)
    {
        using var scope = NewDisposeScope();
        var device = _model.Device;
        int p = r.Prompt.Length;
        var ids = new long[p];
        for (int i = 0; i < p; i++) ids[i] = r.Prompt[i];
        _cache.TargetRow(row);
        bool profiling = Diagnostics.DecodeProfiler.Enabled;
        Diagnostics.DecodeProfiler.Enabled = false; // a bench --profile sweep times the decode steps, not the prefills between them
        try
        {
            var logits = _model.Network.Forward(torch.tensor(ids, new long[] { 1, p }, device: device),
                torch.arange(0, p, dtype: ScalarType.Int64, device: device).view(1, p), _cache, null, lastOnly: true);
            return GlmModel.PickToken(logits.view(-1), r.Sampler, r.Seen);
        }
        finally
        {
            Diagnostics.DecodeProfiler.Enabled = profiling;
            _cache.ResetTarget();
        }
    }

    // One forward for all active rows: row i feeds its pending token at its own position and attends to its own tokens only.
    private void DecodeStep()
    {
        int n = _active.Count;
        int[] next;
        using (var scope = NewDisposeScope())
        {
            var device = _model.Device;
            int attend = 0;
            var ids = new long[n];
            var pos = new long[n];
            for (int i = 0; i < n; i++)
            {
                ids[i] = _active[i].Next;
                pos[i] = _active[i].Length;
                attend = Math.Max(attend, _active[i].Length + 1);
            }
            var mask = new bool[n * attend];
            for (int i = 0; i < n; i++)
                Array.Fill(mask, true, i * attend, _active[i].Length + 1);
            var positions = torch.tensor(pos, device: device);
            _cache.TargetRagged(n, positions, attend);
            Tensor logits;
            long fusedBefore = ChatGlmDecodeStep.TokensRun; // this thread's count
            try
            {
                logits = _model.Network.Forward(torch.tensor(ids, new long[] { n, 1 }, device: device), positions.view(n, 1), _cache,
                    torch.tensor(mask, new long[] { n, 1, 1, attend }, device: device), lastOnly: true);
            }
            finally { _cache.ResetTarget(); }
            if (ChatGlmDecodeStep.TokensRun != fusedBefore) Interlocked.Increment(ref _fusedSteps);
            next = PickRows(logits.reshape(n, -1));
        }
        for (int i = 0; i < n; i++) _active[i].Length++;
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _rowSteps, n);
        for (int i = n - 1; i >= 0; i--)
            if (_active[i].Accept(next[i])) Retire(i);
    }

    // Plain-greedy rows take the device argmax (as GenerateAsync does); the others go through their own sampler.
    private int[] PickRows(Tensor logits)
    {
        int n = _active.Count;
        var result = new int[n];
        var argmax = logits.argmax(-1).cpu().data<long>().ToArray();
        Tensor? rows = null;
        for (int i = 0; i < n; i++)
        {
            var r = _active[i];
            if (r.Sampler.IsPlainGreedy) { result[i] = (int)argmax[i]; continue; }
            rows ??= logits.to(ScalarType.Float32).cpu();
            result[i] = r.Sampler.Sample(rows[i].data<float>().ToArray(), r.Seen);
        }
        return result;
    }

    // Frees row i: the last active row moves into it, so rows 0..n−1 stay the active ones.
    private void Retire(int i)
    {
        int last = _active.Count - 1;
        if (i != last)
        {
            _cache.CopyRow(last, i, _active[last].Length);
            _active[i] = _active[last];
        }
        _active.RemoveAt(last);
    }
}
