# Generates tests/Glm.Engine.Tests/Checkpoints/Fixtures/*.bin with Debian python3-torch 1.13 (run once, by hand).
import collections, io, os, pickle, sys, zipfile
import torch
out = sys.argv[1]

# 1) A real nn.Module state dict (carries _metadata => BUILD opcode) plus dtype, view and stride cases.
lin = torch.nn.Linear(4, 3)
with torch.no_grad():
    lin.weight.copy_(torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25)
    lin.bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
sd = lin.state_dict()
base = torch.arange(10, dtype=torch.float32)
sd["shared.base"] = base
sd["shared.slice"] = base[3:7]                                    # storage offset 3, same storage
sd["transposed"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()   # stride (1, 3)
sd["half"] = torch.arange(6, dtype=torch.float16) * 0.5
sd["bf16"] = (torch.arange(8, dtype=torch.float32) - 4).to(torch.bfloat16).reshape(2, 4)
sd["long"] = torch.arange(5, dtype=torch.int64) * 1000000007
sd["flags"] = torch.tensor([True, False, True])
sd["scalar"] = torch.tensor(2.5, dtype=torch.float64)
torch.save(sd, os.path.join(out, "torch113_state_dict.bin"))

# 2) THUDM/Megatron style wrapper with a Parameter and non-tensor leaves.
inner = collections.OrderedDict()
inner["word_embeddings.weight"] = torch.nn.Parameter(torch.arange(12, dtype=torch.float16).reshape(4, 3))
inner["transformer.final_layernorm.weight"] = torch.ones(3)
torch.save({"module": inner, "iteration": 1000, "args": None}, os.path.join(out, "torch113_thudm_module.bin"))

# 3) Malicious: a torch.save-shaped zip whose pickle calls os.system.
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/glm_pwned",))
with zipfile.ZipFile(os.path.join(out, "malicious_os_system.bin"), "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    z.writestr("archive/version", "3\n")
print(sorted(os.listdir(out)))
