#!/usr/bin/env bash
# GPU speed check, for a machine with a GPU: converts a full-size ConvNeXt-T (random weights, made
# with torchvision), quantizes it to fp16, int8 and int4-weights, and validates fp32/fp16/int8/q4 (accuracy against
# fp32, speed per batch size) on WebGPU, on CUDA (exit 2 without the CUDA provider libraries, which
# the npm package does not ship: recorded, not fatal) and on the CPU for comparison.
# Usage: scripts/gpu-check.sh OUT_DIR
#
# Self-contained on a machine without network or Node.js: run scripts/gpu-bundle.sh first and carry
# .gpu/ (node binary, pruned node_modules, built dist/, Vulkan loader packages). Node, node_modules
# and dist are taken from the machine/checkout where present, else unpacked from .gpu/; the Vulkan
# loader packages are unpacked only where `ldconfig -p` has no libvulkan. python3 with torch and
# torchvision makes the checkpoint (without the torch.onnx.export baseline); without them the
# shipped Fashion-MNIST model (32×32) is checked instead.
#
# Every step runs under `timeout` within one time budget, and a failed or hung step does not stop
# the others, so the script ends within GPU_CHECK_BUDGET_S (340 s; in practice 10-15 s less, as the
# last 20 s are kept for packing).
# OUT_DIR receives 4 files: gpu-check.log (written as it goes), summary.txt (also printed at the
# end), summary.json, reports.tar.gz (every JSON/HTML/text report, environment, step table).
# Exit 0 when every step ran or was a recorded "cannot run here" (exit 2 of validate --ep), else the
# first other failure's status (124/137: a step timed out).
#
# Environment: GPU_CHECK_BUDGET_S=340  GPU_CHECK_LIMIT=256 (validation images)  GPU_CHECK_BATCH=1,8,32
#   GPU_CHECK_CALIB=64 (int8 calibration images)  GPU_CHECK_EPS="webgpu cpu cuda"
#   GPU_CHECK_MODEL=fashion (the shipped Fashion-MNIST model instead of ConvNeXt-T)
#   GPU_CHECK_WORK=DIR (models and reports; default a new /tmp/gpu-check.XXXXXX, models deleted at
#   the end unless GPU_CHECK_KEEP=1)  GPU_CHECK_PYTHON=python3
set -uo pipefail
T0=$SECONDS
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
cd "$(dirname "$0")/.." || exit 2

budget=${GPU_CHECK_BUDGET_S:-340}
reserve=20                                   # kept for the kill grace period and packing
limit=${GPU_CHECK_LIMIT:-256}
batches=${GPU_CHECK_BATCH:-1,8,32}
calib_size=${GPU_CHECK_CALIB:-64}
eps=${GPU_CHECK_EPS:-webgpu cpu cuda}
py=${GPU_CHECK_PYTHON:-python3}
if [ -n "${GPU_CHECK_WORK:-}" ]; then work=$GPU_CHECK_WORK; mkdir -p "$work"; else work=$(mktemp -d /tmp/gpu-check.XXXXXX); fi
rep=$work/reports
models=$work/models
rm -rf "$rep" "$models"
mkdir -p "$rep" "$models" "$work/bin"
LOG=$out/gpu-check.log
: >"$LOG"
STEPS=$rep/steps.tsv
printf 'step\trc\tseconds\tlimit_s\n' >"$STEPS"
status=0

log() { printf '[gpu-check %s +%ds] %s\n' "$(date +%T)" "$((SECONDS - T0))" "$*" | tee -a "$LOG"; }
note() { printf '%s\n' "$*" >>"$LOG"; }          # to the log only
left() { echo $((budget - (SECONDS - T0) - reserve)); }

# step NAME CAP STDOUT STDERR CMD...: CMD under timeout (CAP seconds, less when the budget is short);
# STDERR "-" sends it to STDOUT. Records NAME, exit status, seconds and the limit in steps.tsv.
step() {
  local name=$1 cap=$2 o=$3 e=$4 l s rc
  shift 4
  l=$(left)
  if [ "$l" -lt 10 ]; then
    log "$name: skipped, time budget spent"
    printf '%s\tskipped\t0\t0\n' "$name" >>"$STEPS"
    return 125
  fi
  [ "$cap" -lt "$l" ] && l=$cap
  s=$SECONDS
  if [ "$e" = - ]; then timeout -k 5 "$l" "$@" >"$o" 2>&1; else timeout -k 5 "$l" "$@" >"$o" 2>"$e"; fi
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - s))" "$l" >>"$STEPS"
  case $rc in
    0) log "$name: ok ($((SECONDS - s)) s)" ;;
    124|137) log "$name: TIMED OUT after $l s" ;;
    *) log "$name: exit $rc ($((SECONDS - s)) s): $(grep -m1 -E '^(error|Error|Traceback)' "${e/#-/$o}" 2>/dev/null || tail -n 1 "${e/#-/$o}" 2>/dev/null)" ;;
  esac
  return $rc
}

unxz_to() {   # FILE.xz DEST
  if command -v xz >/dev/null; then timeout 120 xz -dc "$1" >"$2"
  else timeout 120 "$py" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
untar_xz() {  # FILE.tar.xz DIR
  if command -v xz >/dev/null; then timeout 120 xz -dc "$1" | timeout 120 tar -x -C "$2"
  else timeout 120 "$py" -c 'import sys, tarfile; kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2], **kw)' "$1" "$2"; fi
}
# deb_files DEB / deb_extract DEB DIR: with dpkg, else by reading the ar archive in Python
deb_py='import io, sys, tarfile
f = open(sys.argv[2], "rb"); assert f.read(8) == b"!<arch>\n"
while True:
    h = f.read(60)
    if len(h) < 60: break
    name, size = h[:16].decode().strip().rstrip("/"), int(h[48:58])
    data = f.read(size); f.read(size % 2)
    if name.startswith("data.tar"):
        t = tarfile.open(fileobj=io.BytesIO(data), mode="r:" + {"xz": "xz", "gz": "gz", "bz2": "bz2"}.get(name.rsplit(".", 1)[-1], ""))
        if sys.argv[1] == "list": print("\n".join(t.getnames()))
        else: t.extractall(sys.argv[3])'
deb_files() { if command -v dpkg-deb >/dev/null; then timeout 60 dpkg-deb -c "$1" | awk '{print $6}'; else timeout 60 "$py" -c "$deb_py" list "$1"; fi; }
deb_extract() { if command -v dpkg >/dev/null; then timeout 60 dpkg -x "$1" "$2"; else timeout 60 "$py" -c "$deb_py" extract "$1" "$2"; fi; }

finish() {
  local rc=$? s
  trap - EXIT
  [ "$status" = 0 ] && [ "$rc" != 0 ] && status=$rc
  log "packing reports into $out (exit status $status)"
  cp "$LOG" "$rep/gpu-check.log" 2>/dev/null
  for m in fp32 fp16 fp16ln int8 q4 fp32mm; do [ -f "$models/$m.onnx" ] && printf '%s\t%s\n' "$m" "$(stat -c %s "$models/$m.onnx")"; done >"$rep/model-sizes.tsv"
  if command -v "$py" >/dev/null && [ -f "$work/summary.py" ]; then
    timeout 60 "$py" "$work/summary.py" "$rep" "$out/summary.json" >"$out/summary.txt" 2>>"$LOG" || { echo "summary failed; steps:"; column -t "$STEPS" 2>/dev/null || cat "$STEPS"; } >>"$out/summary.txt"
  else
    { echo "no python3 for the summary; steps:"; cat "$STEPS"; } >"$out/summary.txt"
  fi
  cp "$out/summary.txt" "$rep/" 2>/dev/null
  # one archive under 16 MiB: every report; without the HTML pages if that is too big
  tar -C "$work" -czf "$out/reports.tar.gz" reports
  s=$(stat -c %s "$out/reports.tar.gz")
  if [ "$s" -gt 16000000 ]; then
    log "reports.tar.gz is $s bytes: leaving out the HTML reports"
    tar -C "$work" --exclude='*.html' -czf "$out/reports.tar.gz" reports
  fi
  [ "${GPU_CHECK_KEEP:-0}" = 1 ] || rm -rf "$models"
  log "done in $((SECONDS - T0)) s: $(cd "$out" && ls | tr '\n' ' ')"
  echo
  cat "$out/summary.txt"
  exit "$status"
}
# ---- the summary, written by finish() from the reports ------------------------------------------
cat >"$work/summary.py" <<'EOF'
import json, re, sys
rep, json_out = sys.argv[1], sys.argv[2]
def read(p, default=None):
    try:
        with open(p) as f: return f.read()
    except OSError: return default
def load(p):
    try: return json.loads(read(p, ""))
    except ValueError: return None
steps = [l.split("\t") for l in read(f"{rep}/steps.tsv", "").splitlines()[1:] if l]
rc = {s[0]: s[1] for s in steps}
env = read(f"{rep}/environment.txt", "")
gpu = re.search(r"^gpu: (.*)$", env, re.M); cpu = re.search(r"^cpu: (.*)$", env, re.M)
sizes = dict(l.split("\t") for l in read(f"{rep}/model-sizes.tsv", "").splitlines() if l)
S = {"model": read(f"{rep}/model.txt", "?").strip(), "gpu": gpu and gpu.group(1), "cpu": cpu and cpu.group(1).strip(),
     "steps": [{"step": s[0], "rc": s[1], "seconds": int(s[2]), "limit_s": int(s[3])} for s in steps],
     "model_bytes": {k: int(v) for k, v in sizes.items()}, "quantize": {}, "validate": []}
for m in ("fp16", "fp16ln", "int8", "q4"):
    q = load(f"{rep}/quantize-{m}.json")
    if q: S["quantize"][m] = {k: q.get(k) for k in ("calibrationImages", "method", "quantizedLayers", "keptFloat", "warnings") if k in q} | {"seconds": sum((q.get("timings") or {}).values()) / 1000}
def why(name):
    txt = read(f"{rep}/{name}.txt", "") or ""
    for line in txt.splitlines():
        if line.startswith("error:") or "cannot run here" in line:
            line = re.sub(r"^error: [^:]*\.onnx: ", "", line.strip())
            return re.sub(r"; this machine has no usable .*$", "", line)
    return (txt.strip().splitlines() or [""])[-1][:300]
for ep in ("webgpu", "cpu", "cuda"):
    for m in ("fp32", "fp16", "fp16ln", "int8", "q4", "fp32mm"):
        name = f"validate-{m}-{ep}"
        if name not in rc: continue
        r = load(f"{rep}/{name}.json") if rc[name] in ("0", "1") else None
        row = {"ep": ep, "model": m, "rc": rc[name]}
        if r:
            sp = r.get("speed") or {}
            row |= {"provider": r["model"]["provider"], "device": r["model"]["device"], "load_ms": r["model"]["loadMs"],
                    "fallbacks": r["model"].get("fallbacks"), "images": r["data"]["images"],
                    "top1": r["accuracy"]["model"]["top1"] if r.get("accuracy") else None,
                    "agreement": (r.get("agreement") or {}), "peak_rss_mib": r.get("peakRssBytes", 0) / 2**20,
                    "speed": {str(s["batch"]): {"median_ms": s["medianMs"], "p90_ms": s["p90Ms"], "images_per_s": s["imagesPerSecond"], "runs": s["runs"]} for s in sp.get("model", [])},
                    "fp32_speed": {str(s["batch"]): {"median_ms": s["medianMs"], "images_per_s": s["imagesPerSecond"]} for s in sp.get("reference", [])}}
        else:
            row["error"] = "timed out" if rc[name] in ("124", "137") else "skipped" if rc[name] in ("skipped", "125") else why(name)
        S["validate"].append(row)
probe = load(f"{rep}/probe-webgpu.json")
if "probe-webgpu" in rc:
    S["webgpu_probe"] = {"rc": rc["probe-webgpu"], "result": ("ok on " + probe["model"]["device"]) if probe else ("timed out" if rc["probe-webgpu"] in ("124", "137") else why("probe-webgpu"))}
with open(json_out, "w") as f: json.dump(S, f, indent=1)

mib = lambda b: f"{b / 2**20:.1f} MiB"
out = [f"gpu-check summary: {S['model']}", f"GPU: {S['gpu'] or 'none'}   CPU: {S['cpu']}"]
if S["model_bytes"]: out.append("files: " + ", ".join(f"{k} {mib(v)}" for k, v in S["model_bytes"].items()))
for m, q in S["quantize"].items():
    out.append(f"quantize {m}: {q['seconds']:.1f} s" + (f", {q.get('calibrationImages')} calibration images ({q.get('method')}), {q.get('quantizedLayers')} layers int8, kept float: {q.get('keptFloat') or 'none'}" if m == "int8" else ""))
if "webgpu_probe" in S: out.append(f"WebGPU probe (tiny model): {S['webgpu_probe']['result']}")
batches = sorted({b for r in S["validate"] for b in r.get("speed", {})}, key=int)
out.append("")
out.append("EP      model  result   agree%  cosine     max|err|   load ms  " + "  ".join(f"b{b} ms".rjust(9) for b in batches) + "  " + f"img/s@b{batches[-1] if batches else '?'}".rjust(10) + "  speed-up vs fp32 (same EP)")
fp = {}
for r in S["validate"]:
    if "error" in r:
        out.append(f"{r['ep']:<7} {r['model']:<6}  " + (r["error"] if r["error"] in ("timed out", "skipped") else f"exit {r['rc']}: {r['error'][:160]}")); continue
    a = r["agreement"]; sp = r["speed"]
    if r["model"] == "fp32": fp[r["ep"]] = sp
    ref = r["fp32_speed"]
    speedup = " / ".join(f"{ref[b]['median_ms'] / sp[b]['median_ms']:.2f}×" for b in batches if b in ref and b in sp) or "-"
    out.append(f"{r['ep']:<7} {r['model']:<6}  {'ok' if r['rc'] == '0' else 'gate!':<6} "
               + (f"{a['top1Agreement']:7.2f}  {a['meanCosine']:.6f}  {a['maxAbsError']:9.2e}" if a else f"{'-':>7}  {'-':>8}  {'-':>9}")
               + f"  {r['load_ms']:7.0f}  " + "  ".join(f"{sp[b]['median_ms']:9.2f}" if b in sp else f"{'-':>9}" for b in batches)
               + f"  {sp[batches[-1]]['images_per_s'] if batches and batches[-1] in sp else 0:10.1f}  {speedup}"
               + (f"   [ran on {r['provider']}]" if r["provider"] != r["ep"] else ""))
cmp = [(ep, m) for ep in ("webgpu", "cuda") for m in ("fp32", "fp16", "fp16ln", "int8", "q4", "fp32mm")]
lines = []
for ep, m in cmp:
    g = next((r for r in S["validate"] if r["ep"] == ep and r["model"] == m and "speed" in r), None)
    c = next((r for r in S["validate"] if r["ep"] == "cpu" and r["model"] == m and "speed" in r), None)
    if g and c: lines.append(f"  {m} on {ep}: " + ", ".join(f"b{b} {c['speed'][b]['median_ms'] / g['speed'][b]['median_ms']:.1f}×" for b in batches if b in g["speed"] and b in c["speed"]))
if lines: out += ["", "GPU vs CPU (CPU median / GPU median, same model):"] + lines
out += ["", "agree%, cosine, max|err|: against fp32 on the same EP (fp32 rows: no reference); GPU-vs-CPU numerics are not compared"
        + ("; top-1 against labels means nothing here (random weights on Fashion-MNIST images)" if S["model"].startswith("ConvNeXt-T") else ""),
        "steps: " + ", ".join(f"{s['step']} {s['rc'] if s['rc'] != '0' else 'ok'} {s['seconds']}s" for s in S["steps"])]
print("\n".join(out))
EOF
trap finish EXIT
fatal() { log "FATAL: $*"; status=2; exit 2; }

log "gpu-check in $PWD → $out (work $work; budget ${budget}s, $limit images, batches $batches)"

# ---- Node.js, node_modules, dist ------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v node >/dev/null && [ "$(node_major node)" -ge 20 ]; then
  NODE=$(command -v node)
elif [ -f .gpu/node.xz ]; then
  unxz_to .gpu/node.xz "$work/bin/node" && chmod +x "$work/bin/node" || fatal "cannot unpack .gpu/node.xz"
  NODE=$work/bin/node
  export PATH="$work/bin:$PATH"
else
  fatal "no Node.js >= 20 on PATH and no .gpu/node.xz (run scripts/gpu-bundle.sh here and carry .gpu)"
fi
log "node: $NODE $("$NODE" --version 2>&1)"
if [ ! -f node_modules/onnxruntime-node/package.json ]; then
  [ -f .gpu/node_modules.tar.xz ] || fatal "no node_modules and no .gpu/node_modules.tar.xz"
  untar_xz .gpu/node_modules.tar.xz . || fatal "cannot unpack .gpu/node_modules.tar.xz"
  log "node_modules: unpacked from .gpu/node_modules.tar.xz ($(du -sh node_modules | cut -f1))"
else
  log "node_modules: present"
fi
if [ ! -f dist/bin/convnext.js ]; then
  [ -f .gpu/dist.tar.xz ] || fatal "no dist/ (npm run build) and no .gpu/dist.tar.xz"
  untar_xz .gpu/dist.tar.xz . || fatal "cannot unpack .gpu/dist.tar.xz"
  log "dist: unpacked from .gpu/dist.tar.xz"
else
  log "dist: present"
fi
[ -f .gpu/MANIFEST.txt ] && { note "--- .gpu/MANIFEST.txt"; cat .gpu/MANIFEST.txt >>"$LOG"; cp .gpu/MANIFEST.txt "$rep/"; }
cli() { echo "$NODE" dist/bin/convnext.js; }

# ---- Vulkan loader and NVIDIA's Vulkan driver (WebGPU runs on Dawn's Vulkan backend) --------------------
# `ldconfig -p` read once into a file: grep -q on its pipe would stop it early (SIGPIPE, and with
# pipefail a found library would read as missing)
ldcache=$work/ldconfig.txt
refresh_ldcache() { timeout 30 ldconfig -p >"$ldcache" 2>/dev/null; }
has_lib() { grep -qE "^[[:space:]]+${1//./\\.} " "$ldcache"; }
vulkan_line() { grep -m1 -E '^[[:space:]]+libvulkan\.so\.1 ' "$ldcache" | sed 's/^[[:space:]]*//'; }
refresh_ldcache
# the libraries each carried package ships (sonames), and unpacking a package only where one of
# them is missing: nothing the machine has is ever replaced
declare -A deb_sos=()
for f in .gpu/gl/*.deb; do [ -f "$f" ] && deb_sos[$f]=$(deb_files "$f" 2>/dev/null | grep -oE '[^/]+\.so\.[0-9]+$' | sort -u | tr '\n' ' '); done
unpacked=()
unpack_missing() {  # [SONAME...]: only packages shipping one of these, when given
  local f so want=" $* " n=0
  for f in "${!deb_sos[@]}"; do
    for so in ${deb_sos[$f]}; do
      [ $# -gt 0 ] && [[ $want != *" $so "* ]] && continue
      if ! has_lib "$so"; then deb_extract "$f" / && { unpacked+=("$(basename "$f" .deb)"); n=1; }; break; fi
    done
  done
  if [ $n = 1 ]; then timeout 60 ldconfig; refresh_ldcache; fi
}
if has_lib libvulkan.so.1; then
  log "libvulkan: found ($(vulkan_line))"
elif [ ${#deb_sos[@]} -gt 0 ]; then
  unpack_missing
  log "libvulkan: none on the machine; unpacked ${unpacked[*]:-nothing}; now: $(vulkan_line | grep . || echo 'still none')"
else
  log "libvulkan: none on the machine and no .gpu/gl/*.deb: WebGPU will find no adapter"
fi
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR=/tmp
icd=
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$f" ] && { icd=$f; break; }
done
if [ -n "$icd" ]; then
  export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd    # the latter for loaders older than 1.3.207
  lib=$(grep -o '"library_path"[^,}]*' "$icd" | sed 's/.*: *"\(.*\)"/\1/')
  if [ "${lib#/}" = "$lib" ] && ! has_lib "$lib"; then
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
      [ -e "$d/$lib" ] && { export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; break; }
    done
  fi
  libpath=$lib
  [ "${lib#/}" = "$lib" ] && libpath=$( { grep -F " $lib " "$ldcache" | sed 's/.*=> //'; for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$lib" ] && echo "$d/$lib"; done; } | head -n 1)
  icd_missing() { [ -n "$libpath" ] && timeout 20 ldd "$libpath" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' '; }
  miss=$(icd_missing)
  if [ -n "$miss" ] && [ ${#deb_sos[@]} -gt 0 ]; then   # e.g. libX11/libXext on a machine that has libvulkan
    n=${#unpacked[@]}
    unpack_missing $miss
    [ ${#unpacked[@]} -gt "$n" ] && { log "Vulkan ICD library needed ${miss% }: unpacked ${unpacked[*]:$n}"; miss=$(icd_missing); }
  fi
  log "Vulkan ICD: $icd → ${lib:-?} (${libpath:-NOT FOUND}); missing libraries: ${miss:-none}"
else
  log "Vulkan ICD: no nvidia_icd.json (NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-unset}: needs 'graphics' for the Vulkan driver)"
fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl

# ---- diagnostics ------------------------------------------------------------------------------
gpu=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
log "GPU: ${gpu:-none (nvidia-smi: none or failed)}; CPU: $(nproc) cores; $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
{
  echo "date: $(date -u +%FT%TZ)"; echo "uname: $(uname -a)"; grep PRETTY_NAME /etc/os-release 2>/dev/null
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) × $(nproc)"; echo "gpu: ${gpu:-none}"
  echo "node: $NODE $("$NODE" --version)"; echo "python: $(command -v "$py") $("$py" --version 2>&1)"
  env | grep -E '^(NVIDIA_|CUDA_|VK_|__EGL|LD_LIBRARY_PATH|XDG_RUNTIME_DIR)' | sort
  echo "--- nvidia-smi"; timeout 20 nvidia-smi 2>&1
  echo "--- ldconfig -p (vulkan, nvidia, GL)"; grep -E 'vulkan|nvidia|NVIDIA|libGL[.X]|libEGL|GLdispatch|libX11\.|libXext' "$ldcache"
  echo "--- Vulkan ICD files"; ls -la /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
  [ -n "$icd" ] && { echo "--- $icd"; cat "$icd"; echo "--- ldd ${libpath:-}"; [ -n "${libpath:-}" ] && timeout 20 ldd "$libpath"; }
  echo "--- /dev"; ls -la /dev/nvidia* /dev/dri 2>&1
  echo "--- /usr/local/nvidia"; ls -R /usr/local/nvidia 2>&1 | head -n 60
  command -v vulkaninfo >/dev/null && { echo "--- vulkaninfo --summary"; timeout 20 vulkaninfo --summary 2>&1 | head -n 60; }
} >"$rep/environment.txt" 2>&1
note "--- environment (also in reports.tar.gz)"; head -n 40 "$rep/environment.txt" >>"$LOG"

# ---- models -------------------------------------------------------------------------------------
calib=fixtures/fashion/calib
data=fixtures/fashion/val
size=()
model_name="ConvNeXt-T 224×224 (torchvision layout, random trained-looking weights)"
# GPU_CHECK_MODEL=fashion checks the shipped Fashion-MNIST model: real labels, so top-1 means something
[ "${GPU_CHECK_MODEL:-}" = fashion ] || step checkpoint 150 "$rep/checkpoint.json" "$rep/checkpoint.err" "$py" bench/make_convnext_tiny.py "$models" --skip-export
ckpt=$models/convnext_tiny.pth
if [ ! -s "$ckpt" ]; then
  ckpt=fixtures/fashion/convnext_fashion.pth
  size=(--image-size 32)
  model_name="Fashion-MNIST ConvNeXt 32×32"
  [ "${GPU_CHECK_MODEL:-}" = fashion ] || log "no ConvNeXt-T checkpoint (python3 with torch and torchvision needed): checking the shipped Fashion-MNIST model instead"
fi
log "model: $model_name"
echo "$model_name" >"$rep/model.txt"

# WebGPU first on a tiny model: a quick yes/no and the reason, before the full-size models
if [[ " $eps " == *" webgpu "* ]]; then
  step probe-convert 60 "$rep/probe-convert.txt" - $(cli) convert fixtures/fashion/convnext_fashion.pth -o "$models/probe.onnx" --image-size 32 --crop-pct 1 -q
  step probe-webgpu 60 "$rep/probe-webgpu.txt" - $(cli) validate "$models/probe.onnx" --ep webgpu --batch 1 --data "$data" --limit 16 --json "$rep/probe-webgpu.json"
  probe_rc=$?
  tail -n 20 "$rep/probe-webgpu.txt" >>"$LOG"
fi

step convert 90 "$rep/convert.json" "$rep/convert.err" $(cli) convert "$ckpt" -o "$models/fp32.onnx" "${size[@]}" --json || status=1
# the same model with its pointwise layers as channels-last MatMuls (what convert wrote before
# pointwise-to-conv), timed against the default to see which form the GPU prefers
step convert-matmul 90 "$rep/convert-matmul.json" "$rep/convert-matmul.err" $(cli) convert "$ckpt" -o "$models/fp32mm.onnx" "${size[@]}" --skip-pass pointwise-to-conv --json
src=$models/fp32.onnx qsize=()
[ -f "$src" ] || { src=$ckpt; qsize=("${size[@]}"); }    # --image-size is for checkpoints only
step quantize-fp16 90 "$rep/quantize-fp16.json" "$rep/quantize-fp16.err" $(cli) quantize "$src" -o "$models/fp16.onnx" --to fp16 "${qsize[@]}" --json || status=1
# fp16 with the LayerNorms in fp16 too: no Cast pair around each of the 23 (issue 15: does WebGPU's
# fp16 gain more without them, and does its LayerNorm hold in fp16?). On the CPU (onnxruntime-node,
# Fashion model, 1,000 images) it kept top-1 92.2 % with 100 % agreement, SQNR 69.4 dB (71.1 with Casts).
step quantize-fp16ln 90 "$rep/quantize-fp16ln.json" "$rep/quantize-fp16ln.err" $(cli) quantize "$src" -o "$models/fp16ln.onnx" --to fp16 --fp32-ops '' "${qsize[@]}" --json
# 8-bit weights: GPU kernels do not saturate 16-bit sums the way x86 CPUs without VNNI do
step quantize-int8 150 "$rep/quantize-int8.json" "$rep/quantize-int8.err" $(cli) quantize "$src" -o "$models/int8.onnx" --to int8 --no-reduce-range --calib "$calib" --calib-size "$calib_size" --crop-pct 1 "${qsize[@]}" --json || status=1
# 4-bit MatMul/Gemm weights (onnxruntime's MatMulNBits, unpacked in WebGPU's shader), int8 Convs:
# issue 15 asks whether it pays on WebGPU. Fashion, onnxruntime-node: top-1 92.00 % vs 92.20 %.
step quantize-q4 90 "$rep/quantize-q4.json" "$rep/quantize-q4.err" $(cli) quantize "$src" -o "$models/q4.onnx" --to int4-weights "${qsize[@]}" --json || status=1
[ -f "$models/fp32.onnx" ] || fatal "no fp32 model: nothing to validate"

# ---- validation: accuracy against fp32 and speed, per execution provider -----------------------------
for ep in $eps; do
  case $ep in webgpu) cap=90 ;; cuda) cap=45 ;; *) cap=120 ;; esac
  if [ "$ep" = webgpu ] && [ "${probe_rc:-0}" = 124 -o "${probe_rc:-0}" = 137 ]; then
    log "webgpu: the probe hung, so the full-size models are not tried on it"
    for m in fp32 fp16 fp16ln int8 q4 fp32mm; do printf 'validate-%s-webgpu\tskipped\t0\t0\n' "$m" >>"$STEPS"; done
    continue
  fi
  for m in fp32 fp16 fp16ln int8 q4 fp32mm; do
    [ -f "$models/$m.onnx" ] || { log "validate $m on $ep: no model"; continue; }
    ref=()
    [ $m = fp32 ] || ref=(--reference "$models/fp32.onnx")
    step "validate-$m-$ep" "$cap" "$rep/validate-$m-$ep.txt" - $(cli) validate "$models/$m.onnx" "${ref[@]}" --ep "$ep" --batch "$batches" \
      --data "$data" --limit "$limit" --crop-pct 1 --json "$rep/validate-$m-$ep.json" --html "$rep/validate-$m-$ep.html"
    rc=$?
    tail -n 25 "$rep/validate-$m-$ep.txt" >>"$LOG" 2>/dev/null
    # exit 2: this provider cannot run here (recorded); a timeout makes the next ones on it shorter
    case $rc in
      0|2|125) ;;
      124|137) cap=45; [ "$status" = 0 ] && status=$rc ;;
      *) [ "$status" = 0 ] && status=$rc ;;
    esac
  done
done

exit $status
