#!/usr/bin/env bash
# GPU speed check, for a machine with a GPU: converts a full-size ConvNeXt-T (random weights, made
# with torchvision), quantizes it to fp16 and int8, and validates speed against fp32 on WebGPU (and
# CUDA when its provider libraries are installed), writing JSON and HTML reports to OUT_DIR.
# Designed to finish within 8 minutes. Usage: scripts/gpu-check.sh OUT_DIR
#
# Needs the built project (npm run build) and node_modules. Where the machine has no Node.js, carry
# an xz-compressed node binary as .node/node.xz; where it has no Vulkan loader (ldconfig -p | grep
# libvulkan prints nothing), carry the loader packages as .gl/*.deb: both are unpacked here.
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
log() { printf '[gpu-check %s] %s\n' "$(date +%T)" "$*" | tee -a "$out/gpu-check.log"; }

if ! command -v node >/dev/null 2>&1; then
  [ -f .node/node.xz ] || { log "no node on PATH and no .node/node.xz"; exit 2; }
  xz -dc .node/node.xz >/tmp/node && chmod +x /tmp/node && export PATH="/tmp:$PATH"
fi
if [ -d .gl ] && ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR=/tmp
log "node $(node --version); $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: none')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt" 2>/dev/null || true

cli() { node dist/bin/convnext.js "$@"; }
ckpt="$out/convnext_tiny.pth"
if [ ! -f "$ckpt" ]; then
  log "making a ConvNeXt-T checkpoint with torchvision"
  PYTHONUNBUFFERED=1 python3 bench/make_convnext_tiny.py "$out" | tee "$out/torch-export.json" || { log "python3 with torch and torchvision is needed"; exit 2; }
fi
calib=fixtures/fashion/calib
data=fixtures/fashion/val

log "convert"
cli convert "$ckpt" -o "$out/fp32.onnx" --json >"$out/convert.json"
log "quantize fp16"
cli quantize "$ckpt" -o "$out/fp16.onnx" --to fp16 --json >"$out/quantize-fp16.json"
log "quantize int8 (8-bit weights: GPU kernels do not saturate)"
cli quantize "$ckpt" -o "$out/int8.onnx" --to int8 --no-reduce-range --calib "$calib" --calib-size 64 --crop-pct 1 --json >"$out/quantize-int8.json"

status=0
for ep in webgpu cuda; do
  for m in fp32 fp16 int8; do
    log "validate $m on $ep"
    cli validate "$out/$m.onnx" --reference "$out/fp32.onnx" --ep "$ep" --batch 1,8,32 \
      --data "$data" --limit 256 --crop-pct 1 \
      --json "$out/validate-$m-$ep.json" --html "$out/validate-$m-$ep.html" >"$out/validate-$m-$ep.txt" 2>&1
    rc=$?
    tail -n 25 "$out/validate-$m-$ep.txt" | tee -a "$out/gpu-check.log"
    # exit 2 is "this provider cannot run here" (e.g. no CUDA libraries): recorded, not fatal
    [ $rc -eq 0 ] || [ $rc -eq 2 ] || status=$rc
  done
done
log "done: reports in $out"
exit $status
