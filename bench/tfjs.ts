// TF.js benchmarks (part of npm run bench), on the wasm backend:
//   ConvNeXt-T   model folder size per weight format (against float32), load time (against an
//                onnxruntime-node session of our fp32 ONNX), batch-1 latency of the float32 and int8
//                folders (against onnxruntime-node CPU fp32, timed in turns in the same process)
//   Fashion      top-1 on the 1,000 val PNGs per weight format (against float32), through validate()
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { convert } from '../src/convert.js';
import { WEIGHT_FORMATS, type WeightFormat } from '../src/formats/tfjs/index.js';
import { createSession } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel, tfjs, type LoadedTfjsModel } from '../src/runtime/tfjs.js';
import { validate } from '../src/validate/index.js';
import { openDataset, type Dataset, type Preprocessing } from '../src/data/images.js';
import { readNpy } from '../src/formats/npy.js';
import { concatFloat32 } from '../src/graph/tensor.js';
import { accuracy, agreement } from '../src/runtime/metrics.js';
import { against, fashionDir, fmtMs, heading, median, mib, outDir, pct, say, sizeOf, timed, writeResult } from './common.js';

const tfjsDir = join(outDir, 'tfjs');

async function writeFolder(input: string, name: string, weights: WeightFormat, imageSize?: number): Promise<string> {
  mkdirSync(tfjsDir, { recursive: true });
  const dir = join(tfjsDir, `${name}.${weights}`);
  rmSync(dir, { recursive: true, force: true });
  await convert(input, dir, { format: 'tfjs', imageSize, tfjs: { weights } });
  return dir;
}

/** The wasm backend, initialised, and what it can use here (SIMD, threads). */
async function wasmBackend() {
  const { tf } = await tfjs();
  await tf.setBackend('wasm');
  await tf.ready();
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return {
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    multithread: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
    threads: wasm.getThreadsCount(),
    version: tf.version_core,
  };
}

export interface TfjsTinyOptions {
  readonly ckpt: string;
  /** Our fp32 ONNX of the same checkpoint: the onnxruntime-node baseline. */
  readonly fp32: string;
  readonly runs: number;
  readonly loadRuns: number;
}

export async function benchTfjsConvNextTiny(o: TfjsTinyOptions) {
  heading('TF.js wasm: full-size ConvNeXt-T');
  const backend = await wasmBackend();
  say(`tfjs-core ${backend.version}, wasm backend: SIMD ${backend.simd}, multithread ${backend.multithread}, ${backend.threads} thread(s)`);
  const folders = {} as Record<WeightFormat, string>;
  const sizes = {} as Record<WeightFormat, number>;
  for (const w of WEIGHT_FORMATS) {
    folders[w] = await writeFolder(o.ckpt, 'convnext_tiny', w);
    sizes[w] = sizeOf(folders[w]);
  }
  say(`model folder size (onnx fp32 ${mib(sizeOf(o.fp32))})`);
  for (const w of WEIGHT_FORMATS) say(`  ${w.padEnd(8)} ${mib(sizes[w]).padStart(10)}   /float32 = ${(sizes[w] / sizes.float32).toFixed(3)}`);

  // load time: every format (they differ in bytes read and in dequantization), and an onnxruntime session
  (await loadTfjsModel(folders.float32, 'wasm')).dispose(); // untimed: the first load grows the wasm heap
  const loadMs: Record<string, number[]> = { 'onnxruntime fp32': [] };
  for (const w of WEIGHT_FORMATS) loadMs[w] = [];
  for (let i = 0; i < o.loadRuns; i++) {
    const s = await timed(() => createSession(o.fp32, { spinning: false }));
    loadMs['onnxruntime fp32'].push(s.ms);
    await s.value.release();
    for (const w of WEIGHT_FORMATS) {
      const m = await timed(() => loadTfjsModel(folders[w], 'wasm'));
      loadMs[w].push(m.ms);
      m.value.dispose();
    }
  }
  const ortLoad = median(loadMs['onnxruntime fp32']);
  say(`load time (median of ${o.loadRuns}; TF.js: read model.json + shards, decode, upload to wasm)`);
  say(`  onnxruntime session (fp32 .onnx) ${fmtMs(ortLoad)}`);
  for (const w of WEIGHT_FORMATS) say(`  TF.js ${w.padEnd(8)} ${fmtMs(median(loadMs[w])).padStart(12)}   /onnxruntime = ${(median(loadMs[w]) / ortLoad).toFixed(2)}`);

  // batch-1 latency, in turns: onnxruntime fp32, TF.js float32, TF.js int8 (per-channel scale in the graph)
  const session = await createSession(o.fp32, { spinning: false });
  const models: Record<string, LoadedTfjsModel> = { 'tfjs float32': await loadTfjsModel(folders.float32, 'wasm'), 'tfjs int8': await loadTfjsModel(folders.int8, 'wasm') };
  const shape = [1, 3, 224, 224];
  const data = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.001));
  const runners: Record<string, () => Promise<unknown>> = {
    'onnxruntime fp32': () => session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) }),
    ...Object.fromEntries(Object.entries(models).map(([k, m]) => [k, () => m.run({ data, shape })])),
  };
  for (const run of Object.values(runners)) for (let i = 0; i < 2; i++) await run(); // warm-up
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(runners).map((k) => [k, [] as number[]]));
  for (let i = 0; i < o.runs; i++) {
    for (const [k, run] of Object.entries(runners)) times[k].push((await timed(run)).ms);
  }
  await session.release();
  for (const m of Object.values(models)) m.dispose();
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  say(`batch-1 latency (median of ${o.runs}, in turns)`);
  for (const [k, v] of Object.entries(med)) say(`  ${k.padEnd(17)} ${fmtMs(v).padStart(10)}   /onnxruntime = ${(v / med['onnxruntime fp32']).toFixed(2)}`);
  const json = writeResult('tfjs_convnext_tiny', { backend, sizes, onnxFp32Bytes: sizeOf(o.fp32), loadMs, latencyMs: times, latencyMedianMs: med, runs: o.runs, loadRuns: o.loadRuns });
  say(`→ ${json}`);
}

interface FormatRow {
  weights: WeightFormat;
  bytes: number;
  /** On the val PNGs through validate() (Node's preprocessing). */
  top1: number;
  drop: number;
  agreement: number;
  sqnrDb: number;
  /** On the same 1,000 images preprocessed by torch (the first 1,000 of fashion_test.npy), when present. */
  torchTop1?: number;
  torchDrop?: number;
  torchAgreement?: number;
}

/** Top-1 and logits of a TF.js folder on the first `n` images of the torch-preprocessed test split. */
async function onTorchInputs(folder: string, data: Dataset, labels: readonly number[]) {
  const m = await loadTfjsModel(folder, 'wasm');
  const parts: Float32Array[] = [];
  let classes = 0;
  try {
    for await (const b of data.batches(100)) {
      const y = await m.run({ data: b.input.data as Float32Array, shape: b.input.shape });
      classes = y.dims[y.dims.length - 1];
      parts.push(y.data.slice());
    }
  } finally {
    m.dispose();
  }
  const logits = concatFloat32(parts);
  return { logits, classes, top1: accuracy(logits, classes, labels.slice(0, data.size)).top1 };
}

export async function benchTfjsFashionAccuracy() {
  heading('TF.js wasm: Fashion model, top-1 on the 1,000 val images per weight format');
  const ckpt = join(fashionDir, 'convnext_fashion.pth');
  const val = join(fashionDir, 'val');
  if (!existsSync(join(val, 'labels.txt'))) {
    say(`skipped: ${val} is missing`);
    return;
  }
  const folders = {} as Record<WeightFormat, string>;
  for (const w of WEIGHT_FORMATS) folders[w] = await writeFolder(ckpt, 'fashion', w, 32);
  // float32 TF.js against our fp32 ONNX of the checkpoint (converted in memory, onnxruntime CPU): the cross-check
  const base = await validate(folders.float32, { reference: ckpt, imageSize: 32, ep: 'cpu', data: val, tfjsBackend: 'wasm', batches: [], cropPct: 1 });
  const fp32Top1 = base.accuracy!.model.top1;
  const onnxTop1 = base.accuracy!.reference!.top1;
  say(`val PNGs through validate(): ${base.data?.images} images, Node preprocessing (src/data/images.ts): 28→32 bilinear, cropPct 1, ImageNet mean/std`);
  say(`  TF.js float32 ${pct(fp32Top1)}, onnxruntime fp32 ${pct(onnxTop1)}, agreement ${pct(base.agreement!.top1Agreement)}, max |Δlogit| ${base.agreement!.maxAbsError.toExponential(2)}`);
  const meta = JSON.parse(readFileSync(join(fashionDir, 'meta.json'), 'utf8')) as { val_accuracy?: number };
  if (meta.val_accuracy !== undefined) say(`  (meta.json: PyTorch ${pct(100 * meta.val_accuracy)} on the same images with torch's resize)`);

  // the same 1,000 images (val/ = test images 0–999) as the model was trained to see them, when the accuracy part wrote them
  const testNpy = join(outDir, 'fashion_test.npy');
  const labelsNpy = join(outDir, 'fashion_labels.npy');
  let torchInputs: { data: Dataset; labels: number[] } | undefined;
  let torchFp32: Awaited<ReturnType<typeof onTorchInputs>> | undefined;
  if (existsSync(testNpy) && existsSync(labelsNpy)) {
    const npyPre: Preprocessing = { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0, 0, 0], std: [1, 1, 1] }; // unused for .npy
    torchInputs = { data: openDataset(testNpy, { preprocessing: npyPre, limit: 1000 }), labels: Array.from(readNpy(labelsNpy).data as Uint8Array) };
    torchFp32 = await onTorchInputs(folders.float32, torchInputs.data, torchInputs.labels);
    say(`torch-preprocessed (first 1,000 of ${testNpy}): TF.js float32 ${pct(torchFp32.top1)}`);
  } else {
    say(`(${testNpy} missing: run the accuracy part once for the torch-preprocessed column)`);
  }

  const targets: Partial<Record<WeightFormat, number>> = { float16: 0.05, int8: 0.3 };
  const rows: FormatRow[] = [];
  for (const w of WEIGHT_FORMATS.filter((f) => f !== 'float32')) {
    const r = await validate(folders[w], { reference: folders.float32, data: val, tfjsBackend: 'wasm', batches: [], cropPct: 1 });
    const top1 = r.accuracy!.model.top1;
    const row: FormatRow = { weights: w, bytes: sizeOf(folders[w]), top1, drop: fp32Top1 - top1, agreement: r.agreement!.top1Agreement, sqnrDb: r.agreement!.sqnrDb };
    if (torchInputs && torchFp32) {
      const t = await onTorchInputs(folders[w], torchInputs.data, torchInputs.labels);
      Object.assign(row, { torchTop1: t.top1, torchDrop: torchFp32.top1 - t.top1, torchAgreement: agreement(t.logits, torchFp32.logits, t.classes).top1Agreement });
    }
    rows.push(row);
  }
  const head = `${'weights'.padEnd(8)} ${'folder'.padStart(9)} | PNGs: ${'top-1'.padStart(7)} ${'drop'.padStart(6)} ${'agree'.padStart(8)} ${'SQNR'.padStart(8)}`;
  say(head + (torchFp32 ? ` | torch: ${'top-1'.padStart(7)} ${'drop'.padStart(6)} ${'agree'.padStart(8)}` : ''));
  say(`${'float32'.padEnd(8)} ${mib(sizeOf(folders.float32)).padStart(9)} |       ${pct(fp32Top1).padStart(7)} ${''.padStart(24)}` + (torchFp32 ? ` |        ${pct(torchFp32.top1).padStart(7)}` : ''));
  for (const r of rows) {
    const t = targets[r.weights];
    const torch = r.torchTop1 !== undefined ? ` |        ${pct(r.torchTop1).padStart(7)} ${r.torchDrop!.toFixed(2).padStart(6)} ${pct(r.torchAgreement!).padStart(8)}` : '';
    const worst = Math.max(r.drop, r.torchDrop ?? -Infinity);
    say(
      `${r.weights.padEnd(8)} ${mib(r.bytes).padStart(9)} |       ${pct(r.top1).padStart(7)} ${r.drop.toFixed(2).padStart(6)} ${pct(r.agreement).padStart(8)} ${`${r.sqnrDb.toFixed(1)} dB`.padStart(8)}${torch}` +
        (t !== undefined ? `   worse drop ${against(worst, '≤', t, 2, ' points')}` : ''),
    );
  }
  const json = writeResult('tfjs_fashion_accuracy', {
    images: base.data?.images,
    fp32Top1,
    onnxFp32Top1: onnxTop1,
    torchPreprocessedFp32Top1: torchFp32?.top1 ?? null,
    crossCheck: base.agreement,
    rows,
    targets,
  });
  say(`→ ${json}`);
}
