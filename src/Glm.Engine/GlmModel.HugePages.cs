using Glm.Engine.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Glm.Engine;

public sealed partial class GlmModel
{
    private readonly CancellationTokenSource _hugePagesCancel = new();
    private Task<long>? _hugePagesInBackground;

    /// <summary>
    /// Moves the weights onto 2 MiB pages (<see cref="HugePages"/>) now, after waiting for a background run started at load
    /// (<see cref="GlmLoadOptions.HugePages"/>), and returns the weight bytes on huge pages. 0 on GPUs and where the kernel
    /// cannot do it. Results do not change; later decode steps stream faster.
    /// </summary>
    public long MapWeightsOntoHugePages()
    {
        WaitForHugePages();
        return HugePages.Collapse(WeightTensors()); // skips tensors not on the CPU
    }

    private IEnumerable<Tensor> WeightTensors() => NamedWeights().Select(p => p.Tensor);

    // Starts collapsing the weights on a background thread (≈ 2.5 s per GB of CPU time, once; a 6B model's weights take tens
    // of seconds, so a load does not wait for it). Decoding meanwhile is correct: the kernel remaps each region atomically.
    private void StartHugePagesInBackground()
    {
        if (Device.type != DeviceType.CPU || !HugePages.Supported) return;
        var weights = WeightTensors().ToList();
        var ct = _hugePagesCancel.Token;
        _hugePagesInBackground = Task.Factory.StartNew(() => HugePages.Collapse(weights, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void WaitForHugePages()
    {
        try { _hugePagesInBackground?.Wait(); }
        catch (AggregateException) { } // best effort: a failed collapse leaves the pages as they were
        _hugePagesInBackground = null;
    }

    private void StopHugePages()
    {
        if (Interlocked.Exchange(ref _hugePagesStopped, 1) == 1) return; // Dispose may run twice
        _hugePagesCancel.Cancel();
        WaitForHugePages();
        _hugePagesCancel.Dispose();
    }

    private int _hugePagesStopped;
}
