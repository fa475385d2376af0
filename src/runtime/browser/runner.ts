// Runners whose model runs inside a headless browser: ONNX models in onnxruntime-web (wasm, WebGPU,
// WebGL) and TF.js graph models (cpu, wasm, webgl, webgpu), from the installed npm packages. The
// same Runner as in Node, so validate's accuracy, speed and gates are the same code.

import { basename, dirname } from 'node:path';
import { InputError, isUserError } from '../../errors.js';
import { loadOnnxModel } from '../../convnext/import-onnx.js';
import { readOnnxSummary } from '../../formats/onnx-summary.js';
import { readTfjsFolder } from '../../formats/tfjs-folder.js';
import type { Tensor } from '../../graph/tensor.js';
import type { Runner } from '../runners.js';
import { tfjsDescription } from '../tfjs-runner.js';
import { browserReport, type BrowserSession } from './chromium.js';
import { holdInputInPage, openOnnxInPage, openTfjsInPage, releaseInPage, runInPage, timeInPage, type OpenedInPage } from './in-page.js';
import { webgpuCannotRun } from './webgpu-limits.js';

export type WebProvider = 'wasm' | 'webgpu' | 'webgl';
export type WebTfjsBackend = 'cpu' | 'wasm' | 'webgl' | 'webgpu';

let nextId = 0;

/** An ONNX model in onnxruntime-web; 'auto' tries WebGPU, then wasm. */
export async function browserOnnxRunner(session: BrowserSession, path: string, choice: 'auto' | WebProvider): Promise<Runner> {
  const candidates: WebProvider[] = choice === 'auto' ? ['webgpu', 'wasm'] : [choice];
  // metadata and input without the weights; the whole graph is decoded only if WebGPU is tried
  const { metadata, inputs, externalData } = readOnnxSummary(path);
  const fallbacks: { provider: string; reason: string }[] = [];
  const folder = session.server.mount(`model${nextId}`, dirname(path), [basename(path), ...externalData]);
  for (const provider of candidates) {
    const reason = cannotRun(session, provider, () => webgpuCannotRun(loadOnnxModel(path), adapterFeatures(session)));
    if (reason) {
      fallbacks.push({ provider: `ort-web-${provider}`, reason });
      continue;
    }
    const id = `m${nextId++}`;
    try {
      // onnxruntime-web's default build: WebGPU through JSEP, WebGL and wasm in one bundle
      const ortDir = session.serve('onnxruntime-web', 'dist');
      const opened = await answerWithin(session.page.evaluate(openOnnxInPage, {
        id,
        ortUrl: `${ortDir}ort.all.min.mjs`,
        ortDir,
        modelUrl: `${folder}${basename(path)}`,
        ep: provider,
        externalData: externalData.map((f) => ({ path: f, url: `${folder}${f.split('/').map(encodeURIComponent).join('/')}` })),
      }), PAGE_TIMEOUT_MS);
      return pageRunner(session, id, { label: path, kind: 'onnx', provider: `ort-web-${provider}`, metadata, inputShape: inputs[0]?.shape ?? [], fallbacks }, opened);
    } catch (e) {
      fallbacks.push({ provider: `ort-web-${provider}`, reason: pageError(e) });
    }
  }
  const why = fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ');
  throw new InputError(choice === 'auto' ? `onnxruntime-web cannot run the model in this browser (${why})` : `--ep ${choice} cannot run here (${why}); nothing was measured`, path);
}

/** A TF.js graph-model folder in the browser. */
export async function browserTfjsRunner(session: BrowserSession, folder: string, backend: WebTfjsBackend): Promise<Runner> {
  const read = await readTfjsFolder(folder); // checked here first, as in Node: a bad folder is refused at once
  const reason = cannotRun(session, backend, () => undefined);
  if (reason) throw new InputError(`--tfjs-backend ${backend} cannot run here (${reason}); nothing was measured`, folder);
  const id = `m${nextId++}`;
  const dist = (pkg: string) => session.serve(`@tensorflow/tfjs-${pkg}`, 'dist');
  const scripts = [`${dist('core')}tf-core.min.js`, `${dist('converter')}tf-converter.min.js`, `${dist(`backend-${backend}`)}tf-backend-${backend}.min.js`];
  const shards = ((read.modelJson.weightsManifest ?? []) as { paths: string[] }[]).flatMap((g) => g.paths);
  const served = session.server.mount(`model${nextId}`, folder, [basename(read.modelJsonPath), ...shards]);
  let opened: OpenedInPage;
  try {
    opened = await answerWithin(session.page.evaluate(openTfjsInPage, { id, scripts, wasmDir: dist('backend-wasm'), modelUrl: `${served}${basename(read.modelJsonPath)}`, backend }), PAGE_TIMEOUT_MS);
  } catch (e) {
    throw new InputError(`TF.js (${backend}) cannot load this model in the browser: ${pageError(e)}`, folder);
  }
  const { metadata, inputShape } = tfjsDescription((read.modelJson as { userDefinedMetadata?: Record<string, unknown> }).userDefinedMetadata ?? {}, read.inputDims);
  return pageRunner(session, id, { label: folder, kind: 'tfjs', provider: `tfjs-${backend}`, metadata, inputShape, fallbacks: [] }, opened);
}

/** Why `what` (a provider or backend) cannot run in this browser at all, or undefined. */
function cannotRun(session: BrowserSession, what: string, webgpuModel: () => string | undefined): string | undefined {
  const env = session.environment;
  if (what === 'webgpu') return 'error' in env.webgpu ? env.webgpu.error : webgpuModel();
  if (what === 'webgl' && env.webgl === undefined) return 'the browser offers no WebGL 2';
  return undefined;
}

const adapterFeatures = (s: BrowserSession) => ('features' in s.environment.webgpu ? s.environment.webgpu.features : []);

function deviceOf(session: BrowserSession, provider: string): string {
  const env = session.environment;
  const browser = `Chromium ${session.version}`;
  if (provider.endsWith('webgpu') && 'features' in env.webgpu) return `WebGPU adapter ${[env.webgpu.vendor, env.webgpu.architecture, env.webgpu.description].filter(Boolean).join(' ')} in ${browser}`;
  if (provider.endsWith('webgl')) return `WebGL ${env.webgl} in ${browser}`;
  return `${provider.endsWith('cpu') ? 'JavaScript' : 'wasm'} on the CPU (${env.hardwareConcurrency} cores) in ${browser}`;
}

type Described = Pick<Runner, 'label' | 'kind' | 'provider' | 'metadata' | 'inputShape' | 'fallbacks'>;

function pageRunner(session: BrowserSession, id: string, d: Described, opened: OpenedInPage): Runner {
  let held: Tensor | undefined;
  const call = async <T>(work: () => Promise<T>, doing: string): Promise<T> => {
    try {
      return await answerWithin(work(), PAGE_TIMEOUT_MS);
    } catch (e) {
      if (isUserError(e)) throw e;
      throw new InputError(`${d.provider} cannot ${doing} in the browser (${pageError(e)})`, d.label);
    }
  };
  return {
    ...d,
    device: deviceOf(session, d.provider),
    loadMs: opened.loadMs,
    warnings: d.provider === 'tfjs-webgl' || d.provider === 'tfjs-webgpu' || d.provider === 'ort-web-webgl' ? [`${opened.detail}; GPU times include reading the output back`] : [],
    browser: () => browserReport(session),
    async run(input: Tensor) {
      const out = await call(() => session.page.evaluate(runInPage, { id, input: toBase64(input), dims: [...input.shape] }), `run the model on input [${input.shape.join(', ')}]`);
      return { data: fromBase64(out.output), dims: out.dims };
    },
    async timedRun(input: Tensor) {
      if (held !== input) {
        await session.page.evaluate(holdInputInPage, { input: toBase64(input), dims: [...input.shape] });
        held = input;
      }
      return call(() => session.page.evaluate(timeInPage, id), 'run the model');
    },
    release: () => session.page.evaluate(releaseInPage, id).catch(() => undefined),
  };
}

/** How long one call into the page may take: a WebGPU run that hangs must not hang validate. */
const PAGE_TIMEOUT_MS = 10 * 60_000;

function answerWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the page did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const toBase64 = (t: Tensor) => {
  const f = t.data as Float32Array;
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
};

const fromBase64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

// Playwright wraps the page's error as "page.evaluate: Error: …" with a stack under it
function pageError(e: unknown): string {
  const text = ((e as Error)?.message ?? String(e)).replace(/^page\.evaluate: /, '').replace(/^Error: /, '');
  return (text.split('\n')[0] ?? '').replace(/\x1b\[[0-9;]*m/g, '').slice(0, 300);
}
