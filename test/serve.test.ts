// `convnext serve`: the demo page in headless Chromium (the image set through its file input must
// get our Node runner's top-5), --write-page's static folder, Ctrl-C, and one-line refusals.
// CONVNEXT_DEMO_SCREENSHOT=docs/demo.png writes the screenshot the README shows.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { exportTransformersJs } from '../src/quantize/transformers-js.js';
import { openBrowser, type BrowserSession } from '../src/runtime/browser/chromium.js';
import { assertCliRefused, BIN, runCli } from './helpers/cli.js';
import { browserSkip } from './helpers/browser.js';
import { fixturePath } from './helpers/fixtures.js';
import { nodeTop5, type Top } from './helpers/top5.js';

const skip = browserSkip('the demo page tests');

const F = (p: string) => fixturePath(join('fashion', p));
const classes = readFileSync(F('classes.txt'), 'utf8').split('\n').filter(Boolean);
const IMAGES = ['test_00000.png', 'test_00002.png'].map((n) => F(join('val', n)));
// SwiftShader compiles WebGPU shaders slowly: the page's first run can take tens of seconds under load
const PAGE_TIMEOUT = 90_000;

const dir = mkdtempSync(join(tmpdir(), 'convnext-serve-'));
const fp32 = join(dir, 'fashion', 'fp32.onnx');
const folder = join(dir, 'fashion-tjs');
let session: BrowserSession | undefined;

before(async () => {
  mkdirSync(join(dir, 'fashion'));
  await convert(F('convnext_fashion.pth'), fp32, { imageSize: 32, cropPct: 1, labelsFile: F('classes.txt') });
  await exportTransformersJs(fp32, folder, { dtypes: ['fp32', 'int8'], calib: F('calib') });
  if (!skip) session = await openBrowser({});
});

after(async () => {
  await session?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `convnext serve ARGS` as a child process, and the URL it printed. */
async function startServe(...args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/)/m.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code} before printing a URL: ${err}`)));
  });
  return { child, url };
}

/** Opens the page, sets each image through the file input, and reads the table it shows. */
async function classifyOnPage(url: string, images: readonly string[]) {
  const page = session!.page;
  await page.setViewportSize({ width: 720, height: 420 });
  await page.goto(url);
  const settled = (state: string) => page.waitForFunction((s) => document.body.dataset.state === s || document.body.dataset.state === 'error', state, { timeout: PAGE_TIMEOUT });
  await settled('ready');
  const shown: Top[] = [];
  for (const image of images) {
    await page.setInputFiles('#file', image);
    await settled('done');
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', (await page.textContent('#status')) ?? '');
    const rows = await page.$$eval('#top5 tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    shown.push(rows.map(([label, , score]) => ({ label, score: Number.parseFloat(score) / 100 })));
  }
  return { shown, meta: (await page.textContent('#meta')) ?? '', status: (await page.textContent('#status')) ?? '', backend: await page.evaluate(() => document.body.dataset.backend) };
}

/** The page's top-5 (scores shown to 0.1 %) against our runner's. */
function assertSameTop5(shown: Top[], ours: Top[]): void {
  for (const [i, top] of shown.entries()) {
    assert.deepEqual(top.map((t) => t.label), ours[i].map((t) => t.label), IMAGES[i]);
    for (const [k, t] of top.entries()) assert.ok(Math.abs(t.score - ours[i][k].score) <= 0.0006, `${IMAGES[i]} #${k + 1}: ${t.score} on the page, ${ours[i][k].score} in Node`);
  }
}

describe('convnext serve in Chromium', { skip, timeout: 240_000 }, () => {
  it('serves an ONNX model: the page shows our runner\'s top-5 on WebGPU where the adapter allows, the latency, and stops on Ctrl-C', async () => {
    const { child, url } = await startServe(fp32, '--port', '0');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const start = performance.now();
      const { shown, meta, status, backend } = await classifyOnPage(url, IMAGES);
      const ours = await nodeTop5(fp32, IMAGES, classes);
      assertSameTop5(shown, ours);
      assert.equal(backend, 'error' in session!.environment.webgpu ? 'wasm' : 'WebGPU', meta);
      assert.match(status, /\d+\.\d ms for the model/);
      assert.deepEqual(session!.console.filter((l) => l.type !== 'warning'), []);
      const png = await session!.page.screenshot({ path: process.env.CONVNEXT_DEMO_SCREENSHOT });
      assert.ok(png.byteLength > 1000);
      process.stdout.write(`# serve: ${backend}, top-1 ${shown.map((t) => t[0].label).join(', ')} as in Node; ${status}; ${((performance.now() - start) / 1000).toFixed(1)} s for page, model and ${IMAGES.length} images\n`);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0);
  });

  it('an int8 model in the CPU form runs on wasm, the page saying why not on WebGPU', async () => {
    const { child, url } = await startServe(join(folder, 'onnx', 'model_int8.onnx'));
    try {
      const { shown, meta, backend } = await classifyOnPage(url, IMAGES.slice(0, 1));
      assert.equal(backend, 'wasm');
      if (!('error' in session!.environment.webgpu)) assert.match(meta, /not WebGPU: onnxruntime-web's WebGPU provider computes .*--target webgpu/);
      assertSameTop5(shown, await nodeTop5(join(folder, 'onnx', 'model_int8.onnx'), IMAGES.slice(0, 1), classes));
    } finally {
      child.kill('SIGINT');
    }
  });

  it('--write-page writes a static page beside a transformers.js folder; it runs the wasm dtype the folder names', async () => {
    const r = runCli('serve', folder, '--write-page', '-q');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(folder, 'demo'));
    assert.deepEqual(readdirSync(join(folder, 'demo')).sort(), ['data', 'index.html', 'ort', 'web']);
    const served = session!.server.mount('written', folder);
    const { shown, meta, backend } = await classifyOnPage(`${session!.server.origin}${served}demo/index.html?backend=wasm`, IMAGES);
    assert.equal(backend, 'wasm');
    assert.match(meta, /^onnx\/model_int8\.onnx · wasm/);
    assertSameTop5(shown, await nodeTop5(join(folder, 'onnx', 'model_int8.onnx'), IMAGES, classes));
    assertCliRefused(runCli('serve', folder, '--write-page'), /demo: already exists/, folder);
  });
});

describe('convnext serve refuses', { timeout: 120_000 }, () => {
  it('what it cannot serve, a port in use and a bad --port: exit 2, one line', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => busy.once('listening', resolve));
    const port = String((busy.address() as { port: number }).port);
    const stages = join(dir, 'stages.onnx');
    await convert(F('convnext_fashion.pth'), stages, { imageSize: 32, outputs: 'stages' });
    const notModel = join(dir, 'plain');
    mkdirSync(notModel);
    copyFileSync(F('classes.txt'), join(notModel, 'classes.txt'));
    const cases: [string[], RegExp][] = [
      [[join(dir, 'missing.onnx')], /missing\.onnx: no such file or folder/],
      [[notModel], /serve takes an ONNX model or a transformers\.js folder .*this folder is neither/],
      [[stages], /the demo page runs image classifiers/],
      [[F('classes.txt')], /classes\.txt: /],
      [[fp32, '--port', port], /port in use: give another --port/],
      [[fp32, '--port', '70000'], /expected a port from 0 to 65535/],
    ];
    try {
      for (const [args, pattern] of cases) assertCliRefused(runCli('serve', ...args), pattern, dir);
    } finally {
      busy.close();
    }
    assert.equal(existsSync(join(dir, 'fashion', 'demo')), false);
  });
});
