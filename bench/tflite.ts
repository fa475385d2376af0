// LiteRT benchmark (part of npm run bench): full-size ConvNeXt-T as .tflite in LiteRT.js (wasm,
// XNNPACK, one thread): file size per weight format and of full-integer int8 against float32, and
// batch-1 latency of each against onnxruntime-node fp32 on one thread and TF.js wasm float32, timed
// in turns in one process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../src/convert.js';
import { TFLITE_WEIGHTS } from '../src/formats/tflite/index.js';
import { tensor } from '../src/graph/tensor.js';
import { loadTflite } from '../src/runtime/litert.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel } from '../src/runtime/tfjs.js';
import { quantize } from '../src/quantize/index.js';
import { calibrationFor224 } from './quantize.js';
import { fmtMs, heading, median, mib, outDir, say, sizeOf, timed, writeResult } from './common.js';

export interface TfliteTinyOptions {
  readonly ckpt: string;
  /** Our fp32 ONNX of the same checkpoint: the onnxruntime-node baseline. */
  readonly fp32: string;
  readonly runs: number;
  /** Calibration images for the full-integer model. */
  readonly calibImages: number;
}

export async function benchTfliteConvNextTiny(o: TfliteTinyOptions) {
  heading('LiteRT.js (wasm, 1 thread): full-size ConvNeXt-T .tflite');
  const dir = join(outDir, 'tflite');
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {};
  const sizes: Record<string, number> = {};
  for (const w of TFLITE_WEIGHTS) {
    files[w] = join(dir, `convnext_tiny.${w}.tflite`);
    await convert(o.ckpt, files[w], { format: 'tflite', tflite: { weights: w } });
    sizes[w] = sizeOf(files[w]);
  }
  const calib = calibrationFor224(o.calibImages);
  files['full int8'] = join(dir, 'convnext_tiny.full-int8.tflite');
  await quantize(o.ckpt, files['full int8'], { to: 'int8', format: 'tflite', calib: calib.path, calibSize: o.calibImages, cropPct: 1 });
  sizes['full int8'] = sizeOf(files['full int8']);
  const kinds = Object.keys(files);
  say(`file size (onnx fp32 ${mib(sizeOf(o.fp32))}; full int8 calibrated on ${calib.what})`);
  for (const w of kinds) say(`  ${w.padEnd(11)} ${mib(sizes[w]).padStart(10)}   ${String(sizes[w]).padStart(11)} B   /float32 = ${(sizes[w] / sizes.float32).toFixed(3)}`);

  const input = tensor('float32', [1, 3, 224, 224], new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.001)));
  const { readFileSync } = await import('node:fs');
  const session = await createSession(o.fp32, { intraOpThreads: 1, spinning: false });
  const tfjsFolder = join(dir, 'convnext_tiny.tfjs');
  await convert(o.ckpt, tfjsFolder, { format: 'tfjs', tfjs: { force: true } });
  const tfjsModel = await loadTfjsModel(tfjsFolder, 'wasm');
  const lite = Object.fromEntries(await Promise.all(kinds.map(async (w) => [w, await loadTflite(readFileSync(files[w]))] as const)));
  const runners: Record<string, () => Promise<unknown>> = {
    'onnxruntime fp32 (1 thread)': () => runFloat(session, input),
    'TF.js wasm float32': () => tfjsModel.run({ data: input.data as Float32Array, shape: input.shape }),
    ...Object.fromEntries(kinds.map((w) => [`LiteRT ${w}`, () => lite[w].run(input)])),
  };
  for (const run of Object.values(runners)) for (let i = 0; i < 2; i++) await run(); // warm-up
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(runners).map((k) => [k, [] as number[]]));
  for (let i = 0; i < o.runs; i++) for (const [k, run] of Object.entries(runners)) times[k].push((await timed(run)).ms);
  await session.release();
  tfjsModel.dispose();
  for (const m of Object.values(lite)) m.delete();
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const base = med['onnxruntime fp32 (1 thread)'];
  say(`batch-1 latency (median of ${o.runs}, in turns)`);
  for (const [k, v] of Object.entries(med)) say(`  ${k.padEnd(28)} ${fmtMs(v).padStart(10)}   /onnxruntime = ${(v / base).toFixed(2)}`);
  const json = writeResult('tflite_convnext_tiny', { sizes, onnxFp32Bytes: sizeOf(o.fp32), latencyMs: times, latencyMedianMs: med, runs: o.runs });
  say(`→ ${json}`);
}
