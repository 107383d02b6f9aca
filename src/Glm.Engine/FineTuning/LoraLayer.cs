using Glm.Engine.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Glm.Engine.FineTuning;

/// <summary>
/// One LoRA adapter on a linear layer y = x·Wᵀ + b: adds (dropout(x)·Aᵀ·Bᵀ)·α/r with A [r, in] and B [out, r]. A and B are
/// fp32 parameters on the model's device (the input is cast to fp32 and the term cast back), so bf16 bases train stably.
/// </summary>
public sealed class LoraLayer : nn.Module, ILinearAdapter
{
    /// <summary>Module path under the engine's canonical (THUDM / original-GLM) names.</summary>
    public string ModulePath { get; }
    /// <summary>Down-projection A [r, in].</summary>
    public Parameter A { get; }
    /// <summary>Up-projection B [out, r].</summary>
    public Parameter B { get; }
    /// <summary>α / r.</summary>
    public double Scaling { get; }
    /// <summary>Dropout probability on the adapter input while <see cref="DropoutActive"/>.</summary>
    public double DropoutProbability { get; }
    /// <summary>True while training: dropout is applied.</summary>
    public bool DropoutActive { get; set; }

    internal LoraLayer(string modulePath, Tensor a, Tensor b, double scaling, double dropout) : base("lora")
    {
        ModulePath = modulePath;
        A = new Parameter(a, requires_grad: true);
        B = new Parameter(b, requires_grad: true);
        Scaling = scaling;
        DropoutProbability = dropout;
        register_parameter("lora_A", A);
        register_parameter("lora_B", B);
    }

    /// <summary>Adapter rank (rows of A).</summary>
    public long Rank => A.shape[0];

    Tensor ILinearAdapter.Delta(Tensor x)
    {
        var h = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        if (DropoutActive && DropoutProbability > 0) h = F.dropout(h, DropoutProbability, training: true);
        var shape = h.shape;
        var flat = h.reshape(-1, shape[^1]);
        var delta = F.linear(F.linear(flat, A), B).mul_(Scaling);
        var outShape = shape.ToArray();
        outShape[^1] = delta.shape[1];
        delta = delta.view(outShape);
        return delta.dtype == x.dtype ? delta : delta.to(x.dtype);
    }

    /// <summary>B·A·α/r [out, in] in fp32 (the weight update a merge adds).</summary>
    public Tensor DeltaWeight() => matmul(B, A).mul_(Scaling);
}
