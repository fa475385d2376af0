// The models in a real browser: headless Chromium (Debian's `chromium` in CI), onnxruntime-web on
// wasm and WebGPU (SwiftShader's adapter where there is no GPU), TF.js on cpu, wasm, webgl and
// webgpu. Each model is checked against PyTorch's logits or against the same file in Node.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { openDataset } from '../src/data/images.js';
import { labelsOf, preprocessingOf } from '../src/model/metadata.js';
import { quantize } from '../src/quantize/index.js';
import { openBrowser, type BrowserSession } from '../src/runtime/browser/chromium.js';
import { browserOnnxRunner, browserTfjsRunner, type WebProvider, type WebTfjsBackend } from '../src/runtime/browser/runner.js';
import { predict } from '../src/runtime/predict.js';
import { onnxRunner, type Runner } from '../src/runtime/runners.js';
import { tfjsRunner } from '../src/runtime/tfjs-runner.js';
import { browserSkip } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { assertClose, checkpointFixtures, fixturePath, golden } from './helpers/fixtures.js';
import { FP16_TOLERANCE, INT8_STATIC_TOLERANCE, INT8_WEIGHTS_TOLERANCE } from './helpers/quantize.js';

const skip = browserSkip('the browser tests');

const FASHION = fixturePath('fashion');
const VAL = join(FASHION, 'val');
// SwiftShader's WebGPU runs a few images a second: in CI the GPU backends see the first images and
// two fixtures only; CONVNEXT_BROWSER_FULL=1 runs every fixture and all 1,000 images everywhere
const FULL = process.env.CONVNEXT_BROWSER_FULL === '1';
const GPU_IMAGES = FULL ? 1000 : 32;
const CPU_IMAGES = 1000;
const FIXTURES_ON_GPU = FULL ? checkpointFixtures.map((m) => m.name) : ['v1_official', 'v2_official'];
// int4-weights in the page and in Node run the same products (MatMulNBits dequantizes in float32
// on both; the page's wasm is MLAS like Node's, WebGPU unpacks in its shader): float32 rounding apart
const INT4_IN_PAGE_TOLERANCE = 1e-4;

let work: string;
let session: BrowserSession;
const models: Record<string, string> = {};

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'convnext-browser-'));
  const fp32 = join(work, 'fashion-fp32.onnx');
  await convert(join(FASHION, 'convnext_fashion.pth'), fp32, { imageSize: 32, cropPct: 1, labelsFile: join(FASHION, 'classes.txt') });
  models.fp32 = fp32;
  const calib = join(FASHION, 'calib');
  for (const [name, options] of [
    ['fp16', { to: 'fp16' as const }],
    ['int8', { to: 'int8' as const, calib }],
    ['int8-webgpu', { to: 'int8' as const, calib, target: 'webgpu' as const }],
    ['int8-weights', { to: 'int8-weights' as const }],
    ['int4-weights', { to: 'int4-weights' as const }],
  ] as const) {
    models[name] = join(work, `fashion-${name}.onnx`);
    await quantize(fp32, models[name], options);
  }
  for (const weights of ['float32', 'float16', 'uint8', 'int8'] as const) {
    models[`tfjs-${weights}`] = join(work, `fashion-tfjs-${weights}`);
    await convert(join(FASHION, 'convnext_fashion.pth'), models[`tfjs-${weights}`], { format: 'tfjs', tfjs: { weights }, imageSize: 32, cropPct: 1 });
  }
  session = await openBrowser({});
});

after(async () => {
  await session?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The Fashion validation images as the model's recorded preprocessing makes them. */
function fashionImages(limit: number) {
  const graph = loadOnnxModel(models.fp32);
  return openDataset(VAL, { preprocessing: preprocessingOf(graph, {}), classNames: labelsOf(graph.metadata), limit });
}

async function logitsOf(runners: Runner[], limit: number) {
  try {
    return await predict(runners.map((r) => (x) => r.run(x)), fashionImages(limit), { batchSize: 16 });
  } finally {
    for (const r of runners) await r.release();
  }
}

const top1 = (logits: Float32Array, classes: number) =>
  Array.from({ length: logits.length / classes }, (_, i) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
    return best;
  });

/** Top-1 accuracy in % against the validation labels. */
const top1Accuracy = (logits: Float32Array, classes: number, labels: readonly number[]) => `${((100 * top1(logits, classes).filter((p, i) => p === labels[i]).length) / (logits.length / classes)).toFixed(1)} %`;

/** max |a − b| / max |b|, and the share of images whose top-1 agree. */
function compare(a: Float32Array, b: Float32Array, classes: number) {
  let err = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    max = Math.max(max, Math.abs(b[i]));
  }
  const [ta, tb] = [top1(a, classes), top1(b, classes)];
  return { relative: err / max, agreement: ta.filter((t, i) => t === tb[i]).length / ta.length, sameTop1: ta.every((t, i) => t === tb[i]) };
}

describe('onnxruntime-web in Chromium', { skip }, () => {
  it('the fixtures in fp32 match PyTorch on wasm (all) and WebGPU (≤ 1e-4 × max |logit|, same top-1)', async () => {
    for (const m of checkpointFixtures) {
      const path = join(work, `${m.name}.onnx`);
      await convert(fixturePath(m.path), path, { imageSize: m.image_size, stateDictKey: m.state_dict_key ?? undefined });
      const { input, output } = golden(m);
      const name = m.name;
      for (const ep of FIXTURES_ON_GPU.includes(name) ? (['wasm', 'webgpu'] as const) : (['wasm'] as const)) {
        const r = await browserOnnxRunner(session, path, ep);
        try {
          assert.equal(r.provider, `ort-web-${ep}`);
          assertClose((await r.run(input)).data, output, `${name} on ${ep}`);
        } finally {
          await r.release();
        }
      }
    }
  });

  // the same file in Node (onnxruntime-node, CPU) is the reference: what runs in a browser must be
  // what was validated in Node
  const precisions: [string, number][] = [['fp32', 1e-4], ['fp16', FP16_TOLERANCE], ['int8', INT8_STATIC_TOLERANCE], ['int8-webgpu', INT8_STATIC_TOLERANCE], ['int8-weights', INT8_WEIGHTS_TOLERANCE], ['int4-weights', INT4_IN_PAGE_TOLERANCE]];
  for (const ep of ['wasm', 'webgpu'] as const satisfies readonly WebProvider[]) {
    it(`Fashion on ${ep}: every precision that can run here agrees with Node; the others are refused with the reason`, async (t) => {
      const features = 'features' in session.environment.webgpu ? session.environment.webgpu.features : [];
      for (const [name, tolerance] of precisions) {
        const path = models[name];
        const cannot = ep === 'webgpu' && ((name === 'fp16' && !features.includes('shader-f16')) || name === 'int8');
        if (cannot) {
          await assert.rejects(browserOnnxRunner(session, path, ep), name === 'fp16' ? /lacks the 'shader-f16' feature \(cannot run here/ : /computes .*DequantizeLinear.* wrongly .*--target webgpu/);
          continue;
        }
        const node = await onnxRunner(path, path, loadOnnxModel(path).metadata, [], 'cpu');
        const web = await browserOnnxRunner(session, path, ep);
        const { logits, classes, labels } = await logitsOf([web, node], ep === 'webgpu' ? GPU_IMAGES : CPU_IMAGES);
        const c = compare(logits[0], logits[1], classes);
        t.diagnostic(`${name} on ${ep}, ${logits[0].length / classes} images: ${c.relative.toExponential(2)} × max |logit| from Node, top-1 agreement ${(100 * c.agreement).toFixed(2)} %, top-1 ${top1Accuracy(logits[0], classes, labels)} vs Node ${top1Accuracy(logits[1], classes, labels)}`);
        // int8 in Node runs fused kernels (the CPU form) or op by op (the WebGPU form); the page runs them op by op
        assert.ok(c.relative <= tolerance, `${name} on ${ep}: ${c.relative.toExponential(2)} × max |logit| from Node, over ${tolerance}`);
        assert.ok(c.agreement >= (name.startsWith('int8') ? 0.99 : 1), `${name} on ${ep}: top-1 agreement with Node ${(100 * c.agreement).toFixed(1)} %`);
      }
    });
  }

  it('WebGL cannot take these models: refused with onnxruntime-web\'s reason', async () => {
    await assert.rejects(browserOnnxRunner(session, models.fp32, 'webgl'), /--ep webgl cannot run here .*LayerNormalization/);
  });

  it('no written model makes onnxruntime-web warn about unused initializers', () => {
    const unused = session.console.filter((l) => /Removing initializer/.test(l.text));
    assert.deepEqual(unused, []);
  });
});

describe('TF.js in Chromium', { skip }, () => {
  for (const backend of ['cpu', 'wasm', 'webgl', 'webgpu'] as const satisfies readonly WebTfjsBackend[]) {
    it(`every weight precision on ${backend} gives what TF.js gives in Node`, async (t) => {
      for (const weights of ['float32', 'float16', 'uint8', 'int8']) {
        const folder = models[`tfjs-${weights}`];
        const web = await browserTfjsRunner(session, folder, backend);
        const node = await tfjsRunner(folder, 'cpu');
        const { logits, classes, labels } = await logitsOf([web, node], backend === 'webgpu' || backend === 'webgl' ? GPU_IMAGES : FULL ? 1000 : 200);
        const c = compare(logits[0], logits[1], classes);
        t.diagnostic(`tfjs ${weights} on ${backend}, ${logits[0].length / classes} images: ${c.relative.toExponential(2)} × max |logit| from Node, top-1 ${top1Accuracy(logits[0], classes, labels)} vs Node ${top1Accuracy(logits[1], classes, labels)}`);
        // the same weights, other kernels (and float16 textures on some WebGL GPUs): float sums only
        assert.ok(c.relative <= 1e-4, `${weights} on ${backend}: ${c.relative.toExponential(2)} × max |logit| from Node`);
        assert.ok(c.sameTop1, `${weights} on ${backend}: top-1 differs from Node`);
      }
    });
  }
});

describe('validate --runtime browser', { skip }, () => {
  const common = ['--data', VAL, '--limit', '16', '--runtime', 'browser'];

  it('passes (exit 0) and names what ran: the WebGPU int8 form on WebGPU against fp32 on wasm', () => {
    const json = join(work, 'report.json');
    const r = runCli('validate', models['int8-webgpu'], '--reference', models.fp32, ...common, '--ep', 'webgpu', '--reference-ep', 'wasm', '--batch', '2', '--min-agreement', '90', '--json', json, '-q');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.model.provider, 'ort-web-webgpu');
    assert.equal(report.reference.provider, 'ort-web-wasm');
    assert.match(report.model.device, /WebGPU adapter .* in Chromium \d+/);
    assert.equal(report.browser.crossOriginIsolated, true);
    assert.ok(Array.isArray(report.browser.webgpu.features));
    assert.equal(typeof report.browser.consoleErrors, 'number');
    assert.equal(report.speed.model[0].batch, 2);
    assert.ok(report.agreement.top1Agreement >= 90);
  });

  it('fails a gate with exit 1', () => {
    const r = runCli('validate', models.fp32, '--reference', models['int8-weights'], ...common, '--ep', 'wasm', '--batch', 'none', '--min-cosine', '1.5');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /failed gate --min-cosine/);
  });

  it('refuses with exit 2: what cannot run here, a missing browser, flags of the other runtime', () => {
    const cases: [string[], RegExp][] = [
      [[models.int8, ...common, '--ep', 'webgpu', '--batch', 'none'], /--ep webgpu cannot run here .*--target webgpu/],
      [[models.fp32, ...common, '--ep', 'webgl', '--batch', 'none'], /--ep webgl cannot run here/],
      [[models.fp32, ...common, '--ep', 'cuda', '--batch', 'none'], /--ep cuda is onnxruntime-node's/],
      [[models.fp32, ...common, '--browser', join(work, 'no-such-browser'), '--batch', 'none'], /no-such-browser: no browser there/],
      [[models.fp32, '--data', VAL, '--limit', '4', '--ep', 'wasm', '--batch', 'none'], /--ep wasm is onnxruntime-web's, in a browser: add --runtime browser/],
      [[models['tfjs-float32'], '--data', VAL, '--limit', '4', '--tfjs-backend', 'webgl', '--batch', 'none'], /--tfjs-backend webgl runs in a browser/],
      [[fixturePath('fashion/convnext_fashion.pth'), ...common, '--batch', 'none'], /convert the checkpoint first/],
    ];
    for (const [args, pattern] of cases) {
      const r = runCli('validate', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
