// LiteRT.js (@litertjs/core: Google's LiteRT compiled to wasm, XNNPACK on the CPU) run in Node. The
// package is written for browsers and loads its wasm glue with importScripts, so that is provided
// here, reading the script from node_modules. Nothing is fetched; the wasm runs with one thread.
// Loaded lazily: only validate of a .tflite model and the tests need it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { readTfliteSummary, type TfliteEnd, type TfliteSummary } from '../formats/tflite/read.js';
import { TensorType } from '../formats/tflite/schema.js';
import { transposeTensor } from '../formats/tfjs/layout.js';
import { concatFloat32, tensor, type Tensor } from '../graph/tensor.js';
import type { Dataset } from '../data/images.js';
import { predict } from './predict.js';

type LiteRt = typeof import('@litertjs/core');
let loading: Promise<LiteRt> | undefined;
/**
 * While models load or run (several at once under Promise.all): LiteRT's lines, kept for the one
 * error message instead of stderr. LiteRT cannot say which call a line is about, so each open call
 * sees them all.
 */
const listening = new Set<string[]>();

export function liteRt(): Promise<LiteRt> {
  loading ??= (async () => {
    let entry: string;
    try {
      entry = fileURLToPath(import.meta.resolve('@litertjs/core'));
    } catch (e) {
      throw new InputError(`.tflite models need the npm package @litertjs/core installed (${(e as Error).message})`);
    }
    const g = globalThis as Record<string, unknown>;
    g.self ??= globalThis;
    // the emscripten glue declares `var ModuleFactory` for a classic script; run it as a function instead
    g.importScripts = (url: string) => {
      const code = readFileSync(url, 'utf8');
      g.ModuleFactory = new Function('require', '__dirname', '__filename', `${code}\nreturn ModuleFactory;`)(createRequire(url), dirname(url), url);
    };
    // LiteRT logs an INFO line per model compiled, and warns that it has no NPU here: neither is
    // news; other warnings and errors still reach stderr
    const quiet = (line: string) => {
      if (/^INFO: |NPU accelerator could not be loaded/.test(line)) return;
      if (listening.size) for (const lines of listening) lines.push(line);
      else process.stderr.write(`${line}\n`);
    };
    g.Module = { print: quiet, printErr: quiet };
    const lrt = await import('@litertjs/core');
    // no WebGPU in Node: LiteRT.js says so with a console warning, then runs on wasm, as asked
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void (String(args[0]).startsWith('Failed to create default WebGPU device') || warn(...args));
    try {
      await lrt.loadLiteRt(join(dirname(entry), '..', 'wasm') + '/');
    } finally {
      console.warn = warn;
    }
    return lrt;
  })();
  return loading;
}

export interface TfliteModel {
  /** Runs NCHW input (as our graphs and goldens hold it) fed NHWC; returns the first output. */
  run(input: Tensor): Promise<{ data: Float32Array; dims: number[] }>;
  delete(): void;
}

/**
 * Runs `work` with LiteRT's own error lines held back; if it fails, the error says what LiteRT said
 * (its first ERROR line), in one message.
 */
async function quietly<T>(work: () => Promise<T>): Promise<T> {
  const said: string[] = [];
  listening.add(said);
  try {
    const result = await work();
    for (const line of said) process.stderr.write(`${line}\n`); // what LiteRT says of a model it runs still reaches the user
    return result;
  } catch (e) {
    const first = said.find((l) => /ERROR/.test(l))?.replace(/^ERROR: (\[[^\]]*\] )?/, '');
    const message = String((e as Error)?.message ?? e).split('\n')[0];
    throw new Error(first ? `${first} (${message})` : message);
  } finally {
    listening.delete(said);
  }
}

export async function loadTflite(bytes: Uint8Array, summary: TfliteSummary = readTfliteSummary(bytes, 'the .tflite model')): Promise<TfliteModel> {
  const lrt = await liteRt();
  const io = ioOf(summary);
  const model = await quietly(() => lrt.loadAndCompile(bytes, { accelerator: 'wasm' }));
  return {
    run: (input) => quietly(async () => {
      const x = transposeTensor(tensor('float32', input.shape, input.data), [0, 2, 3, 1]);
      const t = new lrt.Tensor(io.feed(x.data as Float32Array<ArrayBuffer>), [...x.shape]);
      try {
        const [y, ...rest] = await model.run(t);
        const out = { data: io.read(y.toTypedArray() as Float32Array | Uint8Array), dims: [...y.type.layout.dimensions] };
        for (const r of [y, ...rest]) r.delete();
        return out;
      } finally {
        t.delete();
      }
    }),
    delete: () => model.delete(),
  };
}

/** A predict() runner over a model whose batch is 1: a batch's images run one by one. */
export function imageByImage(model: TfliteModel) {
  return async (input: Tensor) => {
    const [n, ...rest] = input.shape;
    const per = rest.reduce((a, b) => a * b, 1);
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i++) out.push((await model.run(tensor('float32', [1, ...rest], (input.data as Float32Array).subarray(i * per, (i + 1) * per)))).data);
    return { data: concatFloat32(out), dims: [n, out[0].length] };
  };
}

/** The logits of a batch-1 .tflite model over `data`, in LiteRT.js. */
export async function predictTflite(bytes: Uint8Array, data: Dataset, options: { readonly batchSize?: number; readonly onProgress?: (what: string, done: number, total: number) => void }, what: string) {
  const model = await loadTflite(bytes);
  try {
    const p = await predict([imageByImage(model)], data, { batchSize: options.batchSize, onProgress: (d, t) => options.onProgress?.(what, d, t) });
    return { logits: p.logits[0], classes: p.classes, labels: p.labels };
  } finally {
    model.delete();
  }
}

/** A metadata value as JSON, or undefined when it is not an object (the file is untrusted). */
function parsed(value: string | undefined): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value ?? 'null');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const TYPE_NAMES = new Map<number, string>(Object.entries(TensorType).map(([k, v]) => [v, k]));

/**
 * How float NHWC images go in and logits come out: as they are, or through a uint8 tensor's scale
 * and zero point. Our uint8 models take the image's bytes (real value 0–1, normalised inside:
 * formats/tflite TFLITE_IO), so the normalised image is first mapped back with the recorded mean
 * and std; another uint8 model is taken to hold the normalised image itself (the TFLite converter's
 * form). LiteRT.js has no int8 tensors, so an int8 input or output is refused here.
 */
function ioOf(s: TfliteSummary): { feed(nhwc: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>; read(y: Float32Array | Uint8Array): Float32Array } {
  for (const [what, end] of [['input', s.input], ['output', s.output]] as const) {
    if (end.type !== TensorType.FLOAT32 && end.type !== TensorType.UINT8) throw new InputError(`LiteRT.js runs float32 and uint8 inputs and outputs; this model's ${what} is ${TYPE_NAMES.get(end.type) ?? `type ${end.type}`}`);
  }
  const q = (e: TfliteEnd) => e.quantization ?? { scale: 1, zeroPoint: 0 };
  const bytesIn = String(parsed(s.metadata.quantization)?.io ?? '').startsWith('uint8');
  const p = bytesIn ? (parsed(s.metadata.preprocessing) as { mean?: unknown; std?: unknown } | undefined) : undefined;
  const three = (v: unknown): v is number[] => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (bytesIn && !(three(p?.mean) && three(p?.std))) throw new InputError('the uint8 .tflite model records no per-channel mean and std to feed its bytes by');
  const norm = p as { mean: number[]; std: number[] } | undefined;
  return {
    feed(x) {
      if (s.input.type === TensorType.FLOAT32) return x;
      const { scale, zeroPoint } = q(s.input);
      return Uint8Array.from(x, (v, i) => Math.max(0, Math.min(255, Math.round((norm ? v * norm.std[i % 3] + norm.mean[i % 3] : v) / scale + zeroPoint))));
    },
    read(y) {
      if (s.output.type === TensorType.FLOAT32) return (y as Float32Array).slice();
      const { scale, zeroPoint } = q(s.output);
      return Float32Array.from(y, (v) => (v - zeroPoint) * scale);
    },
  };
}
