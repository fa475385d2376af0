// LiteRT.js (@litertjs/core: Google's LiteRT compiled to wasm, XNNPACK on the CPU) run in Node. The
// package is written for browsers and loads its wasm glue with importScripts, so that is provided
// here, reading the script from node_modules. Nothing is fetched; the wasm runs with one thread.
// Loaded lazily: only validate of a .tflite model and the tests need it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { transposeTensor } from '../formats/tfjs/layout.js';
import { tensor, type Tensor } from '../graph/tensor.js';

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

export async function loadTflite(bytes: Uint8Array): Promise<TfliteModel> {
  const lrt = await liteRt();
  const model = await quietly(() => lrt.loadAndCompile(bytes, { accelerator: 'wasm' }));
  return {
    run: (input) => quietly(async () => {
      const x = transposeTensor(tensor('float32', input.shape, input.data), [0, 2, 3, 1]);
      const t = new lrt.Tensor(x.data as Float32Array<ArrayBuffer>, [...x.shape]);
      try {
        const [y, ...rest] = await model.run(t);
        const out = { data: (y.toTypedArray() as Float32Array).slice(), dims: [...y.type.layout.dimensions] };
        for (const r of [y, ...rest]) r.delete();
        return out;
      } finally {
        t.delete();
      }
    }),
    delete: () => model.delete(),
  };
}
