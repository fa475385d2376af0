// validate as CI uses it: gates that pass and fail with the right exit code, reports that parse,
// and a GPU request on a machine without one that says so instead of timing the CPU.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildConvNextGraph } from '../src/convnext/build.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { encodeOnnx, joinChunks } from '../src/formats/onnx.js';
import { float32, toFloat32 } from '../src/graph/tensor.js';
import { fixturePath, ROOT } from './helpers/fixtures.js';
import { renderHtml } from '../src/validate/report.js';

const BIN = join(ROOT, 'dist', 'bin', 'convnext.js');
const dir = mkdtempSync(join(tmpdir(), 'convnext-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const good = join(dir, 'good.onnx');
const damaged = join(dir, 'damaged.onnx');
const data = fixturePath('golden/input.npy');
const fast = ['--batch', '1', '--ep', 'cpu'];

before(async () => {
  const c = await loadCheckpoint(fixturePath('v1/official.pth'), { imageSize: 64 });
  const g = buildConvNextGraph(c.model, { imageSize: 64, metadata: { labels: JSON.stringify([...Array(10).keys()].map(String)) } });
  writeFileSync(good, joinChunks(encodeOnnx(g, { producerVersion: 't' }).model));
  // a "deliberately damaged" model: the classifier's rows reversed, so its top-1 is wrong
  const w = g.initializers.get('head.fc.weight')!;
  const rows = w.shape[0];
  const cols = w.shape[1];
  const src = toFloat32(w);
  const flipped = float32(w.shape);
  for (let r = 0; r < rows; r++) (flipped.data as Float32Array).set(src.subarray(r * cols, (r + 1) * cols), (rows - 1 - r) * cols);
  const bad = { ...g, initializers: new Map(g.initializers).set('head.fc.weight', flipped) };
  writeFileSync(damaged, joinChunks(encodeOnnx(bad, { producerVersion: 't' }).model));
});

describe('convnext validate', () => {
  it('passes its gates on a faithful model, with JSON and JUnit reports that hold the figures', () => {
    const json = join(dir, 'ok.json');
    const junit = join(dir, 'ok.xml');
    const r = cli('validate', good, '--reference', fixturePath('v1/official.pth'), '--image-size', '64', '--data', data, ...fast,
      '--min-agreement', '99', '--min-cosine', '0.9999', '--max-latency-ms', '100000', '--json', json, '--junit', junit);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.passed, true);
    assert.equal(report.agreement.top1Agreement, 100);
    assert.ok(report.agreement.meanCosine > 0.9999);
    assert.equal(report.model.provider, 'cpu');
    assert.equal(report.speed.model[0].batch, 1);
    assert.ok(report.speed.model[0].medianMs > 0 && report.speed.reference[0].medianMs > 0);
    assert.ok(report.environment.device.length > 0);
    assert.deepEqual(report.gates.map((g: { name: string }) => g.name), ['min-agreement', 'min-cosine', 'max-latency-ms']);
    const xml = readFileSync(junit, 'utf8');
    assert.match(xml, /<testsuites tests="3" failures="0">/);
    assert.equal((xml.match(/<testcase /g) ?? []).length, 3);
    assert.doesNotMatch(xml, /<failure/);
  });

  it('fails --min-agreement 99 on a damaged model with exit code 1, naming the gate', () => {
    const junit = join(dir, 'bad.xml');
    const r = cli('validate', damaged, '--reference', good, '--data', data, ...fast, '--min-agreement', '99', '--junit', junit);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /failed gate --min-agreement 99: top-1 agreement \d/);
    const xml = readFileSync(junit, 'utf8');
    assert.match(xml, /failures="1"/);
    assert.match(xml, /<failure message="min-agreement: /);
  });

  for (const [gate, pass, fail] of [
    ['--max-latency-ms', '100000', '0.000001'],
    ['--min-speedup', '0.000001', '1000000'],
    ['--min-cosine', '-1', '1.1'],
  ] as const) {
    it(`${gate} both passes and fails`, () => {
      const ok = cli('validate', good, '--reference', good, '--data', data, ...fast, gate, pass);
      assert.equal(ok.code, 0, ok.stderr);
      const no = cli('validate', good, '--reference', good, '--data', data, ...fast, gate, fail);
      assert.equal(no.code, 1, no.stderr);
      assert.match(no.stderr, new RegExp(`failed gate ${gate} `));
    });
  }

  it('--ep webgpu on a machine without a GPU says so and times nothing', () => {
    const r = cli('validate', good, '--ep', 'webgpu', '--batch', '1');
    if (r.code === 0) {
      // a GPU is present: then the report must say webgpu ran
      assert.match(r.stdout, /webgpu/);
      return;
    }
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--ep webgpu cannot run here .*no usable GPU adapter, so nothing was timed/);
    assert.doesNotMatch(r.stdout, /median/);
  });

  it('auto falls back to the CPU and says which providers it could not use', () => {
    const r = cli('validate', good, '--batch', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    if (report.model.provider === 'cpu') assert.ok(report.model.fallbacks.some((f: { provider: string }) => f.provider === 'webgpu'));
  });

  it('a checkpoint converted in memory passes on its conversion warnings (stderr and the JSON report)', () => {
    const args = ['validate', fixturePath('bad/v1_nan.pth'), '--image-size', '32', '--batch', '1', '--ep', 'cpu'];
    const text = cli(...args);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stderr, /^warning: .*v1_nan\.pth: features\.1\.0\.block\.3\.weight has 1 NaN\/Inf value$/m);
    const json = cli(...args, '--json');
    assert.deepEqual(JSON.parse(json.stdout).model.warnings, ['features.1.0.block.3.weight has 1 NaN/Inf value']);
  });

  it('--reference-ep runs the reference on another provider, and is refused without a reference or with a bad value', () => {
    const r = cli('validate', good, '--reference', good, '--ep', 'auto', '--reference-ep', 'cpu', '--batch', '1', '--data', data, '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.reference.provider, 'cpu');
    assert.equal(report.agreement.top1Agreement, 100);
    // the "choose one with --ep" refusal is for providers that differ by accident, not on request
    assert.equal(cli('validate', good, '--reference-ep', 'cpu', ...fast).code, 2);
    assert.match(cli('validate', good, '--reference', good, '--reference-ep', 'tpu', ...fast).stderr, /option '--reference-ep <provider>' argument 'tpu' is invalid. Allowed choices are auto, webgpu, cuda, cpu/);
  });

  it('--ep auto sends an int8 model straight to the CPU, and the reference follows the model', async () => {
    const { autoProviders } = await import('../src/runtime/runners.js');
    assert.deepEqual(autoProviders({ quantization: JSON.stringify({ mode: 'int8' }) }), ['cpu']);
    assert.deepEqual(autoProviders({ quantization: JSON.stringify({ mode: 'fp16' }) }), ['webgpu', 'cuda', 'cpu']);
    assert.deepEqual(autoProviders({}), ['webgpu', 'cuda', 'cpu']);
    const { quantize } = await import('../src/quantize/index.js');
    const { validate } = await import('../src/validate/index.js');
    const int8 = join(dir, 'int8.onnx');
    await quantize(good, int8, { to: 'int8', calib: data });
    const r = await validate(int8, { reference: good, data, batches: [], ep: 'auto' });
    assert.deepEqual([r.model.provider, r.model.fallbacks], ['cpu', []], 'int8 never tries WebGPU');
    assert.deepEqual([r.reference!.provider, r.reference!.fallbacks], ['cpu', []], 'the fp32 reference goes where the model went');
  });

  it('says that int8 is no format for WebGPU when an int8 model runs there', async () => {
    const { providerNotes } = await import('../src/runtime/runners.js');
    const int8 = { quantization: JSON.stringify({ mode: 'int8' }) };
    assert.match(providerNotes(int8, 'webgpu').join(), /no WebGPU kernels.*fp16 is the format for WebGPU/);
    assert.deepEqual(providerNotes(int8, 'cpu'), []);
    assert.deepEqual(providerNotes({ quantization: JSON.stringify({ mode: 'fp16' }) }, 'webgpu'), []);
  });

  it('refuses gates it cannot evaluate', () => {
    assert.equal(cli('validate', good, '--min-agreement', '99', '--data', data).code, 2);
    assert.equal(cli('validate', good, '--reference', good, '--max-drop', '1', '--data', data, ...fast).code, 2);
  });

  it('the HTML report is one self-contained page with its plots', () => {
    const html = renderHtml(JSON.parse(readFileSync(join(dir, 'ok.json'), 'utf8')));
    assert.match(html, /^<!doctype html>/);
    assert.equal((html.match(/<svg /g) ?? []).length, 2, 'latency and error-histogram plots');
    assert.doesNotMatch(html, /<script|https?:\/\//);
  });
});
