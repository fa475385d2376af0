// `convnext serve`: a page that runs a converted classifier in the user's own browser, with
// onnxruntime-web from node_modules. What the page needs to know of the model (labels, the
// preprocessing, which file each backend loads and whether WebGPU can run it right) is read here,
// once, in Node, and handed to the page as JSON: the page never parses ONNX.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOnnxModel } from '../convnext/import-onnx.js';
import type { Preprocessing } from '../data/preprocessing.js';
import { InputError } from '../errors.js';
import { checkOutputs, filesRead, writeFolderAtomic, type PendingFile } from '../formats/files.js';
import { readOnnxSummary } from '../formats/onnx-summary.js';
import { JSON_MAX_BYTES, readTextFile } from '../formats/sniff.js';
import { onnxFile, TJS_DTYPES, type TjsDtype } from '../formats/transformers-js/index.js';
import { labelsOf, metadataJson, preprocessingOf } from '../model/metadata.js';
import { webgpuCannotRun } from '../runtime/browser/webgpu-limits.js';
import { startServer } from '../runtime/browser/server.js';

/** One model file as the page loads it, relative to the model's folder. */
export interface PageModelFile {
  readonly file: string;
  readonly externalData: readonly string[];
}

/** Everything the page is told (embedded in it as JSON). */
export interface PageConfig {
  readonly title: string;
  readonly labels: readonly string[];
  readonly preprocessing: Preprocessing;
  readonly input: string;
  readonly wasm: PageModelFile;
  /** Why onnxruntime-web's WebGPU cannot run the file right, on an adapter with and without shader-f16. */
  readonly webgpu: PageModelFile & { readonly cannot?: string; readonly cannotWithoutF16?: string };
  /** Where the model's folder and onnxruntime-web's dist/ are, seen from the page. */
  readonly modelBase: string;
  readonly runtimeBase: string;
}

export interface DemoModel {
  /** The folder the model files are in (the ONNX file's, or the transformers.js folder). */
  readonly root: string;
  readonly config: Omit<PageConfig, 'modelBase' | 'runtimeBase'>;
  readonly warnings: readonly string[];
}

/**
 * An ONNX classifier (labels and preprocessing from its metadata) or a transformers.js folder this
 * tool wrote (each backend loads the dtype config.json's device_config names for its device).
 */
export function readDemoModel(path: string): DemoModel {
  if (!existsSync(path)) throw new InputError('no such file or folder', path);
  const folder = statSync(path).isDirectory();
  if (folder && !existsSync(join(path, 'onnx', onnxFile('fp32')))) throw new InputError('serve takes an ONNX model or a transformers.js folder (config.json and onnx/model.onnx); this folder is neither', path);
  if (!folder && !statSync(path).isFile()) throw new InputError('serve takes an ONNX model or a transformers.js folder; this is not a regular file', path);
  const root = folder ? path : dirname(path);
  const files = folder ? deviceFiles(path) : { wasm: basename(path), webgpu: basename(path) };
  const warnings: string[] = [];
  const read = (file: string) => {
    const full = join(root, file);
    const graph = loadOnnxModel(full);
    return { graph, entry: { file, externalData: readOnnxSummary(full).externalData } };
  };
  const wasm = read(files.wasm);
  const webgpu = files.webgpu === files.wasm ? wasm : read(files.webgpu);
  const { graph } = wasm;
  const [input] = graph.inputs;
  const [output] = graph.outputs;
  if (graph.inputs.length !== 1 || input.shape.length !== 4 || graph.outputs.length !== 1 || output.shape.length !== 2) {
    throw new InputError(`the demo page runs image classifiers (one input [batch, 3, H, W], one output [batch, classes]); this model takes ${graph.inputs.map((i) => `[${i.shape.join(', ')}]`).join(', ')} and gives ${graph.outputs.map((o) => `[${o.shape.join(', ')}]`).join(', ')}`, join(root, files.wasm));
  }
  const classes = output.shape[1];
  let labels = labelsOf(graph.metadata);
  if (typeof classes === 'number' && labels?.length !== classes) {
    warnings.push(`the model records no class names${labels ? ` for its ${classes} classes` : ''}: the page shows class numbers`);
    labels = Array.from({ length: classes }, (_, i) => `class ${i}`);
  }
  if (!metadataJson(graph.metadata, 'preprocessing')) warnings.push('the model records no preprocessing: the page uses timm\'s defaults (crop_pct 0.875, bicubic, ImageNet mean/std)');
  return {
    root,
    config: {
      title: basename(resolve(path)),
      labels: labels ?? [],
      preprocessing: preprocessingOf(graph, {}),
      input: input.name,
      wasm: wasm.entry,
      webgpu: { ...webgpu.entry, cannot: webgpuCannotRun(webgpu.graph, ['shader-f16']), cannotWithoutF16: webgpuCannotRun(webgpu.graph, []) },
    },
    warnings,
  };
}

/** The files `wasm` and `webgpu` load in a transformers.js folder: its device_config's dtypes, where written. */
function deviceFiles(dir: string): { wasm: string; webgpu: string } {
  const configPath = join(dir, 'config.json');
  let config: { 'transformers.js_config'?: { device_config?: Record<string, { dtype?: unknown }> } } = {};
  if (existsSync(configPath)) {
    try {
      config = JSON.parse(readTextFile(configPath, 'config.json', JSON_MAX_BYTES));
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`is not JSON (${(e as Error).message})`, configPath);
    }
  }
  const fileFor = (device: string) => {
    const dtype = config['transformers.js_config']?.device_config?.[device]?.dtype;
    const file = TJS_DTYPES.includes(dtype as TjsDtype) ? `onnx/${onnxFile(dtype as TjsDtype)}` : undefined;
    return file && existsSync(join(dir, file)) ? file : `onnx/${onnxFile('fp32')}`;
  };
  return { wasm: fileFor('wasm'), webgpu: fileFor('webgpu') };
}

/** The page: its markup, the config, and page.js (compiled from page.ts) as a module. */
export function demoHtml(config: PageConfig, scriptUrl: string): string {
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  const title = config.title.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>${title} · convnext</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:16px 20px;color:#1d1d1f;background:#fafafa;max-width:680px}
h1{font-size:18px;margin:0 0 2px}.meta{color:#666;font-size:13px;margin:0 0 12px}
#drop{border:2px dashed #aaa;border-radius:8px;padding:14px;display:flex;gap:16px;align-items:center;background:#fff}
#drop.over{border-color:#2a6df4;background:#eef3ff}#preview{width:112px;height:112px;object-fit:contain;image-rendering:pixelated;background:#eee;border-radius:4px}
table{border-collapse:collapse;margin-top:12px;width:100%}td{padding:3px 6px}td.score{width:70px;text-align:right;font-variant-numeric:tabular-nums}
.bar{height:12px;background:#2a6df4;border-radius:3px}#status{margin-top:10px;font-size:13px;color:#444}#status.error{color:#b00020}
</style></head><body>
<h1>${title}</h1><p class="meta" id="meta"></p>
<div id="drop"><img id="preview" alt=""><div><p>Drop an image here, or choose one:</p><input type="file" id="file" accept="image/*"></div></div>
<table id="top5"></table>
<p id="status">loading onnxruntime-web…</p>
<script type="application/json" id="config">${json}</script>
<script type="module" src="${scriptUrl}"></script>
</body></html>
`;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The page's own modules, as the build wrote them (page.js imports ../data/pixels.js). */
const PAGE_MODULES = ['web/page.js', 'data/pixels.js'];
/** What onnxruntime-web's default build (WebGPU through JSEP, and wasm) fetches. */
const RUNTIME_FILES = ['ort.all.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

function runtimeDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  } catch {
    throw new InputError('the demo page needs the npm package onnxruntime-web installed (npm install onnxruntime-web)');
  }
}

export interface DemoServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the page, the model and onnxruntime-web on 127.0.0.1 (port 0: one the system picks). */
export async function serveDemo(model: DemoModel, port = 0): Promise<DemoServer> {
  const config: PageConfig = { ...model.config, modelBase: '/model/', runtimeBase: '/ort/' };
  const ort = runtimeDir();
  let server;
  try {
    server = await startServer(demoHtml(config, '/web/page.js'), port);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new InputError(code === 'EADDRINUSE' ? 'port in use: give another --port (or 0 for any free one)' : `cannot listen there (${(e as Error).message})`, `127.0.0.1:${port}`);
  }
  // of the model's folder only the files the page loads: it may hold anything else
  const { wasm, webgpu } = model.config;
  const side = (m: PageModelFile) => [m.file, ...m.externalData.map((f) => posix.join(posix.dirname(m.file), f))];
  server.mount('model', model.root, [...side(wasm), ...side(webgpu)]);
  // the same files --write-page copies, and nothing else of dist/ or node_modules
  server.mount('ort', ort, RUNTIME_FILES);
  server.mount('web', here, ['page.js']);
  server.mount('data', join(here, '..', 'data'), ['pixels.js']);
  return { url: `${server.origin}/`, close: () => server.close() };
}

/**
 * Writes the page as static files into `<model folder>/demo/` (index.html, its two modules and
 * onnxruntime-web's three files), for any static web server; refused when that folder exists.
 */
export function writeDemoPage(model: DemoModel, modelPath: string): { dir: string; files: string[]; bytes: number } {
  const dir = join(model.root, 'demo');
  if (existsSync(dir)) throw new InputError('already exists: remove it to write the page again', dir);
  checkOutputs([{ path: dir, what: 'the demo page folder' }], filesRead(modelPath, 'the model'));
  const ort = runtimeDir();
  const config: PageConfig = { ...model.config, modelBase: '../', runtimeBase: 'ort/' };
  const files: PendingFile[] = [
    { path: 'index.html', chunks: [Buffer.from(demoHtml(config, 'web/page.js'))] },
    ...PAGE_MODULES.map((m) => ({ path: m, chunks: [readFileSync(join(here, '..', m))] })),
    ...RUNTIME_FILES.map((f) => ({ path: join('ort', f), chunks: [readFileSync(join(ort, f))] })),
  ];
  writeFolderAtomic(dir, files);
  return { dir, files: files.map((f) => f.path), bytes: files.reduce((n, f) => n + f.chunks[0].byteLength, 0) };
}
