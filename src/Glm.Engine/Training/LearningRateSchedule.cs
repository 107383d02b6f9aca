namespace Glm.Engine.Training;

/// <summary>Linear warm-up to the peak rate, then cosine decay to the minimum rate at the last step.</summary>
/// <param name="PeakRate">Rate reached at the end of warm-up.</param>
/// <param name="MinRate">Rate at the final step.</param>
/// <param name="WarmupSteps">Steps of linear warm-up (step 0 uses PeakRate/WarmupSteps).</param>
/// <param name="TotalSteps">Optimizer steps of the whole run.</param>
public sealed record LearningRateSchedule(double PeakRate, double MinRate, int WarmupSteps, int TotalSteps)
{
    /// <summary>Learning rate for optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        if (step < WarmupSteps) return PeakRate * (step + 1) / WarmupSteps;
        int decaySteps = Math.Max(1, TotalSteps - WarmupSteps - 1);
        double progress = Math.Clamp((double)(step - WarmupSteps) / decaySteps, 0, 1);
        return MinRate + 0.5 * (PeakRate - MinRate) * (1 + Math.Cos(Math.PI * progress));
    }
}
