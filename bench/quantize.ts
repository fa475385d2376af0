// Quantization benchmarks (parts of npm run bench):
//   int8 on ConvNeXt-T      calibrated int8 (32 images at 224), int8-weights and int4-weights vs our fp32 ONNX:
//                           file sizes, onnxruntime-node CPU latency at batch 1 and 32 (medians)
//   calibration memory      peak RSS of a fresh process quantizing the Fashion model with 100 vs
//                           1,000 calibration images
//   int8 accuracy           our int8 (three calibration methods) vs PyTorch FX int8 PTQ (fx_ptq.py),
//                           top-1 and agreement with fp32 over the 10,000-image Fashion-MNIST test split
// Run as a script (`node dist/bench/quantize.js calibrate-once …`) it is the child process of the
// memory part.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../src/convert.js';
import { openDataset, type Dataset, type Preprocessing } from '../src/data/images.js';
import { readNpy, writeNpy } from '../src/formats/npy.js';
import { float32 } from '../src/graph/tensor.js';
import { quantize, type QuantizeOptions } from '../src/quantize/index.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { predict } from '../src/runtime/predict.js';
import { accuracy, agreement } from '../src/runtime/metrics.js';
import type { CalibrationMethod } from '../src/quantize/observer.js';
import { compareLatency, type LatencyResult } from './latency.js';
import { against, childReport, fashionDir, fmtMs, fmtS, heading, isMain, median, mib, outDir, pct, root, runChild, runJson, say, sizeOf, timed, writeResult } from './common.js';

const FASHION_PTH = join(fashionDir, 'convnext_fashion.pth');
const FASHION_SIZE = 32;

/** True when the Fashion fixture has what the parts below read. */
export function fashionReady(): boolean {
  return ['meta.json', 'convnext_fashion.pth', 'calib/labels.txt', 'val/labels.txt'].every((f) => existsSync(join(fashionDir, f)));
}

// ---------------------------------------------------------------------------------------------
// 1. int8 vs fp32 on full-size ConvNeXt-T
// ---------------------------------------------------------------------------------------------

/**
 * Calibration images for the 224×224 model: the Fashion calibration PNGs (resized straight to 224,
 * cropPct 1), or, without the fixture, 32 smooth synthetic images written as a .npy.
 */
export function calibrationFor224(count: number): { path: string; what: string } {
  const folder = join(fashionDir, 'calib');
  if (existsSync(join(folder, 'labels.txt'))) return { path: folder, what: `first ${count} Fashion-MNIST calib PNGs, resized to 224 (cropPct 1)` };
  const path = join(outDir, `synthetic_calib_224x${count}.npy`);
  if (!existsSync(path)) {
    const per = 3 * 224 * 224;
    const data = new Float32Array(count * per);
    for (let n = 0; n < count; n++) {
      for (let i = 0; i < per; i++) {
        const y = Math.floor((i % (224 * 224)) / 224);
        const x = i % 224;
        data[n * per + i] = Math.sin((x * (n + 3)) / 37 + n) * Math.cos((y * (n + 5)) / 53) * 1.5;
      }
    }
    writeFileSync(path, writeNpy(float32([count, 3, 224, 224], data)));
  }
  return { path, what: `${count} synthetic images (.npy; fixtures/fashion/ missing)` };
}

export interface Int8TinyOptions {
  readonly ckpt: string;
  /** Our fp32 ONNX of the same checkpoint (the convert part's output). */
  readonly fp32: string;
  readonly latencyRuns: number;
  readonly calibImages: number;
}

/** AVX-512 VNNI or AVX-VNNI (Linux: the flags in /proc/cpuinfo). */
function hasVnni(): boolean {
  return existsSync('/proc/cpuinfo') && /\b(avx512_vnni|avx_vnni)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

export async function benchInt8ConvNextTiny(o: Int8TinyOptions) {
  heading('int8 vs fp32: full-size ConvNeXt-T, onnxruntime-node CPU');
  const calib = calibrationFor224(o.calibImages);
  const int8 = join(outDir, 'convnext_tiny.int8.onnx');
  const int8w = join(outDir, 'convnext_tiny.int8-weights.onnx');
  const int4w = join(outDir, 'convnext_tiny.int4-weights.onnx');
  // the target a user of this machine would name: its int8 kernels differ with and without VNNI
  const vnni = hasVnni();
  const target = vnni ? 'cpu-vnni' : 'cpu-avx2';
  // issue 15 sets ≤ 0.5 with VNNI; without it int8 GEMMs barely beat fp32's, and the ratio is reported
  const latencyTarget = vnni ? 0.5 : undefined;
  const q = await timed(() => quantize(o.ckpt, int8, { to: 'int8', calib: calib.path, calibSize: o.calibImages, cropPct: 1, target }));
  const qw = await timed(() => quantize(o.ckpt, int8w, { to: 'int8-weights' }));
  const q4 = await timed(() => quantize(o.ckpt, int4w, { to: 'int4-weights' }));
  const sizes = { fp32: sizeOf(o.fp32), int8: sizeOf(int8), int8Weights: sizeOf(int8w), int4Weights: sizeOf(int4w) };
  say(`calibration: ${calib.what}; quantize int8 ${fmtS(q.ms)} (calibrate ${fmtS(q.value.timings.calibrate ?? NaN)}), int8-weights ${fmtS(qw.ms)}, int4-weights ${fmtS(q4.ms)}`);
  say(`${q.value.quantizedLayers} layers int8, ${q.value.keptFloat.length} kept float; --target ${target} (this CPU ${vnni ? 'has' : 'lacks'} VNNI)`);
  say(`file size   fp32 ${mib(sizes.fp32)}`);
  say(`            int8 ${mib(sizes.int8)}   int8/fp32 = ${against(sizes.int8 / sizes.fp32, '≤', 0.28)}`);
  say(`    int8-weights ${mib(sizes.int8Weights)}   int8-weights/fp32 = ${against(sizes.int8Weights / sizes.fp32, '≤', 0.28)}`);
  say(`    int4-weights ${mib(sizes.int4Weights)}   int4-weights/fp32 = ${(sizes.int4Weights / sizes.fp32).toFixed(3)} (reported; made for WebGPU)`);

  const latency: (LatencyResult & { runs: number; ratio: number; weightsRatio: number; int4Ratio: number })[] = [];
  for (const [batch, runs] of [[1, o.latencyRuns], [32, Math.max(3, Math.round(o.latencyRuns / 3))]] as const) {
    // int8-weights computes in float32 once onnxruntime has folded its Cast → Mul weights: about 1
    // int4-weights runs onnxruntime's MatMulNBits (CPU: float32 products on weights unpacked per block)
    const [r] = await compareLatency({ fp32: o.fp32, int8, int8Weights: int8w, int4Weights: int4w }, [batch], runs);
    const ratio = r.medianMs.int8 / r.medianMs.fp32;
    const weightsRatio = r.medianMs.int8Weights / r.medianMs.fp32;
    const int4Ratio = r.medianMs.int4Weights / r.medianMs.fp32;
    latency.push({ ...r, runs, ratio, weightsRatio, int4Ratio });
    say(`latency batch ${String(batch).padEnd(2)}  fp32 ${fmtMs(r.medianMs.fp32)}, int8 ${fmtMs(r.medianMs.int8)}   int8/fp32 = ${latencyTarget ? against(ratio, '≤', latencyTarget) : `${ratio.toFixed(3)} (no VNNI: reported, no target)`} (median of ${runs})`);
    say(`                int8-weights ${fmtMs(r.medianMs.int8Weights)}   int8-weights/fp32 = ${weightsRatio.toFixed(3)} (reported)`);
    say(`                int4-weights ${fmtMs(r.medianMs.int4Weights)}   int4-weights/fp32 = ${int4Ratio.toFixed(3)} (reported)`);
  }
  const json = writeResult('quantize_convnext_tiny', {
    calibration: calib.what,
    target,
    calibImages: q.value.calibrationImages,
    quantizeMs: q.ms,
    quantizeTimings: q.value.timings,
    quantizedLayers: q.value.quantizedLayers,
    keptFloat: q.value.keptFloat,
    int8WeightsQuantizeMs: qw.ms,
    int4WeightsQuantizeMs: q4.ms,
    sizes,
    sizeRatios: { int8: sizes.int8 / sizes.fp32, int8Weights: sizes.int8Weights / sizes.fp32, int4Weights: sizes.int4Weights / sizes.fp32 },
    latency,
    targets: { latencyRatio: latencyTarget ?? null, sizeRatio: 0.28 },
  });
  say(`→ ${json}`);
}

// ---------------------------------------------------------------------------------------------
// 2. Calibration memory
// ---------------------------------------------------------------------------------------------

/** bench/out/calib1000/: the 300 calibration PNGs, then the first 700 validation PNGs (copies). */
function calibration1000(): string {
  const dir = join(outDir, 'calib1000');
  const names = (sub: string) =>
    readFileSync(join(fashionDir, sub, 'labels.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((p) => p[0])
      .map(([file, label]) => ({ sub, file, label }));
  const chosen = [...names('calib'), ...names('val')].slice(0, 1000);
  if (chosen.length < 1000) throw new Error(`fixtures/fashion has only ${chosen.length} calib + val images`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const c of chosen) copyFileSync(join(fashionDir, c.sub, c.file), join(dir, c.file));
  // labels.txt keeps the order: calib first, so the 100-image run uses calib images only
  writeFileSync(join(dir, 'labels.txt'), chosen.map((c) => `${c.file} ${c.label}\n`).join(''));
  return dir;
}

export async function benchCalibrationMemory(runs: number) {
  heading('calibration memory: Fashion model, peak RSS of a fresh process, 100 vs 1,000 images');
  const calib = calibration1000();
  say(`images: ${calib} (the 300 calib PNGs + the first 700 val PNGs; 100 = the first 100 calib PNGs); ${runs} runs each, alternating`);
  const rss: Record<string, number[]> = { '100': [], '1000': [] };
  const hwm: Record<string, number[]> = { '100': [], '1000': [] };
  const wall: Record<string, number[]> = { '100': [], '1000': [] };
  for (let i = 0; i < runs; i++) {
    for (const n of ['100', '1000']) {
      const r = runChild<{ wallMs: number; images: number }>('quantize', ['calibrate-once', FASHION_PTH, calib, n, join(outDir, `fashion.calib${n}.int8.onnx`)]);
      if (r.images !== Number(n)) throw new Error(`asked for ${n} images, calibrated on ${r.images}`);
      rss[n].push(r.maxRssBytes);
      if (r.vmHwmBytes !== undefined) hwm[n].push(r.vmHwmBytes);
      wall[n].push(r.wallMs);
    }
  }
  const m100 = median(rss['100']);
  const m1000 = median(rss['1000']);
  const hwmNote = (n: string) => (hwm[n].length ? `, VmHWM ${mib(median(hwm[n]))}` : '');
  say(`peak RSS (maxRSS)  100 images ${mib(m100)}  (quantize ${fmtS(median(wall['100']))}${hwmNote('100')})`);
  say(`                 1,000 images ${mib(m1000)}  (quantize ${fmtS(median(wall['1000']))}${hwmNote('1000')})`);
  say(`1,000/100 = ${against(m1000 / m100, '≤', 1.2)}; difference ${mib(m1000 - m100)}`);
  const json = writeResult('calibration_memory', {
    images: 'calib1000 = 300 fixtures/fashion/calib PNGs + first 700 fixtures/fashion/val PNGs; 100 = its first 100 (calib only)',
    runs,
    maxRssBytes: rss,
    vmHwmBytes: hwm,
    wallMs: wall,
    median: { '100': m100, '1000': m1000 },
    ratio: m1000 / m100,
    target: 1.2,
  });
  say(`→ ${json}`);
}

/** Child: quantize the Fashion model to int8 with N calibration images; prints JSON with its own peak RSS. */
async function calibrateOnce(ckpt: string, calib: string, images: number, output: string) {
  const t0 = performance.now();
  const r = await quantize(ckpt, output, { to: 'int8', calib, calibSize: images, imageSize: FASHION_SIZE, cropPct: 1 });
  childReport({ wallMs: performance.now() - t0, images: r.calibrationImages, timings: r.timings });
}

// ---------------------------------------------------------------------------------------------
// 3. int8 accuracy over the 10,000-image test split, against PyTorch FX PTQ
// ---------------------------------------------------------------------------------------------

interface FxResult {
  fp32_top1?: number;
  fx_top1?: number;
  fx_agreement?: number;
  fx_drop?: number;
  engine?: string;
  [k: string]: unknown;
}

interface Row {
  readonly name: string;
  readonly top1: number;
  readonly drop: number;
  readonly agreement: number;
  readonly meanCosine?: number;
  readonly sqnrDb?: number;
  readonly quantizeMs?: number;
  readonly keptFloat?: readonly string[];
}

// preprocessing is ignored for a .npy data set, which is already preprocessed
const NPY: Preprocessing = { resize: FASHION_SIZE, crop: FASHION_SIZE, interpolation: 'bilinear', mean: [0, 0, 0], std: [1, 1, 1] };

async function logitsOf(model: string, data: Dataset) {
  const session = await createSession(model);
  try {
    const p = await predict([(input) => runFloat(session, input)], data, { batchSize: 250 });
    return { logits: p.logits[0], classes: p.classes, labels: p.labels };
  } finally {
    await session.release();
  }
}

export async function benchInt8Accuracy(o: { py?: string; skipFx: boolean }) {
  heading('int8 accuracy: Fashion-MNIST ConvNeXt, 10,000 test images, ours vs PyTorch FX PTQ');
  const testNpy = join(outDir, 'fashion_test.npy');
  const calibNpy = join(outDir, 'fashion_calib.npy');
  const labelsNpy = join(outDir, 'fashion_labels.npy');
  let fx: FxResult | undefined;
  if (o.py) {
    const args = [join(root, 'bench', 'fx_ptq.py'), fashionDir, outDir];
    if (o.skipFx) say('PyTorch FX PTQ skipped (BENCH_SKIP_FX); python writes the preprocessed test split only');
    else process.stderr.write('PyTorch FX int8 PTQ (bench/fx_ptq.py) …\n');
    fx = runJson<FxResult>(o.py, o.skipFx ? [...args, '--data-only'] : args, 'bench/fx_ptq.py');
    if (o.skipFx) fx = undefined;
  } else {
    say('no python3-torch: FX PTQ skipped');
  }
  if (![testNpy, calibNpy, labelsNpy].every((p) => existsSync(p))) {
    say(`skipped: ${testNpy} (made by bench/fx_ptq.py with python3-torch) is missing`);
    return;
  }
  const labels = Array.from(readNpy(labelsNpy).data as Uint8Array);
  const test = openDataset(testNpy, { preprocessing: NPY });
  say(`test split: ${test.size} images, preprocessed in torch (bilinear 28→32, align_corners=False) → ${testNpy}`);

  const fp32Path = join(outDir, 'fashion.onnx');
  await convert(FASHION_PTH, fp32Path, { imageSize: FASHION_SIZE });
  const fp32 = await logitsOf(fp32Path, test);
  const fp32Top1 = accuracy(fp32.logits, fp32.classes, labels).top1;
  const sanity: Record<string, number> = {};
  const fixtureLogits = join(fashionDir, 'test_logits_fp32.npy');
  if (existsSync(fixtureLogits)) {
    const ref = readNpy(fixtureLogits).data as Float32Array;
    let maxAbs = 0;
    for (let i = 0; i < ref.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ref[i] - fp32.logits[i]));
    sanity.maxAbsVsPytorchFp32 = maxAbs;
    sanity.top1AgreementVsPytorchFp32 = agreement(fp32.logits, ref, fp32.classes).top1Agreement;
    say(`our fp32 ONNX vs the fixture's PyTorch fp32 logits: max |Δ| ${maxAbs.toExponential(2)}, top-1 agreement ${pct(sanity.top1AgreementVsPytorchFp32)}`);
  }

  const int8 = (calib: string, method?: CalibrationMethod): QuantizeOptions => ({ to: 'int8', calib, method });
  const variants: { name: string; options: QuantizeOptions }[] = [
    { name: 'ours int8, default (percentile 99.99)', options: int8(calibNpy) },
    { name: 'ours int8, entropy', options: int8(calibNpy, 'entropy') },
    { name: 'ours int8, minmax', options: int8(calibNpy, 'minmax') },
    { name: 'ours int8, default, calib/ PNG folder', options: int8(join(fashionDir, 'calib')) },
    // the weight-only forms, no calibration: reported beside the calibrated ones
    { name: 'ours int8-weights', options: { to: 'int8-weights' } },
    { name: 'ours int4-weights (blocks of 32)', options: { to: 'int4-weights' } },
    { name: 'ours int4-weights, blocks of 128', options: { to: 'int4-weights', blockSize: 128 } },
    { name: 'ours int4-weights --float16', options: { to: 'int4-weights', float16: true } },
  ];
  const rows: Row[] = [];
  for (const [i, v] of variants.entries()) {
    const path = join(outDir, `fashion.q.${i}.onnx`);
    const q = await timed(() => quantize(FASHION_PTH, path, { ...v.options, imageSize: FASHION_SIZE, cropPct: 1 }));
    const p = await logitsOf(path, test);
    const a = agreement(p.logits, fp32.logits, p.classes);
    const top1 = accuracy(p.logits, p.classes, labels).top1;
    rows.push({ name: v.name, top1, drop: fp32Top1 - top1, agreement: a.top1Agreement, meanCosine: a.meanCosine, sqnrDb: a.sqnrDb, quantizeMs: q.ms, keptFloat: q.value.keptFloat });
  }
  if (fx?.fx_top1 !== undefined && fx.fx_agreement !== undefined) {
    // FX's agreement is with PyTorch's fp32 predictions, ours with our fp32 ONNX (the same to the logit, see above)
    rows.push({ name: `PyTorch FX int8 PTQ (fbgemm qconfig, ${fx.engine})`, top1: fx.fx_top1, drop: (fx.fp32_top1 ?? fp32Top1) - fx.fx_top1, agreement: fx.fx_agreement });
  }
  say(`calibration: the 300 fixtures/fashion/calib images, preprocessed in torch (.npy), or read from the PNG folder by Node where named`);
  say(`${'model'.padEnd(44)} ${'top-1'.padStart(8)} ${'drop'.padStart(7)} ${'agreement'.padStart(10)}`);
  say(`${'fp32 (our ONNX)'.padEnd(44)} ${pct(fp32Top1).padStart(8)}`);
  if (fx?.fp32_top1 !== undefined) say(`${'fp32 (PyTorch)'.padEnd(44)} ${pct(fx.fp32_top1).padStart(8)}`);
  for (const r of rows) say(`${r.name.padEnd(44)} ${pct(r.top1).padStart(8)} ${r.drop.toFixed(2).padStart(7)} ${pct(r.agreement).padStart(10)}`);
  const ours = rows[0];
  const fxRow = rows.find((r) => r.name.startsWith('PyTorch FX'));
  say(`default: top-1 drop ${against(ours.drop, '≤', 0.2, 2, ' points')}, agreement ${against(ours.agreement, '≥', 99.5, 2, ' %')}`);
  if (fxRow) {
    const beats = ours.top1 > fxRow.top1 && ours.agreement > fxRow.agreement;
    say(`default vs FX: top-1 ${(ours.top1 - fxRow.top1 >= 0 ? '+' : '') + (ours.top1 - fxRow.top1).toFixed(2)} points, agreement ${(ours.agreement - fxRow.agreement >= 0 ? '+' : '') + (ours.agreement - fxRow.agreement).toFixed(2)} points: ${beats ? 'beats FX' : 'does NOT beat FX'}`);
  }
  const json = writeResult('int8_accuracy', {
    images: test.size,
    fp32Top1,
    sanity,
    rows,
    fx: fx ?? null,
    targets: { maxDrop: 0.2, minAgreement: 99.5, beatFx: true },
  });
  say(`→ ${json}`);
}

// child mode: node dist/bench/quantize.js calibrate-once CKPT CALIB N OUT
if (isMain(import.meta.url)) {
  const [verb, ...args] = process.argv.slice(2);
  if (verb !== 'calibrate-once' || args.length !== 4) {
    process.stderr.write('usage: node dist/bench/quantize.js calibrate-once CKPT CALIB_DIR N OUT.onnx\n');
    process.exit(2);
  }
  await calibrateOnce(args[0], args[1], Number(args[2]), args[3]);
}

