"""Makes a full-size ConvNeXt-T checkpoint (random weights, torchvision) for the benchmark, and times
torch.onnx.export of the same model as the baseline. Prints one JSON line. Not committed output.

Usage: make_convnext_tiny.py OUT_DIR [--skip-export]
--skip-export (or CONVNEXT_SKIP_TORCH_EXPORT=1) writes the checkpoint only: scripts/gpu-check.sh does
not need the export. Where the export fails, the checkpoint is already written; the JSON line says why
(torch_export_error) and the exit status is 1."""
import inspect, json, os, sys, time

import torch
import torchvision

args = [a for a in sys.argv[1:] if not a.startswith("--")]
skip_export = "--skip-export" in sys.argv[1:] or os.environ.get("CONVNEXT_SKIP_TORCH_EXPORT", "") not in ("", "0")
out_dir = args[0]
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
info = {"checkpoint": ckpt, "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__, "torchvision": torchvision.__version__}
if skip_export:
    print(json.dumps({**info, "torch_export_s": None, "torch_export": "skipped"}))
    sys.exit(0)

x = torch.randn(1, 3, 224, 224)
# The baseline is the TorchScript exporter: torch >= 2.9 defaults to the dynamo exporter, which is
# much slower and writes a different graph; ask for the old one where the argument exists.
legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
runs = []
try:
    for i in range(3):
        t0 = time.perf_counter()
        torch.onnx.export(model, x, f"{out_dir}/convnext_tiny.torch.onnx", opset_version=17,
                          input_names=["pixel_values"], output_names=["logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, **legacy)
        runs.append(time.perf_counter() - t0)
except Exception as e:  # the checkpoint is written; say why the baseline is missing
    print(f"torch.onnx.export failed: {type(e).__name__}: {e}", file=sys.stderr)
    print(json.dumps({**info, "torch_export_s": None, "torch_export_error": f"{type(e).__name__}: {e}"[:500]}))
    sys.exit(1)
runs.sort()
print(json.dumps({**info, "torch_export_s": runs[len(runs) // 2], "torch_export_runs": runs}))
