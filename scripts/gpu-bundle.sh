#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has no network and no Node.js into
# .gpu/ (ignored by git through .git/info/exclude; carry it as one path):
#   node.xz               this machine's node binary (v20), xz -9
#   node_modules.tar.xz   the production dependencies the CLI loads for convert/quantize/validate,
#                         pruned to linux-x64 binaries and run-time files (no tfjs, no typescript,
#                         no install-time helpers, no type declarations or source maps)
#   dist.tar.xz           the built CLI (dist/bin, dist/src), since dist/ is ignored by git
#   gl/*.deb              the Vulkan loader and GLVND libraries (Debian bookworm, amd64) for NVIDIA's
#                         Vulkan driver, unpacked there only where the machine has no libvulkan
#   MANIFEST.txt          commit, versions, sizes and checksums
# Then unpacks the archives into a temporary folder and runs the CLI from there (convert, quantize,
# validate on the CPU) to prove that nothing the CLI needs was left out.
# Usage: scripts/gpu-bundle.sh [--no-build]   (--no-build: bundle dist/ as it is, without npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=1
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    *) echo "usage: scripts/gpu-bundle.sh [--no-build]" >&2; exit 2 ;;
  esac
done
say() { printf '[gpu-bundle] %s\n' "$*" >&2; }

node_bin=$(command -v node) || { say "node is not on PATH"; exit 2; }
node_bin=$(readlink -f "$node_bin")
[ "$("$node_bin" -p 'process.versions.node.split(".")[0]')" = 20 ] || { say "$node_bin is not Node 20"; exit 2; }
[ -d node_modules/onnxruntime-node ] || { say "node_modules missing: run npm ci first"; exit 2; }
command -v xz >/dev/null || { say "xz is needed"; exit 2; }

if [ $build = 1 ]; then
  say "npm run build"
  npm run build >&2
fi
[ -f dist/bin/convnext.js ] || { say "dist/bin/convnext.js missing: run npm run build"; exit 2; }

# .gpu/ must never be committed, but must travel as an ignored ("carried") path
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"

rm -rf .gpu
mkdir -p .gpu/gl
stage=$(mktemp -d /tmp/gpu-bundle.XXXXXX)
trap 'rm -rf "$stage"' EXIT

# ---- node -----------------------------------------------------------------------------------------
# its symbol table and debug info are 12 MB that nothing reads at run time (addons link to the
# dynamic symbols, which strip keeps); the self-test below runs the stripped binary
say "node: $node_bin ($("$node_bin" --version)) → .gpu/node.xz"
cp "$node_bin" "$stage/node"
if command -v strip >/dev/null; then strip "$stage/node"; fi
xz -9 -T0 -c "$stage/node" >.gpu/node.xz

# ---- node_modules -------------------------------------------------------------------------------
# The packages: the closure of package.json's "dependencies" (not the optional tfjs ones), resolved as
# node resolves them, leaving out what only onnxruntime-node's install script uses (adm-zip,
# global-agent: it downloads CUDA libraries, which .npmrc skips) and type-only packages.
"$node_bin" --input-type=module - "$root" >"$stage/packages.txt" <<'EOF'
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
const root = process.argv[2];
const skip = new Set(['adm-zip', 'global-agent', 'undici-types', 'type-fest']);
const resolve = (from, name) => {
  for (let dir = from; ; dir = dirname(dir)) {
    const p = join(dir, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (dir === root || dirname(dir) === dir) throw new Error(`cannot resolve ${name} from ${from}`);
  }
};
const seen = new Set();
const visit = (dir) => {
  if (seen.has(dir)) return;
  seen.add(dir);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const name of Object.keys(pkg.dependencies ?? {})) {
    if (skip.has(name) || name.startsWith('@types/')) continue;
    visit(resolve(dir, name));
  }
  // sharp's native code comes as optional per-platform packages: take linux-x64 (glibc) only
  for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
    if (dir !== root && /^@img\/sharp-(libvips-)?linux-x64$/.test(name)) visit(resolve(dir, name));
  }
};
visit(root);
seen.delete(root);
for (const d of [...seen].sort()) console.log(relative(root, d));
EOF
say "node_modules: $(wc -l <"$stage/packages.txt") packages"
# onnx-proto needs only protobufjs/minimal of its own protobufjs v6 (its pbjs CLI alone is 20 MB):
# take exactly the files that loading it reads
"$node_bin" -e '
  require("onnx-proto");
  for (const f of Object.keys(require.cache)) { const i = f.indexOf("/node_modules/onnx-proto/"); if (i >= 0) console.log(f.slice(i + 1)); }
' | sort >"$stage/onnx-proto.txt"

# Run-time files of one package: JavaScript, JSON, native libraries, licences; no nested node_modules
# (those are packages of their own), no type declarations, source maps, sources or docs.
runtime_files() {
  local pkg=$1
  case $pkg in
    node_modules/onnx-proto|node_modules/onnx-proto/node_modules/*)
      # a package none of whose files load (its own long: protobufjs finds the top-level one) is left out
      if grep "^$pkg/" "$stage/onnx-proto.txt" | grep -qv "^$pkg/node_modules/"; then
        (cd "$pkg" && find . -maxdepth 1 -type f \( -name package.json -o -iname 'licen[cs]e*' \) | sed 's#^\./##')
        grep "^$pkg/" "$stage/onnx-proto.txt" | grep -v "^$pkg/node_modules/" | sed "s#^$pkg/##"
      fi ;;
    */onnxruntime-node)
      # dist/ (JavaScript) and this platform's binaries only: the Windows/macOS/arm64 ones are 250 MB
      (cd "$pkg" && find package.json LICENSE* dist bin/napi-v6/linux/x64 -type f 2>/dev/null | grep -Ev '\.(d\.ts|map|ts)$') ;;
    */protobufjs)
      # node loads index.js → src/; dist/ holds browser bundles, cli/ the pbjs tool (20 MB in v6)
      (cd "$pkg" && find . -path ./node_modules -prune -o -path ./dist -prune -o -path ./cli -prune -o -path ./scripts -prune -o -path ./bin -prune -o -type f -print) ;;
    */sharp)
      (cd "$pkg" && find . -path ./node_modules -prune -o -path ./src -prune -o -path ./install -prune -o -type f -print) ;;
    */@img/sharp-libvips-linux-x64)
      (cd "$pkg" && find . -path ./include -prune -o -type f -print) ;;
    *)
      (cd "$pkg" && find . -path ./node_modules -prune -o -type f -print) ;;
  esac | sed 's#^\./##' | grep -Ev '\.(d\.ts|d\.cts|d\.mts|map|ts|tsbuildinfo|md|markdown|gyp|cc|h|c)$' \
       | grep -Ev '(^|/)(test|tests|__tests__|example|examples|docs|\.github)/' \
       | grep -E '\.(js|cjs|mjs|json|node)$|\.so(\.[0-9]+)*$|(^|/)(LICEN[CS]E|licen[cs]e|COPYING|NOTICE)[^/]*$' || true
}
while read -r pkg; do
  runtime_files "$pkg" | while read -r f; do
    mkdir -p "$stage/nm/$pkg/$(dirname "$f")"
    cp -a "$pkg/$f" "$stage/nm/$pkg/$f"
  done
done <"$stage/packages.txt"
say "node_modules: $(du -sh "$stage/nm/node_modules" | cut -f1) of $(du -sh node_modules | cut -f1) → .gpu/node_modules.tar.xz"
tar -C "$stage/nm" --sort=name --owner=0 --group=0 --numeric-owner -cf - node_modules | xz -9 -T0 >.gpu/node_modules.tar.xz

# ---- dist ---------------------------------------------------------------------------------------
(cd dist && find bin src -type f -name '*.js') | sed 's#^#dist/#' | sort >"$stage/dist.txt"
tar --sort=name --owner=0 --group=0 --numeric-owner -cf - -T "$stage/dist.txt" | xz -9 -T0 >.gpu/dist.tar.xz
say "dist: $(wc -l <"$stage/dist.txt") files → .gpu/dist.tar.xz"

# ---- Vulkan loader and GLVND (for NVIDIA's Vulkan ICD, libGLX_nvidia.so.0) -------------------------
# libx11-6, libxext6 and their libraries: NVIDIA's libGLX_nvidia links them; gpu-check.sh unpacks a
# package only where its libraries are missing, so nothing the machine has is replaced.
mkdir -p /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
if apt-get $o update >"$stage/apt.log" 2>&1 &&
   (cd .gpu/gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 \
                  libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 >>"$stage/apt.log" 2>&1); then
  # plain names (the archive's have epochs as %3a): PACKAGE_VERSION.deb without the epoch
  for f in .gpu/gl/*.deb; do
    n=$(dpkg-deb -f "$f" Package)_$(dpkg-deb -f "$f" Version | sed 's/^[0-9]*://').deb
    [ "$f" = ".gpu/gl/$n" ] || mv "$f" ".gpu/gl/$n"
  done
  say "gl: $(ls .gpu/gl | tr '\n' ' ')"
else
  say "WARNING: apt-get could not download the Vulkan loader packages (see below); gpu-check.sh will run without them"
  tail -n 5 "$stage/apt.log" >&2
fi

# ---- prove it: the CLI from the unpacked archives alone, in a temporary folder ------------------------
t=$stage/selftest
mkdir -p "$t"
xz -dc .gpu/node.xz >"$t/node" && chmod +x "$t/node"
xz -dc .gpu/node_modules.tar.xz | tar -x -C "$t"
xz -dc .gpu/dist.tar.xz | tar -x -C "$t"
cp package.json "$t/"   # "type": "module" for dist/
F=$root/fixtures/fashion
(
  cd "$t"
  env -i PATH=/usr/bin:/bin HOME="$t" "$t/node" dist/bin/convnext.js convert "$F/convnext_fashion.pth" -o fp32.onnx --image-size 32 --crop-pct 1 --labels "$F/classes.txt" -q &&
  env -i PATH=/usr/bin:/bin HOME="$t" "$t/node" dist/bin/convnext.js quantize fp32.onnx -o fp16.onnx --to fp16 -q &&
  env -i PATH=/usr/bin:/bin HOME="$t" "$t/node" dist/bin/convnext.js quantize fp32.onnx -o int8.onnx --to int8 --no-reduce-range --calib "$F/calib" --calib-size 16 -q &&
  env -i PATH=/usr/bin:/bin HOME="$t" "$t/node" dist/bin/convnext.js validate int8.onnx --reference fp32.onnx --data "$F/val" --limit 16 --ep cpu --batch 1 --json v.json --html v.html -q &&
  env -i PATH=/usr/bin:/bin HOME="$t" "$t/node" dist/bin/convnext.js inspect int8.onnx --json >/dev/null
) || { say "self-test FAILED: the bundle is missing something the CLI needs"; exit 1; }
say "self-test passed: convert, quantize fp16/int8, validate (cpu) and inspect run from the bundle alone"

# ---- manifest and sizes -------------------------------------------------------------------------
{
  echo "made $(date -u +%FT%TZ) on $(uname -srm)"
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- src bin package.json tsconfig.json 2>/dev/null || echo ' (src/bin/package.json differ from it: dist built from the working tree)')"
  echo "node $("$node_bin" --version) ($node_bin)"
  echo "onnxruntime-node $("$node_bin" -p "require('./node_modules/onnxruntime-node/package.json').version")"
  echo "sharp $("$node_bin" -p "require('./node_modules/sharp/package.json').version")"
  (cd .gpu && find . -type f ! -name MANIFEST.txt | sort | xargs sha256sum)
} >.gpu/MANIFEST.txt

bytes() { du -sb "$@" | awk '{s += $1} END {print s}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
gpu=$(bytes .gpu)
travel=$(git ls-files -z -co --exclude-standard | xargs -0 du -sb 2>/dev/null | awk '{s += $1} END {print s}')
total=$((gpu + travel))
for f in .gpu/node.xz .gpu/node_modules.tar.xz .gpu/dist.tar.xz .gpu/gl; do say "$(mib "$(bytes "$f")")  $f"; done
say "bundle .gpu/: $(mib "$gpu"); with the tracked and untracked-unignored files ($(mib "$travel")): $(mib "$total") of 64 MiB"
[ "$total" -lt $((60 * 1048576)) ] || say "WARNING: over 60 MiB together: the device copy may refuse it"
