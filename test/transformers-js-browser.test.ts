// The transformers.js folder in a real browser: headless Chromium loads @huggingface/transformers'
// browser build (its package.json's "default" export) and the onnxruntime-web it pins, both from
// node_modules, and the Fashion folder, all from our 127.0.0.1 server; `pipeline('image-
// classification', …)` must classify as transformers.js does in Node, and as our own runner does.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { env, pipeline } from '@huggingface/transformers';
import { convert } from '../src/convert.js';
import { exportTransformersJs } from '../src/quantize/transformers-js.js';
import { openBrowser, type BrowserSession } from '../src/runtime/browser/chromium.js';
import { browserSkip } from './helpers/browser.js';
import { fixturePath } from './helpers/fixtures.js';
import { nodeTop5, type Top } from './helpers/top5.js';

const skip = browserSkip('the transformers.js browser tests');

const F = (p: string) => fixturePath(join('fashion', p));
const classes = readFileSync(F('classes.txt'), 'utf8').split('\n').filter(Boolean);
const valLabels = new Map(readFileSync(F('val/labels.txt'), 'utf8').trim().split('\n').map((l) => l.split(' ') as [string, string]));
const valNames = [...valLabels.keys()];
// SwiftShader's WebGPU takes seconds per image: it sees the first few only
const GPU_IMAGES = 8;
const EXACT_IMAGES = 8;

/**
 * Runs in the page: imports transformers.js (once, with an import map for the bare specifiers its
 * browser build imports), points it at our server only, and classifies image URLs.
 */
async function classifyInPage(a: { tjs: string; ort: string; common: string; models: string; model: string; device: string; dtype?: string; images: string[]; topK: number }): Promise<{ tops: Top[]; loadMs: number; runMs: number }> {
  const g = globalThis as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (!g.__tjs) {
    const map = document.createElement('script');
    map.type = 'importmap';
    map.textContent = JSON.stringify({ imports: { 'onnxruntime-web/webgpu': `${a.ort}ort.webgpu.bundle.min.mjs`, 'onnxruntime-common': `${a.common}index.js` } });
    document.head.appendChild(map);
    g.__tjs = await import(`${a.tjs}transformers.web.js`);
    g.__pipelines = new Map();
    const { env } = g.__tjs;
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = a.models;
    env.useBrowserCache = false;
    // a prefix rather than {mjs, wasm}: transformers.js then leaves the wasm to onnxruntime-web, uncached
    env.backends.onnx.wasm.wasmPaths = a.ort;
  }
  const key = `${a.device}/${a.dtype}`;
  const start = performance.now();
  if (!g.__pipelines.has(key)) g.__pipelines.set(key, await g.__tjs.pipeline('image-classification', a.model, { device: a.device, ...(a.dtype ? { dtype: a.dtype } : {}) }));
  const loadMs = performance.now() - start;
  const run = performance.now();
  const tops = await g.__pipelines.get(key)(a.images, { top_k: a.topK });
  return { tops: a.images.length === 1 ? [tops] : tops, loadMs, runMs: performance.now() - run };
}

let dir: string;
let session: BrowserSession;
let folder: string;
const urls = { tjs: '', ort: '', common: '', models: '', val: '', exact: '' };
const requested: string[] = [];
const refused: string[] = [];
const exact: string[] = [];

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'convnext-tjs-browser-'));
  const fp32 = join(dir, 'fp32.onnx');
  await convert(F('convnext_fashion.pth'), fp32, { imageSize: 32, cropPct: 1, labelsFile: F('classes.txt') });
  folder = join(dir, 'fashion-tjs');
  await exportTransformersJs(fp32, folder, { dtypes: ['fp32', 'int8', 'q4'], calib: F('calib') });
  // images already at the 32×32 input: no resizer touches them, in Node or in the page
  mkdirSync(join(dir, 'exact'));
  for (const name of valNames.slice(0, EXACT_IMAGES)) {
    exact.push(join(dir, 'exact', name));
    await sharp(F(join('val', name))).resize(32, 32).png().toFile(exact.at(-1)!);
  }
  session = await openBrowser({});
  session.page.on('request', (r) => requested.push(r.url()));
  session.page.on('requestfailed', (r) => refused.push(r.url()));
  session.page.on('response', (r) => void (r.status() >= 400 && refused.push(r.url())));
  urls.tjs = session.serve('@huggingface/transformers', 'dist');
  urls.ort = session.serve('onnxruntime-web', 'dist', '@huggingface/transformers');
  urls.common = session.serve('onnxruntime-common', 'dist/esm', '@huggingface/transformers');
  urls.models = session.server.mount('models', dir);
  urls.val = session.server.mount('val', F('val'));
  urls.exact = session.server.mount('exact', join(dir, 'exact'));
  env.allowRemoteModels = false;
  env.localModelPath = `${dir}/`;
});

after(async () => {
  await session?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function inBrowser(device: string, dtype: string | undefined, images: string[], topK = 1) {
  return session.page.evaluate(classifyInPage, { ...urls, model: basename(folder), device, dtype, images, topK });
}

const nodeClassifiers = new Map<string, (images: string[], o: { top_k: number }) => Promise<Top[]>>();
async function inNode(dtype: string, images: string[], topK = 1): Promise<Top[]> {
  if (!nodeClassifiers.has(dtype)) nodeClassifiers.set(dtype, (await pipeline('image-classification', basename(folder), { dtype: dtype as 'fp32', device: 'cpu', local_files_only: true })) as never);
  const tops = await nodeClassifiers.get(dtype)!(images, { top_k: topK });
  return images.length === 1 ? [tops as unknown as Top] : tops;
}

/** Validation images resized to 32×32 as transformers.js does in Node (sharp's affine, resample 2: bilinear). */
async function resizedAsInNode(names: string[]): Promise<string[]> {
  const out = join(dir, 'node-resized');
  mkdirSync(out, { recursive: true });
  for (const name of names) await sharp(F(join('val', name))).affine([32 / 28, 0, 0, 32 / 28], { interpolator: 'bilinear' }).png().toFile(join(out, name));
  return names.map((n) => join(out, n));
}

const modelFetched = (file: string) => requested.some((u) => u.endsWith(`/models/fashion-tjs/onnx/${file}`));

describe('the transformers.js folder in Chromium', { skip }, () => {
  // wasm loads the folder's per-device default (int8, from config.json's device_config). The
  // 28×28 images are resized to 32: in the page by a canvas, in Node by sharp's affine, 8-bit both,
  // so a few images near a decision boundary may change class; given Node's resized pixels, the
  // page must give Node's answer on every one of them.
  for (const dtype of [undefined, 'fp32'] as const) {
    it(`wasm, ${dtype ?? 'the default dtype (int8)'}: transformers.js's top-1 in Node on the 1,000 validation images`, async () => {
      const want = dtype ?? 'int8';
      const { tops, loadMs, runMs } = await inBrowser('wasm', dtype, valNames.map((n) => `${urls.val}${n}`));
      assert.ok(modelFetched(want === 'int8' ? 'model_int8.onnx' : 'model.onnx'), `the ${want} model was loaded`);
      const node = await inNode(want, valNames.map((n) => F(join('val', n))));
      const differ = valNames.filter((_, i) => tops[i][0].label !== node[i][0].label);
      const correct = (tt: Top[]) => (100 * tt.filter((t, i) => classes.indexOf(t[0].label) === Number(valLabels.get(valNames[i]))).length) / tt.length;
      const resized = await resizedAsInNode(differ);
      const again = resized.length ? (await inBrowser('wasm', dtype, resized.map((p) => `${urls.models}${basename(dirname(p))}/${basename(p)}`))).tops : [];
      process.stdout.write(`# browser wasm ${want}: ${tops.length} images, top-1 ${correct(tops).toFixed(1)} % (Node ${correct(node).toFixed(1)} %), same top-1 as Node on ${tops.length - differ.length} (the other ${differ.length} too once resized as in Node), load ${loadMs.toFixed(0)} ms, run ${(runMs / 1000).toFixed(1)} s\n`);
      assert.ok(differ.length <= 10, `top-1 differs from Node's on ${differ.length} images: ${differ.join(', ')}`);
      assert.deepEqual(again.map((t) => t[0].label), differ.map((n) => node[valNames.indexOf(n)][0].label), 'the images that differ, resized as in Node');
      assert.ok(Math.abs(correct(tops) - correct(node)) <= 0.5, `top-1 ${correct(tops)} % against Node's ${correct(node)} %`);
    });
  }

  it(`webgpu, fp32 (its default): the same top-1 as in Node on the first ${GPU_IMAGES} validation images`, async () => {
    assert.ok(!('error' in session.environment.webgpu), `no WebGPU adapter: ${JSON.stringify(session.environment.webgpu)}`);
    const images = valNames.slice(0, GPU_IMAGES);
    const { tops, loadMs, runMs } = await inBrowser('webgpu', undefined, images.map((n) => `${urls.val}${n}`));
    assert.ok(modelFetched('model.onnx'), 'the fp32 model was loaded');
    const node = await inNode('fp32', images.map((n) => F(join('val', n))));
    process.stdout.write(`# browser webgpu fp32: ${images.length} images, load ${loadMs.toFixed(0)} ms, run ${(runMs / 1000).toFixed(1)} s\n`);
    assert.deepEqual(tops.map((t) => t[0].label), node.map((t) => t[0].label));
  });

  // top-5 scores of the page against our runner in Node, on images no resizer changes
  // q4: the MatMulNBits of int4-weights in transformers.js's own onnxruntime-web build, on both devices
  const cases = [['wasm', 'int8', 'model_int8.onnx'], ['wasm', 'fp32', 'model.onnx'], ['webgpu', 'fp32', 'model.onnx'], ['wasm', 'q4', 'model_q4.onnx'], ['webgpu', 'q4', 'model_q4.onnx']] as const;
  for (const [device, dtype, file] of cases) {
    it(`${device} ${dtype}: the top-5 labels and scores are our runner's (≤ 1e-4) on images at the input size`, async () => {
      const images = exact.slice(0, device === 'webgpu' ? 4 : EXACT_IMAGES);
      const { tops } = await inBrowser(device, dtype, images.map((p) => `${urls.exact}${basename(p)}`), 5);
      const ours = await nodeTop5(join(folder, 'onnx', file), images, classes);
      let worst = 0;
      for (const [i, image] of images.entries()) {
        assert.deepEqual(tops[i].map((t) => t.label), ours[i].map((t) => t.label), image);
        for (let k = 0; k < 5; k++) worst = Math.max(worst, Math.abs(tops[i][k].score - ours[i][k].score));
      }
      process.stdout.write(`# browser ${device} ${dtype}: ${images.length} images, max top-5 score difference from our runner ${worst.toExponential(2)}\n`);
      assert.ok(worst <= 1e-4, `max score difference ${worst}`);
    });
  }

  it('nothing was asked of anything but our 127.0.0.1 server', () => {
    assert.ok(requested.length > 0);
    assert.deepEqual(requested.filter((u) => !u.startsWith(`${session.server.origin}/`)), []);
    // the only file missing is the tokenizer every pipeline looks for, and its 404 the only console error
    assert.deepEqual([...new Set(refused.map((u) => basename(u)))], ['tokenizer_config.json']);
    assert.deepEqual(session.console.filter((l) => l.type !== 'warning' && !/404 \(Not Found\)/.test(l.text)), []);
  });
});
