namespace Glm.Engine.Training;

/// <summary>Draws training and evaluation loss against the step with ScottPlot 5.</summary>
public static class LossCurvePlot
{
    /// <summary>Writes a PNG of <paramref name="trainLosses"/> (index = step − 1) and <paramref name="evaluations"/>.</summary>
    public static void Save(string path, IReadOnlyList<double> trainLosses, IReadOnlyList<EvaluationResult> evaluations, int width = 900, int height = 500)
    {
        var plot = new ScottPlot.Plot();
        if (trainLosses.Count > 0)
        {
            var train = plot.Add.Scatter(Enumerable.Range(1, trainLosses.Count).Select(i => (double)i).ToArray(), trainLosses.ToArray());
            train.LegendText = "train loss";
            train.MarkerSize = 0;
        }
        if (evaluations.Count > 0)
        {
            var eval = plot.Add.Scatter(evaluations.Select(e => (double)e.Step).ToArray(), evaluations.Select(e => e.Loss).ToArray());
            eval.LegendText = "held-out loss";
        }
        plot.Title("GLM pretraining");
        plot.XLabel("step");
        plot.YLabel("loss (nats / token)");
        plot.ShowLegend();
        plot.SavePng(path, width, height);
    }
}
