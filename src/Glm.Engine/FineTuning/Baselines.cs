namespace Glm.Engine.FineTuning;

/// <summary>Hyper-parameters of <see cref="BagOfCharsClassifier"/>.</summary>
public sealed record BagOfCharsOptions
{
    /// <summary>Longest character n-gram used as a feature (1 = single characters, 2 = also adjacent pairs).</summary>
    public int MaxNGram { get; init; } = 1;
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 0.05;
    /// <summary>Examples per Adam step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>L2 penalty on the weights of the features present in a batch (lazy).</summary>
    public double L2 { get; init; } = 1e-5;
    /// <summary>Seed of the shuffling.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Checks the fields; throws naming field and value.</summary>
    public void Validate()
    {
        if (MaxNGram < 1) throw new GlmException($"baseline MaxNGram = {MaxNGram}; expected ≥ 1.");
        if (Epochs < 1) throw new GlmException($"baseline Epochs = {Epochs}; expected ≥ 1.");
        if (LearningRate <= 0) throw new GlmException($"baseline LearningRate = {LearningRate}; expected > 0.");
        if (BatchSize < 1) throw new GlmException($"baseline BatchSize = {BatchSize}; expected ≥ 1.");
        if (L2 < 0) throw new GlmException($"baseline L2 = {L2}; expected ≥ 0.");
    }
}

/// <summary>
/// Multinomial logistic regression on a bag of characters (pure C#): features are the distinct character n-grams
/// (n = 1..<see cref="BagOfCharsOptions.MaxNGram"/>) of the text after <see cref="TextMetrics.Characters"/> normalisation, binary
/// and L2-normalised per text; n-grams unseen in training are ignored. Trained with mini-batch Adam with lazy (sparse) updates
/// of the rows present in each batch, seeded shuffling; deterministic for a given seed.
/// </summary>
public sealed class BagOfCharsClassifier
{
    private readonly Dictionary<string, int> _features;
    private readonly float[] _weights; // [features, classes]
    private readonly float[] _bias;
    private readonly int _maxNGram;

    /// <summary>Class labels in index order.</summary>
    public IReadOnlyList<string> Labels { get; }

    private BagOfCharsClassifier(Dictionary<string, int> features, IReadOnlyList<string> labels, int maxNGram)
    {
        _features = features;
        Labels = labels;
        _maxNGram = maxNGram;
        _weights = new float[features.Count * labels.Count];
        _bias = new float[labels.Count];
    }

    /// <summary>Number of features (distinct training n-grams).</summary>
    public int FeatureCount => _features.Count;

    /// <summary>Trains on (text, label) pairs; labels are sorted ordinally.</summary>
    public static BagOfCharsClassifier Train(IReadOnlyList<(string Text, string Label)> data, BagOfCharsOptions? options = null)
    {
        options ??= new BagOfCharsOptions();
        options.Validate();
        if (data.Count == 0) throw new GlmException("baseline classifier: no training examples.");
        var labels = data.Select(d => d.Label).Distinct().OrderBy(l => l, StringComparer.Ordinal).ToList();
        if (labels.Count < 2) throw new GlmException($"baseline classifier: {labels.Count} distinct label(s) in training; expected at least 2.");
        var featureIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (text, _) in data)
            foreach (var g in NGrams(text, options.MaxNGram))
                featureIds.TryAdd(g, featureIds.Count);
        var model = new BagOfCharsClassifier(featureIds, labels, options.MaxNGram);
        var labelIndex = labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
        var x = data.Select(d => model.Featurize(d.Text)).ToArray();
        var y = data.Select(d => labelIndex[d.Label]).ToArray();
        model.Fit(x, y, options);
        return model;
    }

    private void Fit((int Id, float Value)[][] x, int[] y, BagOfCharsOptions o)
    {
        int c = Labels.Count;
        var m = new float[_weights.Length];
        var v = new float[_weights.Length];
        var mb = new float[c];
        var vb = new float[c];
        var stepOf = new int[_features.Count]; // Adam step count per feature row (lazy Adam)
        int bStep = 0;
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        var order = Enumerable.Range(0, x.Length).ToArray();
        var rng = new Random(o.Seed);
        var grad = new Dictionary<int, float[]>();
        var gb = new float[c];
        var probs = new double[c];
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            rng.Shuffle(order);
            for (int start = 0; start < order.Length; start += o.BatchSize)
            {
                grad.Clear();
                Array.Clear(gb);
                int end = Math.Min(order.Length, start + o.BatchSize), n = end - start;
                for (int k = start; k < end; k++)
                {
                    int i = order[k];
                    Probabilities(x[i], probs);
                    for (int j = 0; j < c; j++)
                    {
                        float d = (float)((probs[j] - (j == y[i] ? 1 : 0)) / n);
                        gb[j] += d;
                        foreach (var (f, val) in x[i])
                        {
                            if (!grad.TryGetValue(f, out var row)) grad[f] = row = new float[c];
                            row[j] += d * val;
                        }
                    }
                }
                foreach (var (f, row) in grad)
                {
                    int t = ++stepOf[f];
                    double c1 = 1 - Math.Pow(beta1, t), c2 = 1 - Math.Pow(beta2, t);
                    for (int j = 0; j < c; j++)
                    {
                        int w = f * c + j;
                        double g = row[j] + o.L2 * _weights[w];
                        m[w] = (float)(beta1 * m[w] + (1 - beta1) * g);
                        v[w] = (float)(beta2 * v[w] + (1 - beta2) * g * g);
                        _weights[w] -= (float)(o.LearningRate * (m[w] / c1) / (Math.Sqrt(v[w] / c2) + eps));
                    }
                }
                bStep++;
                double bc1 = 1 - Math.Pow(beta1, bStep), bc2 = 1 - Math.Pow(beta2, bStep);
                for (int j = 0; j < c; j++)
                {
                    mb[j] = (float)(beta1 * mb[j] + (1 - beta1) * gb[j]);
                    vb[j] = (float)(beta2 * vb[j] + (1 - beta2) * gb[j] * gb[j]);
                    _bias[j] -= (float)(o.LearningRate * (mb[j] / bc1) / (Math.Sqrt(vb[j] / bc2) + eps));
                }
            }
        }
    }

    private void Probabilities((int Id, float Value)[] x, double[] probs)
    {
        int c = Labels.Count;
        for (int j = 0; j < c; j++) probs[j] = _bias[j];
        foreach (var (f, val) in x)
            for (int j = 0; j < c; j++) probs[j] += _weights[f * c + j] * val;
        double max = probs.Max(), sum = 0;
        for (int j = 0; j < c; j++) sum += probs[j] = Math.Exp(probs[j] - max);
        for (int j = 0; j < c; j++) probs[j] /= sum;
    }

    /// <summary>Index into <see cref="Labels"/> of the most probable class of <paramref name="text"/>.</summary>
    public int Predict(string text)
    {
        var probs = new double[Labels.Count];
        Probabilities(Featurize(text), probs);
        int best = 0;
        for (int j = 1; j < probs.Length; j++) if (probs[j] > probs[best]) best = j;
        return best;
    }

    private (int Id, float Value)[] Featurize(string text)
    {
        var ids = NGrams(text, _maxNGram).Select(g => _features.TryGetValue(g, out int id) ? id : -1).Where(id => id >= 0).Distinct().ToArray();
        float value = ids.Length == 0 ? 0 : (float)(1 / Math.Sqrt(ids.Length));
        return ids.Select(id => (id, value)).ToArray();
    }

    private static IEnumerable<string> NGrams(string text, int maxN)
    {
        var units = TextMetrics.Characters(text).Select(char.ConvertFromUtf32).ToArray();
        for (int n = 1; n <= maxN; n++)
            for (int i = 0; i + n <= units.Length; i++)
                yield return n == 1 ? units[i] : string.Concat(units.AsSpan(i, n).ToArray());
    }
}

/// <summary>Text-only baselines for generation tasks.</summary>
public static class TextBaselines
{
    /// <summary>Mean length in <see cref="TextMetrics.Characters"/> units of <paramref name="texts"/>, rounded to the nearest integer (≥ 1).</summary>
    public static int MeanCharacterLength(IEnumerable<string> texts)
    {
        var lengths = texts.Select(t => TextMetrics.Characters(t).Length).ToList();
        if (lengths.Count == 0) throw new GlmException("baseline: no texts to measure; expected at least one.");
        return Math.Max(1, (int)Math.Round(lengths.Average(), MidpointRounding.AwayFromZero));
    }

    /// <summary>Lead-N: the first <paramref name="n"/> units of <paramref name="source"/> (normalised, whitespace removed).</summary>
    public static string Lead(string source, int n) =>
        string.Concat(TextMetrics.Characters(source).Take(n).Select(char.ConvertFromUtf32));
}

/// <summary>
/// Reads labelled texts for <see cref="BagOfCharsClassifier"/>: TSV (the last column is the label, the one before it the text,
/// as CSL <c>cls_ctg</c>'s <c>to category⇥title⇥discipline</c>) or JSONL <c>{"text":…,"label":…}</c> (by extension
/// .jsonl/.json). All problems are reported together as <c>file:line: …</c>.
/// </summary>
public static class LabelledTextData
{
    /// <summary>Reads <paramref name="path"/>; throws one <see cref="GlmException"/> listing all problems.</summary>
    public static IReadOnlyList<(string Text, string Label)> Load(string path) =>
        Read(path, $"{path}: classification data file not found; expected TSV …⇥text⇥label or JSONL {{\"text\",\"label\"}}.", checkLabel: null)
            .Select(r => (r.Text, r.Label)).ToList();

    /// <summary>
    /// The shared reader of labelled lines (also <see cref="ClozeData"/>): rows with their 1-based line numbers.
    /// <paramref name="checkLabel"/> returns a problem description for a label it rejects, or null.
    /// </summary>
    internal static List<(string Text, string Label, int Line)> Read(string path, string fileNotFound, Func<string, string?>? checkLabel)
    {
        if (!File.Exists(path)) throw new GlmException(fileNotFound);
        bool json = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        var rows = new List<(string, string, int)>();
        var errors = new List<string>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            string at = $"{path}:{lineNo}";
            string? text = null, label = null;
            if (json)
            {
                try
                {
                    using var doc = System.Text.Json.JsonDocument.Parse(raw);
                    var root = doc.RootElement;
                    if (root.ValueKind != System.Text.Json.JsonValueKind.Object) { errors.Add($"{at}: expected a JSON object with text and label"); continue; }
                    text = root.TryGetProperty("text", out var t) && t.ValueKind == System.Text.Json.JsonValueKind.String ? t.GetString() : null;
                    label = root.TryGetProperty("label", out var l) ? l.ValueKind == System.Text.Json.JsonValueKind.String ? l.GetString() : l.ToString() : null;
                }
                catch (System.Text.Json.JsonException ex) { errors.Add($"{at}: invalid JSON ({ex.Message})"); continue; }
            }
            else
            {
                var cols = raw.Split('\t');
                if (cols.Length < 2) { errors.Add($"{at}: {cols.Length} column(s); expected text⇥label (tab-separated)"); continue; }
                text = cols[^2];
                label = cols[^1].Trim();
            }
            if (string.IsNullOrWhiteSpace(text)) { errors.Add($"{at}: text is empty or missing"); continue; }
            if (string.IsNullOrWhiteSpace(label)) { errors.Add($"{at}: label is empty or missing"); continue; }
            if (checkLabel?.Invoke(label) is string problem) { errors.Add($"{at}: {problem}"); continue; }
            rows.Add((text, label, lineNo));
        }
        if (errors.Count > 0)
            throw new GlmException($"{path}: {errors.Count} malformed line(s):\n" + string.Join("\n", errors.Take(20)) + (errors.Count > 20 ? $"\n… and {errors.Count - 20} more" : ""));
        if (rows.Count == 0) throw new GlmException($"{path}: no examples.");
        return rows;
    }
}
