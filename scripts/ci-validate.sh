#!/usr/bin/env bash
# The CI validation step, on the shipped Fashion-MNIST model: convert it, quantize it to int8 with
# its calibration images, and fail the build if int8 loses accuracy or speed against fp32.
# Reports (JSON, JUnit, HTML) go to ${1:-build/validate}. The same lines work in any CI system.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/validate}
mkdir -p "$out"
convnext() { node dist/bin/convnext.js "$@"; }
F=fixtures/fashion
convnext convert  $F/convnext_fashion.pth -o "$out/fashion-fp32.onnx" --image-size 32 --crop-pct 1 --labels $F/classes.txt
convnext quantize "$out/fashion-fp32.onnx" -o "$out/fashion-int8.onnx" --to int8 --calib $F/calib
convnext validate "$out/fashion-int8.onnx" --reference "$out/fashion-fp32.onnx" --data $F/val \
  --ep auto --batch 1,8 \
  --max-drop 0.5 --min-agreement 99 --min-cosine 0.999 --max-latency-ms 250 \
  --json "$out/report.json" --junit "$out/junit.xml" --html "$out/report.html"
