using Glm.Engine.Training.Data;

namespace Glm.Engine.Tests.Training;

public class SyntheticChainsTests
{
    [Fact]
    public void EveryTokenFollowsTheChainExceptEachPeriodthAndSamplesRepeatPerSeed()
    {
        var chains = new SyntheticChains(alphabetSize: 50, period: 4, seed: 3);
        Assert.Equal(Enumerable.Range(0, 50), Enumerable.Range(0, 50).Select(chains.Next).Order()); // a permutation
        var samples = chains.Samples(20, 33, seed: 5);
        int restarts = 0;
        foreach (var s in samples)
        {
            Assert.Equal(33, s.Length);
            Assert.Equal(chains.Tokens.Cls, s[0]);
            Assert.All(s.Skip(1), t => Assert.InRange(t, 0, 49));
            for (int i = 1; i + 1 < s.Length; i++)
            {
                if (i % 4 != 0) Assert.Equal(chains.Next(s[i]), s[i + 1]);
                else if (s[i + 1] != chains.Next(s[i])) restarts++;
            }
        }
        Assert.True(restarts > 100, $"only {restarts} of 160 restarts broke the chain"); // random draws, 1/50 may match
        Assert.Equal(samples, chains.Samples(20, 33, seed: 5));
        Assert.NotEqual(samples[0], chains.Samples(1, 33, seed: 6)[0]);
        Assert.Equal(58, chains.VocabSize);
        Assert.Equal(57, chains.Tokens.Pad);
    }

    [Fact]
    public void BadShapesAreRefused()
    {
        Assert.Contains("period 1", Assert.Throws<GlmException>(() => new SyntheticChains(period: 1)).Message);
        Assert.Contains("alphabet size 1", Assert.Throws<GlmException>(() => new SyntheticChains(alphabetSize: 1)).Message);
        Assert.Contains("sample length 2", Assert.Throws<GlmException>(() => new SyntheticChains().Samples(1, 2, 0)).Message);
    }
}
