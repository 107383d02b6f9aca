using System.Diagnostics;

namespace Glm.Engine.Diagnostics;

/// <summary>A part of a ChatGLM/GLM-4 forward pass that <see cref="DecodeProfiler"/> times separately.</summary>
public enum DecodeSection
{
    /// <summary>Embedding lookup and rotary table gather (once per step).</summary>
    Embedding,
    /// <summary>RMSNorms (input, post-attention, final).</summary>
    Norm,
    /// <summary>The fused QKV projection.</summary>
    QkvProjection,
    /// <summary>Rotary embedding of Q and K.</summary>
    Rotary,
    /// <summary>Writing K/V into the cache.</summary>
    KvCacheAppend,
    /// <summary>Scores, softmax and the weighted sum over the cache.</summary>
    Attention,
    /// <summary>The attention output projection (dense).</summary>
    OutputProjection,
    /// <summary>The MLP's gate/up and down projections.</summary>
    MlpProjections,
    /// <summary>silu(gate)·up.</summary>
    SwiGlu,
    /// <summary>Residual additions.</summary>
    Residual,
    /// <summary>The output head (logits).</summary>
    OutputHead,
    /// <summary>Time inside the managed GEMV kernels' multiply-add loops (part of the projection and head sections).</summary>
    GemvInnerLoops,
}

/// <summary>
/// Opt-in wall-clock accounting of where a decode step's time goes (<c>glm bench --profile</c>). libtorch's CPU ops are
/// synchronous, so the time between two timestamps around an op sequence is that sequence's cost, TorchSharp's dispatch
/// included. When disabled, <see cref="Start"/> returns 0 and <see cref="Stop"/> does nothing (one branch per call site).
/// Single-threaded: profile one decoding stream at a time.
/// </summary>
public static class DecodeProfiler
{
    private static readonly long[] Ticks = new long[Enum.GetValues<DecodeSection>().Length];
    private static readonly long[] Calls = new long[Ticks.Length];

    /// <summary>Whether sections are being timed.</summary>
    public static bool Enabled { get; set; }

    /// <summary>A timestamp to pass to <see cref="Stop"/>; 0 when disabled.</summary>
    public static long Start() => Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="section"/>.</summary>
    public static void Stop(DecodeSection section, long start)
    {
        if (start == 0) return;
        Ticks[(int)section] += Stopwatch.GetTimestamp() - start;
        Calls[(int)section]++;
    }

    /// <summary>Clears the totals.</summary>
    public static void Reset()
    {
        Array.Clear(Ticks);
        Array.Clear(Calls);
    }

    /// <summary>Total seconds and call count per section since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyList<(DecodeSection Section, double Seconds, long Calls)> Snapshot() =>
        Enum.GetValues<DecodeSection>().Select(s => (s, Ticks[(int)s] / (double)Stopwatch.Frequency, Calls[(int)s])).ToList();
}
