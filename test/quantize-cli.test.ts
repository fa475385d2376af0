// quantize as a user meets it: modes, bad requests, the metadata it records, a budget it cannot meet.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeOnnx } from '../src/formats/onnx.js';
import { readNpy } from '../src/formats/npy.js';
import { float32 } from '../src/graph/tensor.js';
import { assertClose, fixturePath, ROOT } from './helpers/fixtures.js';
import { runAny } from './helpers/quantize.js';

const BIN = join(ROOT, 'dist', 'bin', 'convnext.js');
const dir = mkdtempSync(join(tmpdir(), 'convnext-q-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ckpt = fixturePath('v2/timm.safetensors');
const calib = fixturePath('golden/input.npy');
const meta = (p: string) => JSON.parse(decodeOnnx(readFileSync(p), { source: p }).metadata.quantization);

describe('convnext quantize', () => {
  it('int8 records mode, method, calibration size and weight bits, with a JSON summary', () => {
    const out = join(dir, 'int8.onnx');
    const r = cli('quantize', ckpt, '-o', out, '--to', 'int8', '--calib', calib, '--method', 'minmax', '--image-size', '64', '--exclude', 'head.*', '--json');
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.mode, 'int8');
    assert.equal(summary.calibrationImages, 2);
    const q = meta(out);
    assert.equal(q.mode, 'int8');
    assert.equal(q.method, 'minmax');
    assert.equal(q.calibration_images, 2);
    assert.equal(q.weight_bits, 7);
    assert.equal(q.target, 'cpu-avx2', 'the default target, recorded');
    assert.deepEqual(summary.target, { name: 'cpu-avx2', weightBits: 7 });
    assert.ok(q.layers_kept_float.includes('head.fc'), 'the excluded head stays float');
    // names are compacted by default, the layers' kept; --keep-names keeps them all
    const names = (p: string) => decodeOnnx(readFileSync(p), { source: p }).nodes.filter((n) => n.op === 'DequantizeLinear').map((n) => n.outputs[0]);
    assert.ok(names(out).every((v) => v.length <= 3), names(out).join(' '));
    const named = join(dir, 'int8-named.onnx');
    assert.equal(cli('quantize', ckpt, '-o', named, '--to', 'int8', '--calib', calib, '--image-size', '64', '--keep-names', '-q').code, 0);
    assert.ok(names(named).every((v) => v.endsWith('.dequantized')), names(named).join(' '));
  });

  it('--target sets the weight bits and the form, and says so; the WebGPU and AVX2 forms warn that they are not faster there', () => {
    const expected: [string, number, string][] = [['cpu-avx2', 7, 'uint8'], ['cpu-vnni', 8, 'uint8'], ['arm64', 8, 'uint8'], ['wasm', 7, 'uint8'], ['webgpu', 8, 'int8']];
    for (const [target, bits, activations] of expected) {
      const out = join(dir, `int8-${target}.onnx`);
      const r = cli('quantize', ckpt, '-o', out, '--to', 'int8', '--calib', calib, '--image-size', '64', '--target', target);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`for ${target} \\(${bits}-bit weights`));
      assert.equal(target === 'webgpu', /warning: int8 for WebGPU: .*not faster/.test(r.stderr), r.stderr);
      assert.equal(target === 'cpu-avx2', /warning: int8 for cpu-avx2: .*about fp32 speed/.test(r.stderr), r.stderr);
      const q = meta(out);
      assert.equal(q.target, target);
      assert.equal(q.weight_bits, bits);
      const g = decodeOnnx(readFileSync(out), { source: out });
      const zeroPoints = g.nodes.filter((n) => n.op === 'QuantizeLinear').map((n) => g.initializers.get(n.inputs[2])!.dtype);
      assert.ok(zeroPoints.length > 0 && zeroPoints.every((d) => d === activations), `${target}: ${[...new Set(zeroPoints)]}`);
      // onnxruntime's CPU kernels (native and wasm) get the pointwise layers with their bias in one contrib op
      const fused = g.nodes.filter((n) => n.op === 'MatMulIntegerToFloat' && n.domain === 'com.microsoft').length;
      assert.equal(fused > 0, target !== 'webgpu', `${target}: ${fused} MatMulIntegerToFloat`);
      assert.equal(g.nodes.filter((n) => n.op === 'MatMul').length === 0, target !== 'webgpu');
    }
    // --skip-pass keeps the standard QDQ form, for runtimes other than onnxruntime
    const plain = join(dir, 'int8-plain.onnx');
    assert.equal(cli('quantize', ckpt, '-o', plain, '--to', 'int8', '--calib', calib, '--image-size', '64', '--skip-pass', 'matmul-integer-to-float', '-q').code, 0);
    assert.ok(decodeOnnx(readFileSync(plain), { source: plain }).nodes.every((n) => n.domain === ''));
    const r = cli('quantize', ckpt, '-o', join(dir, 'x.onnx'), '--to', 'fp16', '--target', 'webgpu');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--target applies to ONNX int8/);
  });

  it('fp16 and int8-weights write smaller models', () => {
    const fp32 = join(dir, 'fp32.onnx');
    assert.equal(cli('convert', ckpt, '-o', fp32, '-q').code, 0);
    for (const [to, ratio] of [['fp16', 0.6], ['int8-weights', 0.5]] as const) {
      const out = join(dir, `${to}.onnx`);
      const r = cli('quantize', ckpt, '-o', out, '--to', to, '-q');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(statSync(out).size < ratio * statSync(fp32).size, `${to}: ${statSync(out).size} vs ${statSync(fp32).size}`);
      assert.equal(meta(out).mode, to);
    }
  });

  it('int8-weights: Cast → Mul weights (QDQ with --skip-pass); converted again, the model stays int8 and computes the same', async () => {
    const out = join(dir, 'w8-cast.onnx');
    assert.equal(cli('quantize', ckpt, '-o', out, '--to', 'int8-weights', '--image-size', '64', '-q').code, 0);
    const g = decodeOnnx(readFileSync(out), { source: out });
    const ops = (m: typeof g, op: string) => m.nodes.filter((n) => n.op === op).length;
    assert.equal(ops(g, 'DequantizeLinear'), 0);
    assert.ok(ops(g, 'Cast') >= 8 && g.nodes.filter((n) => n.op === 'Cast').every((n) => g.initializers.get(n.inputs[0])?.dtype === 'int8'));
    const again = join(dir, 'w8-cast-again.onnx');
    assert.equal(cli('convert', out, '-o', again, '-q').code, 0);
    assert.ok(statSync(again).size < 1.05 * statSync(out).size, `converted again: ${statSync(again).size} vs ${statSync(out).size} bytes`);
    const input = readNpy(calib);
    assertClose(await runAny(decodeOnnx(readFileSync(again), { source: again }), input), float32([input.shape[0], 10], await runAny(g, input)), 'converted again', 1e-6);
    const qdq = join(dir, 'w8-qdq.onnx');
    assert.equal(cli('quantize', ckpt, '-o', qdq, '--to', 'int8-weights', '--skip-pass', 'dequantize-as-cast-mul', '-q').code, 0);
    const q = decodeOnnx(readFileSync(qdq), { source: qdq });
    assert.equal(ops(q, 'Cast'), 0);
    assert.equal(ops(q, 'DequantizeLinear'), ops(g, 'Cast'));
  });

  it('int8-weights honours --exclude, and a pattern that names no layer is warned about', () => {
    const out = join(dir, 'w8-excluded.onnx');
    const r = cli('quantize', ckpt, '-o', out, '--to', 'int8-weights', '--exclude', 'head.*', '--exclude', '*.fc2/*');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(meta(out).layers_kept_float, ['head.fc']);
    assert.match(r.stderr, /^warning: --exclude '\*\.fc2\/\*' matches no Conv, MatMul or Gemm; layers are named like /m);
    assert.doesNotMatch(r.stderr, /'head\.\*' matches no/);
  });

  it('refuses bad requests with exit 2', () => {
    for (const args of [
      ['--to', 'int4'],
      ['--to', 'int8'], // no --calib
      ['--to', 'int8', '--calib', calib, '--method', 'magic'],
      ['--to', 'int8', '--calib', join(dir, 'nowhere')],
      ['--to', 'int8', '--calib', calib, '--max-drop', '0.1'], // .npy data has no labels
    ]) {
      const r = cli('quantize', ckpt, '-o', join(dir, 'x.onnx'), ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: /m);
    }
  });

  it('an agreement budget that holds keeps every layer int8', () => {
    const r = cli('quantize', ckpt, '-o', join(dir, 'b.onnx'), '--to', 'int8', '--calib', calib, '--image-size', '64', '--min-agreement', '50', '--json');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.budget.met, true);
    assert.deepEqual(s.keptFloat, []);
  });
});
