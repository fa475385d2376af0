// The demo page's script, run in the browser: onnxruntime-web on WebGPU where the adapter can run
// the model right, else on wasm; an image dropped or chosen is decoded by the browser and made the
// model's input by data/pixels.ts, the same code validate runs in Node.

/* eslint-disable @typescript-eslint/no-explicit-any */
import { preprocessPixels } from '../data/pixels.js';
import type { PageConfig, PageModelFile } from './demo.js';

const config = JSON.parse(document.getElementById('config')!.textContent!) as PageConfig;
const $ = (id: string) => document.getElementById(id)!;
const status = (text: string, error = false) => {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
};

const threads = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;

interface Opened {
  readonly session: any;
  readonly backend: string;
  readonly file: string;
  readonly note: string;
}

/** Why this browser's WebGPU cannot run the model, or undefined when it can. */
async function webgpuRefusal(): Promise<string | undefined> {
  const gpu = (navigator as any).gpu;
  if (!gpu) return 'this browser offers no WebGPU';
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) return 'no WebGPU adapter';
  return adapter.features.has('shader-f16') ? config.webgpu.cannot : config.webgpu.cannotWithoutF16;
}

function sessionOptions(m: PageModelFile, provider: string) {
  const url = (f: string) => new URL(f.split('/').map(encodeURIComponent).join('/'), new URL(config.modelBase, location.href)).href;
  const base = m.file.includes('/') ? m.file.slice(0, m.file.lastIndexOf('/') + 1) : '';
  return {
    url: url(m.file),
    options: { executionProviders: [provider], ...(m.externalData.length ? { externalData: m.externalData.map((p) => ({ path: p, data: url(base + p) })) } : {}) },
  };
}

// ?backend=wasm (or webgpu) forces one; otherwise WebGPU first, falling back with the reason shown
async function open(ort: any): Promise<Opened> {
  const forced = new URLSearchParams(location.search).get('backend');
  let note = '';
  if (forced !== 'wasm') {
    const refusal = await webgpuRefusal();
    if (refusal === undefined) {
      const { url, options } = sessionOptions(config.webgpu, 'webgpu');
      try {
        return { session: await ort.InferenceSession.create(url, options), backend: 'WebGPU', file: config.webgpu.file, note };
      } catch (e) {
        note = `WebGPU failed: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
      }
    } else note = `not WebGPU: ${refusal}`;
    if (forced === 'webgpu') throw new Error(note);
  }
  const { url, options } = sessionOptions(config.wasm, 'wasm');
  return { session: await ort.InferenceSession.create(url, options), backend: `wasm (${threads(ort.env.wasm.numThreads ?? 1)})`, file: config.wasm.file, note };
}

/** The image's 8-bit RGBA pixels as decoded, without colour management (as sharp gives them in Node). */
async function pixelsOf(blob: Blob): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  return { data: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width, height: bitmap.height };
}

function showTop5(logits: Float32Array): void {
  const max = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  const top = e.map((v, i) => ({ label: config.labels[i] ?? `class ${i}`, score: v / sum })).sort((a, b) => b.score - a.score).slice(0, 5);
  const table = $('top5');
  table.replaceChildren(
    ...top.map((t, k) => {
      const row = document.createElement('tr');
      const label = document.createElement('td');
      label.textContent = t.label;
      if (k === 0) label.id = 'top1';
      const bar = document.createElement('td');
      bar.style.width = '50%';
      const fill = document.createElement('div');
      fill.className = 'bar';
      fill.style.width = `${(100 * t.score).toFixed(1)}%`;
      bar.append(fill);
      const score = document.createElement('td');
      score.className = 'score';
      score.textContent = `${(100 * t.score).toFixed(1)} %`;
      row.append(label, bar, score);
      return row;
    }),
  );
}

async function main(): Promise<void> {
  // relative to the page, not to this module (--write-page's page names them relative)
  const runtime = new URL(config.runtimeBase, location.href).href;
  const ort = await import(`${runtime}ort.all.min.mjs`);
  ort.env.wasm.wasmPaths = runtime;
  ort.env.logLevel = 'error';
  status('loading the model…');
  const start = performance.now();
  const opened = await open(ort);
  const { crop } = config.preprocessing;
  const dims = [1, 3, crop, crop];
  // the first run compiles kernels (WebGPU shaders): done now, so that the latency shown is a run's
  await opened.session.run({ [config.input]: new ort.Tensor('float32', new Float32Array(3 * crop * crop), dims) });
  const p = config.preprocessing;
  $('meta').textContent = `${opened.file} · ${opened.backend}${opened.note ? ` (${opened.note})` : ''} · input ${crop}×${crop}, resize ${p.resize} ${p.interpolation}`;
  document.body.dataset.backend = opened.backend.split(' ')[0];
  status(`ready: ${opened.backend}, loaded in ${(performance.now() - start).toFixed(0)} ms`);
  document.body.dataset.state = 'ready';

  const classify = async (blob: Blob) => {
    document.body.dataset.state = 'running';
    try {
      $('preview').setAttribute('src', URL.createObjectURL(blob));
      const t0 = performance.now();
      const { data, width, height } = await pixelsOf(blob);
      const x = preprocessPixels(data, width, height, 4, p);
      const t1 = performance.now();
      const out = await opened.session.run({ [config.input]: new ort.Tensor('float32', x, dims) });
      const t = out[opened.session.outputNames[0]];
      const logits = (t.location && t.location !== 'cpu' ? await t.getData() : t.data) as Float32Array;
      const t2 = performance.now();
      showTop5(logits);
      status(`${opened.backend}: ${(t2 - t1).toFixed(1)} ms for the model, ${(t1 - t0).toFixed(1)} ms to decode and preprocess ${width}×${height}`);
      document.body.dataset.state = 'done';
    } catch (e) {
      status(`cannot classify this image: ${(e as Error)?.message ?? e}`, true);
      document.body.dataset.state = 'error';
    }
  };
  const input = $('file') as HTMLInputElement;
  input.addEventListener('change', () => input.files?.[0] && classify(input.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) void classify(file);
  });
}

main().catch((e) => {
  status(`cannot start: ${(e as Error)?.message ?? e}`, true);
  document.body.dataset.state = 'error';
});
