// npm run bench: ratios against baselines measured in the same run. Medians of repeated runs.
// Every part prints the machine's load average as it starts and writes JSON into bench/out/.
//   convert        full-size ConvNeXt-T (.pth made here with torchvision, random weights) → ONNX,
//                  vs a plain read+write copy of the checkpoint (the I/O floor) and torch.onnx.export;
//                  onnxruntime-node CPU latency of our graph vs torch.onnx.export's    → bench.json
//   int8           ConvNeXt-T calibrated int8 and int8-weights vs our fp32: file sizes, onnxruntime-node
//                  CPU latency at batch 1 and 32 (bench/quantize.ts)              → quantize_convnext_tiny.json
//   memory         peak RSS of quantizing the Fashion model with 100 vs 1,000 calibration images, each
//                  in a fresh process (bench/quantize.ts)                          → calibration_memory.json
//   accuracy       int8 top-1 / agreement over the 10,000 Fashion-MNIST test images: ours (default,
//                  entropy, minmax; int8-weights, int4-weights) vs PyTorch FX PTQ (bench/fx_ptq.py) → int8_accuracy.json
//   tfjs           TF.js wasm, ConvNeXt-T: folder size per weight format, load time, batch-1 latency
//                  vs onnxruntime-node (bench/tfjs.ts)                              → tfjs_convnext_tiny.json
//   tfjs-accuracy  TF.js wasm, Fashion model: top-1 on the 1,000 val images per weight format
//                                                                                   → tfjs_fashion_accuracy.json
//   tflite         LiteRT.js, ConvNeXt-T: .tflite size per weight format, batch-1 latency vs
//                  onnxruntime-node (1 thread) and TF.js wasm (bench/tflite.ts)      → tflite_convnext_tiny.json
//   profile        onnxruntime's profiler: kernel time by op type, fp32 (ours and torch.onnx.export's) and
//                  int8 ConvNeXt-T, batch 1 and 32
//                  (bench/profile.ts; `npm run bench -- profile`)                     → profile_convnext_tiny.json
// memory, accuracy and tfjs-accuracy need fixtures/fashion/ (made by fixtures/make_fashion.py); they
// are skipped, saying so, while it is missing. python3-torch makes the ConvNeXt-T checkpoint and runs FX.
//
// Environment:
//   BENCH_ONLY=a,b            run only these parts (names above; or as arguments: npm run bench -- a b)
//   BENCH_PROFILE_RUNS=10     profiled runs at batch 1 (profile); batch 32 gets a fifth (≥ 2)
//   BENCH_PROFILE_THREADS=1   onnxruntime intra-op threads for the profile (default: its own choice)
//   BENCH_SKIP_<PART>=1       skip a part: BENCH_SKIP_CONVERT, _INT8, _MEMORY, _ACCURACY, _TFJS, _TFJS_ACCURACY
//   BENCH_SKIP_FX=1           accuracy without PyTorch FX PTQ (python still writes the test split .npy)
//   BENCH_RUNS=5              conversions timed (convert)
//   BENCH_LATENCY_RUNS=15     onnxruntime runs at batch 1 (convert, int8); batch 32 gets a third (≥ 3)
//   BENCH_CALIB_IMAGES=32     calibration images for ConvNeXt-T int8
//   BENCH_MEM_RUNS=3          child processes per image count (memory)
//   BENCH_TFJS_RUNS=10        TF.js batch-1 runs (tfjs); BENCH_TFJS_LOAD_RUNS=3 loads per format
//   BENCH_TFLITE_RUNS=5       LiteRT.js batch-1 runs per model (tflite; calibration: BENCH_CALIB_IMAGES)
//   BENCH_FASHION_DIR=DIR     another folder laid out like fixtures/fashion/
// A quick end-to-end check: BENCH_RUNS=1 BENCH_LATENCY_RUNS=3 BENCH_MEM_RUNS=1 BENCH_TFJS_RUNS=2 BENCH_TFJS_LOAD_RUNS=1 npm run bench
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envFlag, envNumber, fmtS, loadLine, median, mib, outDir as out, python, root, runChild, say } from './common.js';

const PARTS = ['convert', 'int8', 'memory', 'accuracy', 'tfjs', 'tfjs-accuracy', 'tflite', 'profile'] as const;
type Part = (typeof PARTS)[number];
// parts by name: BENCH_ONLY=a,b or as arguments (npm run bench -- profile)
const named = [...(process.env.BENCH_ONLY?.split(',') ?? []), ...process.argv.slice(2)].map((s) => s.trim()).filter(Boolean);
const only = named.length ? named : undefined;
for (const p of only ?? []) if (!PARTS.includes(p as Part)) throw new Error(`BENCH_ONLY: unknown part '${p}' (${PARTS.join(', ')})`);
const wanted = (p: Part) => (!only || only.includes(p)) && !envFlag(`BENCH_SKIP_${p.toUpperCase().replace('-', '_')}`);

const RUNS = envNumber('BENCH_RUNS', 5);
const LAT_RUNS = envNumber('BENCH_LATENCY_RUNS', 15);

mkdirSync(out, { recursive: true });
say(`bench: ${loadLine()}; parts: ${PARTS.filter(wanted).join(', ') || 'none'}`);
const py = python();
const ckpt = join(out, 'convnext_tiny.pth');
const ours = join(out, 'convnext_tiny.onnx');

// ---- convert ------------------------------------------------------------------------------------
if (wanted('convert')) {
  let torchExportMs: number | undefined;
  if (py) {
    process.stderr.write('making a full-size ConvNeXt-T with torchvision and timing torch.onnx.export …\n');
    const info = JSON.parse(execFileSync(py, [join(root, 'bench', 'make_convnext_tiny.py'), out], { encoding: 'utf8' }).trim().split('\n').pop()!);
    torchExportMs = info.torch_export_s * 1000;
  } else if (!existsSync(ckpt)) {
    process.stderr.write('bench: needs python3-torch and python3-torchvision (apt-get install) to make the ConvNeXt-T checkpoint\n');
    process.exit(2);
  }
  say(`\n== convert: ConvNeXt-T checkpoint → ONNX\n   (${loadLine()})`);

  const ckptBytes = statSync(ckpt).size;
  const copyMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    writeFileSync(join(out, 'copy.pth'), readFileSync(ckpt));
    copyMs.push(performance.now() - t0);
  }
  rmSync(join(out, 'copy.pth'));

  const convertMs: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // through runChild: a child forked straight from this process would count our RSS as its peak
    const m = runChild<{ wallMs: number }>('convert-once', [ckpt, ours]);
    convertMs.push(m.wallMs);
    rss.push(m.maxRssBytes);
  }

  // end to end as a user runs it, start-up included: what lazy loading of the native runtimes buys
  const wallOf = (args: string[]) => {
    const t0 = performance.now();
    execFileSync(process.execPath, args, { stdio: 'ignore' });
    return performance.now() - t0;
  };
  const bin = join(root, 'dist', 'bin', 'convnext.js');
  const cliMs: number[] = [];
  const versionMs: number[] = [];
  const nodeMs: number[] = [];
  // the floor: a cat copy in its own process, overwriting its last copy as convert overwrites
  const catMs: number[] = [];
  const catCopy = join(out, 'cat-copy.pth');
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    execFileSync('sh', ['-c', 'cat "$0" > "$1"', ckpt, catCopy], { stdio: 'ignore' });
    catMs.push(performance.now() - t0);
    cliMs.push(wallOf([bin, 'convert', ckpt, '-o', ours, '-q']));
    versionMs.push(wallOf([bin, '--version']));
    nodeMs.push(wallOf(['-e', '0']));
  }
  rmSync(catCopy, { force: true });

  const conv = median(convertMs);
  const lines = [
    `ConvNeXt-T checkpoint: ${mib(ckptBytes)}, ${RUNS} runs each, medians`,
    `convert (in-process wall)     ${fmtS(conv)}`,
    `plain copy (read+write)       ${fmtS(median(copyMs))}   convert/copy = ${(conv / median(copyMs)).toFixed(2)}×`,
    `cat copy (its own process)    ${fmtS(median(catMs))}`,
    `convnext convert (CLI, wall)  ${fmtS(median(cliMs))}   start-up included; CLI/cat = ${(median(cliMs) / median(catMs)).toFixed(2)}× (targets ≤ 0.40 s, ≤ 4×)`,
    `convnext --version            ${fmtS(median(versionMs))}   bare node -e 0 ${fmtS(median(nodeMs))} (target ≤ 0.15 s)`,
    torchExportMs !== undefined
      ? `torch.onnx.export (opset 17)  ${fmtS(torchExportMs)}   speed-up = ${(torchExportMs / conv).toFixed(1)}× (target ≥ 10×)`
      : 'torch.onnx.export             skipped (no python3-torch)',
    `peak RSS of convert           ${mib(median(rss))}   = ${(median(rss) / ckptBytes).toFixed(2)}× checkpoint (target ≤ 1.5×)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');

  // onnxruntime-node CPU latency: our optimised graph vs torch.onnx.export's graph of the same weights
  const theirs = join(out, 'convnext_tiny.torch.onnx');
  const latency: unknown[] = [];
  let nodeCounts: Record<string, number> | undefined;
  if (existsSync(theirs)) {
    const { inspect } = await import('../src/inspect.js');
    const count = async (p: string) => ((await inspect(p)) as { nodes: number }).nodes;
    nodeCounts = { ours: await count(ours), torch: await count(theirs) };
    process.stdout.write(`\nnodes: ours ${nodeCounts.ours}, torch.onnx.export ${nodeCounts.torch}\n`);
    const { compareLatency } = await import('./latency.js');
    for (const [batch, runs] of [[1, LAT_RUNS], [32, Math.max(3, Math.round(LAT_RUNS / 3))]] as const) {
      const [r] = await compareLatency({ ours, torch: theirs }, [batch], runs);
      latency.push(r);
      const ratio = r.medianMs.ours / r.medianMs.torch;
      process.stdout.write(
        `onnxruntime-node CPU, batch ${String(batch).padEnd(2)}  ours ${r.medianMs.ours.toFixed(1)} ms, torch.onnx.export ${r.medianMs.torch.toFixed(1)} ms` +
          `  ratio ${ratio.toFixed(3)} (target ≤ 0.85; median of ${runs})\n`,
      );
    }
  }
  writeFileSync(join(out, 'bench.json'), JSON.stringify({ ckptBytes, copyMs, catMs, convertMs, cliMs, versionMs, nodeMs, rss, torchExportMs, nodeCounts, latency }, null, 2));
}

// ---- the ConvNeXt-T parts need the checkpoint and our fp32 ONNX, whether or not convert ran ------------
if (wanted('int8') || wanted('tfjs') || wanted('tflite') || wanted('profile')) {
  if (!existsSync(ckpt)) {
    if (!py) throw new Error('bench: ConvNeXt-T checkpoint missing and no python3-torch to make it');
    execFileSync(py, [join(root, 'bench', 'make_convnext_tiny.py'), out], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (!existsSync(ours) || statSync(ours).mtimeMs < statSync(ckpt).mtimeMs) {
    const { convert } = await import('../src/convert.js');
    await convert(ckpt, ours);
  }
}

const { benchInt8ConvNextTiny, benchCalibrationMemory, benchInt8Accuracy, fashionReady } = await import('./quantize.js');
const { benchTfjsConvNextTiny, benchTfjsFashionAccuracy } = await import('./tfjs.js');
const needsFashion = (part: Part) => {
  if (fashionReady()) return true;
  say(`\n== ${part}: skipped, fixtures/fashion/ is not there yet (fixtures/make_fashion.py makes it)`);
  return false;
};

if (wanted('int8')) await benchInt8ConvNextTiny({ ckpt, fp32: ours, latencyRuns: LAT_RUNS, calibImages: envNumber('BENCH_CALIB_IMAGES', 32) });
if (wanted('memory') && needsFashion('memory')) await benchCalibrationMemory(envNumber('BENCH_MEM_RUNS', 3));
if (wanted('accuracy') && needsFashion('accuracy')) await benchInt8Accuracy({ py, skipFx: envFlag('BENCH_SKIP_FX') });
if (wanted('tfjs')) await benchTfjsConvNextTiny({ ckpt, fp32: ours, runs: envNumber('BENCH_TFJS_RUNS', 10), loadRuns: envNumber('BENCH_TFJS_LOAD_RUNS', 3) });
if (wanted('tfjs-accuracy') && needsFashion('tfjs-accuracy')) await benchTfjsFashionAccuracy();
if (wanted('tflite')) await (await import('./tflite.js')).benchTfliteConvNextTiny({ ckpt, fp32: ours, runs: envNumber('BENCH_TFLITE_RUNS', 5), calibImages: envNumber('BENCH_CALIB_IMAGES', 32) });
if (wanted('profile')) {
  // the int8 model the int8 part writes, made here with its defaults when that part did not run
  const int8 = join(out, 'convnext_tiny.int8.onnx');
  if (!existsSync(int8)) {
    const { quantize } = await import('../src/quantize/index.js');
    const { calibrationFor224 } = await import('./quantize.js');
    const calib = calibrationFor224(envNumber('BENCH_CALIB_IMAGES', 32));
    await quantize(ckpt, int8, { to: 'int8', calib: calib.path, calibSize: envNumber('BENCH_CALIB_IMAGES', 32), cropPct: 1 });
  }
  const { benchProfile } = await import('./profile.js');
  // torch.onnx.export's graph beside ours, when the convert part (or make_convnext_tiny.py) wrote it
  const torch = join(out, 'convnext_tiny.torch.onnx');
  await benchProfile({ fp32: ours, ...(existsSync(torch) ? { 'torch.onnx.export fp32': torch } : {}), int8 }, envNumber('BENCH_PROFILE_RUNS', 10));
}
say(`\nbench done: ${loadLine()}`);
