"""Makes a full-size ConvNeXt-T checkpoint (random weights, torchvision) for the benchmark, and times
torch.onnx.export of the same model as the baseline. Prints one JSON line. Not committed output."""
import json, sys, time

import torch
import torchvision

out_dir = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.convnext_tiny().eval()
# A fresh model has LayerScale 1e-6, LayerNorm (1, 0) and zero biases: nothing for the passes to
# fold. Give every such parameter trained-looking values so the benchmark does the real work.
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):
            p.uniform_(0.2, 1.0)
        elif p.dim() == 1 and name.endswith("weight"):  # LayerNorm scales
            p.normal_(1.0, 0.2)
        elif name.endswith("bias"):
            p.normal_(0.0, 0.05)
ckpt = f"{out_dir}/convnext_tiny.pth"
torch.save(model.state_dict(), ckpt)
x = torch.randn(1, 3, 224, 224)
runs = []
for i in range(3):
    t0 = time.perf_counter()
    torch.onnx.export(model, x, f"{out_dir}/convnext_tiny.torch.onnx", opset_version=17,
                      input_names=["pixel_values"], output_names=["logits"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
    runs.append(time.perf_counter() - t0)
runs.sort()
print(json.dumps({"checkpoint": ckpt, "torch_export_s": runs[len(runs) // 2], "torch_export_runs": runs,
                  "parameters": sum(p.numel() for p in model.parameters())}))
