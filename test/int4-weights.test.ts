// quantize --to int4-weights: 4-bit blockwise MatMul/Gemm weights in onnxruntime's MatMulNBits, int8
// Conv weights. onnxruntime-node is the judge of the packed layout (nibble order, block padding,
// zero points): the rewritten graph must compute x · W' for the W' its codes stand for, which only
// holds if we and onnxruntime read the bytes alike. Accuracy on the Fashion model's 1,000 images.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { readNpy } from '../src/formats/npy.js';
import { onnxBytes } from '../src/formats/onnx.js';
import { attr, checkGraph, GraphBuilder, type Graph } from '../src/graph/graph.js';
import { inferShapes } from '../src/graph/shapes.js';
import { float32, type Tensor } from '../src/graph/tensor.js';
import { dequantizeBlockwise, expandMatMulNBits, matmulNBits, quantizeBlockwise } from '../src/passes/matmul-nbits.js';
import { recordingContext } from '../src/passes/pass.js';
import { quantize } from '../src/quantize/index.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { validate } from '../src/validate/index.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { fixturePath } from './helpers/fixtures.js';
import { runAny } from './helpers/quantize.js';

const F = (p: string) => fixturePath(join('fashion', p));
const dir = mkdtempSync(join(tmpdir(), 'convnext-int4-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fp32 = join(dir, 'fp32.onnx');
before(async () => {
  await convert(F('convnext_fashion.pth'), fp32, { imageSize: 32, cropPct: 1, labelsFile: F('classes.txt') });
});

// scattered values in (−1, 1), some rows wider: smooth ones would cancel in the products
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => {
  const h = Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453;
  return (2 * (h - Math.floor(h)) - 1) * (1 + (i % 7) / 2);
});
const relative = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let err = 0;
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    max = Math.max(max, Math.abs(want[i]));
  }
  return err / max;
};

/** x [2, K] → MatMul(W [K, N]) → Add(b) → y, and x → Gemm(Wᵀ, b, transB) → z. */
function layers(k: number, n: number): Graph {
  const g = new GraphBuilder('t');
  const w = float32([k, n], values(k * n, 1));
  const wt = float32([n, k], Array.from({ length: n * k }, (_, j) => Number(w.data[(j % k) * n + Math.floor(j / k)])));
  const b = g.constant('b', float32([n], values(n, 2)));
  g.op('Add', 'bias', [g.op('MatMul', 'mm', ['x', g.constant('W', w)]), b], {}, 'y');
  g.op('Gemm', 'head', ['x', g.constant('Wt', wt), b], { transB: attr.int(1) }, 'z');
  return g.build([{ name: 'x', dtype: 'float32', shape: [2, k] }], [{ name: 'y', dtype: 'float32', shape: [2, n] }, { name: 'z', dtype: 'float32', shape: [2, n] }]);
}

describe('matmul-nbits', () => {
  it('codes are within half a step of each weight, padding holds the zero point', () => {
    const [k, n, block] = [40, 3, 32]; // K not a multiple of the block: the second block is padded
    const w = Float32Array.from(values(k * n, 3));
    const q = quantizeBlockwise(w, k, n, block);
    assert.equal(q.blocks, 2);
    assert.equal(q.codes.length, n * 2 * 16);
    const back = dequantizeBlockwise(q, k, n, block);
    for (let r = 0; r < k; r++) {
      for (let c = 0; c < n; c++) {
        const scale = q.scales[c * 2 + Math.floor(r / block)];
        assert.ok(Math.abs(back[r * n + c] - w[r * n + c]) <= scale / 2 + 1e-6, `w[${r}, ${c}]`);
      }
    }
    // codes 8..31 of block 1 are padding: each is its block's zero point, so they stand for 0
    const zero = (c: number) => (q.zeroPoints[c] >> 4) & 15;
    for (let c = 0; c < n; c++) for (let i = 8; i < 32; i++) assert.equal((q.codes[(c * 2 + 1) * 16 + (i >> 1)] >> ((i & 1) * 4)) & 15, zero(c));
  });

  it("onnxruntime computes x · W' for the W' the codes stand for (MatMul and transB Gemm; K = 40 pads a block)", async () => {
    const [k, n] = [40, 24];
    const g = layers(k, n);
    const ctx = recordingContext();
    const q = matmulNBits({ blockSize: 32 }).run(g, ctx);
    assert.deepEqual(checkGraph(q), []);
    assert.deepEqual(ctx.log.map((l) => l.where), ['mm', 'head']);
    assert.deepEqual(q.nodes.map((n) => n.op).sort(), ['Add', 'Add', 'MatMulNBits', 'MatMulNBits']);
    assert.equal(q.opsets['com.microsoft'], 1);
    assert.deepEqual(inferShapes(q).get('z')?.shape, [2, n]);
    const w = quantizeBlockwise(Float32Array.from(g.initializers.get('W')!.data as Float32Array), k, n, 32);
    const wq = dequantizeBlockwise(w, k, n, 32);
    const x = float32([2, k], values(2 * k, 4));
    const b = g.initializers.get('b')!.data as Float32Array;
    const want = Array.from({ length: 2 * n }, (_, j) => {
      const [row, col] = [Math.floor(j / n), j % n];
      let s = b[col];
      for (let r = 0; r < k; r++) s += Number(x.data[row * k + r]) * wq[r * n + col];
      return s;
    });
    const got = await runAny(q, x, 'disabled');
    assert.ok(relative(got, want) <= 1e-6, `MatMulNBits vs the dequantized weights: ${relative(got, want)}`);
    // and read back, as the same products in plain ONNX
    const back = expandMatMulNBits(q);
    assert.deepEqual(back.nodes.map((n) => n.op).sort(), ['Add', 'Add', 'MatMul', 'MatMul']);
    assert.ok(relative(await runAny(back, x, 'disabled'), want) <= 1e-6);
    // and near the float layers: 15 steps per block's range (measured 7e-2 of max |y| here)
    assert.ok(relative(got, await runAny(g, x, 'disabled')) < 0.15);
  });

  it('without zero points onnxruntime takes 8, as the read-back does; a shared weight is stored once', async () => {
    const [k, n] = [64, 8];
    const q = matmulNBits().run(layers(k, n), recordingContext());
    const noZero: Graph = { ...q, nodes: q.nodes.map((node) => (node.op === 'MatMulNBits' ? { ...node, inputs: node.inputs.slice(0, 3) } : node)) };
    const x = float32([2, k], values(2 * k, 5));
    const got = await runAny(noZero, x, 'disabled');
    assert.ok(relative(got, await runAny(expandMatMulNBits(noZero), x, 'disabled')) <= 1e-6);
    assert.ok(relative(got, await runAny(q, x, 'disabled')) > 1e-3, 'the zero points matter');
    // two MatMuls on one weight: one set of codes
    const g = new GraphBuilder('t');
    const w = g.constant('W', float32([k, n], values(k * n, 6)));
    g.op('Add', 'sum', [g.op('MatMul', 'a', ['x', w]), g.op('MatMul', 'b', ['x', w])], {}, 'y');
    const shared = matmulNBits().run(g.build([{ name: 'x', dtype: 'float32', shape: [2, k] }], [{ name: 'y', dtype: 'float32', shape: [2, n] }]), recordingContext());
    assert.deepEqual([...shared.initializers.keys()].filter((name) => name.endsWith('.int4')), ['W.int4']);
    assert.deepEqual([...expandMatMulNBits(shared).initializers.keys()].filter((name) => name.endsWith('.dequantized')), ['W.int4.dequantized']);
  });

  it("a foreign MatMulNBits it cannot read exactly is refused by name, not expanded wrongly", () => {
    const q = matmulNBits().run(layers(32, 4), recordingContext());
    const mm = q.nodes.find((node) => node.name === 'mm')!;
    const broken = (change: Partial<typeof mm>): Graph => ({ ...q, nodes: q.nodes.map((node) => (node === mm ? { ...node, ...change } : node)) });
    for (const g of [
      broken({ attrs: { ...mm.attrs, K: attr.float(32) } }), // an attribute of the wrong kind
      broken({ attrs: { ...mm.attrs, K: attr.int(64) } }), // K that is not A's last axis (nor the codes')
      broken({ attrs: { ...mm.attrs, bits: attr.int(8) } }),
      broken({ inputs: [...mm.inputs, 'b'] }), // a g_idx input
    ]) {
      const back = expandMatMulNBits(g);
      assert.equal(back.nodes.filter((node) => node.op === 'MatMulNBits').length, 1);
    }
    const path = join(dir, 'foreign.onnx');
    writeFileSync(path, onnxBytes(broken({ attrs: { ...mm.attrs, K: attr.float(32) } })));
    assertCliRefused(runCli('convert', path, '-o', join(dir, 'foreign-out.onnx')), /unsupported ONNX op: com\.microsoft\.MatMulNBits/, dir, join(dir, 'foreign-out.onnx'));
  });

  it('refuses a block size MatMulNBits does not take, and leaves excluded layers float', () => {
    assert.throws(() => matmulNBits({ blockSize: 48 }), /block size 48: MatMulNBits takes 16, 32, 64, 128, 256/);
    const q = matmulNBits({ exclude: ['he*'] }).run(layers(16, 4), recordingContext());
    assert.deepEqual(q.nodes.map((n) => n.op).sort(), ['Add', 'Gemm', 'MatMulNBits']);
  });
});

describe('quantize --to int4-weights on the Fashion model', () => {
  const q4 = join(dir, 'q4.onnx');
  let made: Awaited<ReturnType<typeof quantize>>;
  before(async () => {
    made = await quantize(fp32, q4, { to: 'int4-weights' });
  });

  it('is ≤ 0.20 × fp32, records how it was made, and computes what its weights stand for', async () => {
    assert.ok(made.bytesWritten <= 0.2 * statSync(fp32).size, `${made.bytesWritten} vs ${statSync(fp32).size}`);
    const graph = loadOnnxModel(q4); // read back: MatMulNBits expanded to float MatMuls
    const info = JSON.parse(graph.metadata.quantization);
    assert.deepEqual([info.mode, info.weight_bits, info.block_size, info.conv_weight_bits], ['int4-weights', 4, 32, 8]);
    assert.equal(made.quantizedLayers, 32);
    const input: Tensor = readNpy(F('val_input.npy'));
    const written = await runFloat(await createSession(q4), input);
    const expanded = await runAny(graph, input, 'disabled');
    assert.ok(relative(written.data as Float32Array, expanded) <= 1e-5, `${relative(written.data as Float32Array, expanded)}`);
  });

  it('loses ≤ 0.5 points of top-1 and agrees with fp32 on ≥ 99 % of the 1,000 images', async () => {
    // measured: 92.00 % against 92.20 %, agreement 99.40 %, mean cosine 0.99943
    const r = await validate(q4, { reference: fp32, data: F('val'), batches: [], ep: 'cpu' });
    const drop = r.accuracy!.reference!.top1 - r.accuracy!.model.top1;
    assert.ok(drop <= 0.5 + 1e-9, `drop ${drop}`);
    assert.ok(r.agreement!.top1Agreement >= 99, `agreement ${r.agreement!.top1Agreement}`);
  });

  it('--float16: scales and activations float16 (LayerNorm float32), the same classes as float32 activations', async () => {
    const out = join(dir, 'q4f16.onnx');
    const h = await quantize(fp32, out, { to: 'int4-weights', float16: true });
    assert.ok(h.bytesWritten < made.bytesWritten, 'float16 scales and biases');
    assert.equal(h.quantizedLayers, made.quantizedLayers, 'the int8 Convs are counted through their float16 Casts');
    const graph = loadOnnxModel(out);
    assert.equal(JSON.parse(graph.metadata.quantization).activations, 'float16');
    assert.deepEqual([graph.inputs[0].dtype, graph.outputs[0].dtype], ['float32', 'float32']);
    const r = await validate(out, { reference: q4, data: F('val'), batches: [], ep: 'cpu' });
    // measured: 100 % agreement, max |logit error| 4.9e-3
    assert.ok(r.agreement!.top1Agreement >= 99.8, `agreement ${r.agreement!.top1Agreement}`);
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'x.onnx'), '--to', 'int8-weights', '--float16'), /--float16 applies to --to int4-weights/, dir, join(dir, 'x.onnx'));
  });

  it('the CLI writes it, says what it holds, and refuses what does not apply', async () => {
    const out = join(dir, 'cli-q4.onnx');
    const r = runCli('quantize', fp32, '-o', out, '--to', 'int4-weights', '--block-size', '64', '--json');
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.mode, 'int4-weights');
    assert.ok(summary.bytesWritten < made.bytesWritten, 'larger blocks: fewer scales');
    assert.equal(JSON.parse(loadOnnxModel(out).metadata.quantization).block_size, 64);
    // inspect counts the packed codes as weights, two per byte: K·N for each layer (no K here pads a block)
    const inspected = JSON.parse(runCli('inspect', out, '--json').stdout);
    const { decodeOnnx } = await import('../src/formats/onnx.js');
    const layers4 = decodeOnnx(readFileSync(out), { source: out }).nodes.filter((n) => n.op === 'MatMulNBits');
    assert.equal(layers4.length, 19);
    assert.equal(inspected.dtypes.int4, layers4.reduce((sum, n) => sum + Number(n.attrs.K.value) * Number(n.attrs.N.value), 0));
    // a transformers.js folder: --float16 makes the q4f16 model, --block-size reaches it
    const tjs = join(dir, 'tjs');
    const t = runCli('quantize', fp32, '-o', tjs, '--to', 'int4-weights', '--float16', '--block-size', '64', '--format', 'transformers.js', '-q');
    assert.equal(t.code, 0, t.stderr);
    const info = JSON.parse(loadOnnxModel(join(tjs, 'onnx', 'model_q4f16.onnx')).metadata.quantization);
    assert.deepEqual([info.block_size, info.activations], [64, 'float16']);
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'x.onnx'), '--to', 'int8-weights', '--block-size', '64'), /--block-size applies to --to int4-weights/, dir, join(dir, 'x.onnx'));
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'x.onnx'), '--to', 'int4-weights', '--block-size', '48'), /block size 48/, dir, join(dir, 'x.onnx'));
    // another mode's flags are refused, not ignored
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'x.onnx'), '--to', 'int4-weights', '--method', 'entropy', '--calib-size', '8'), /--calib-size, --method apply to calibrated int8 \(--to int8\), not --to int4-weights/, dir, join(dir, 'x.onnx'));
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'x.onnx'), '--to', 'int8-weights', '--no-reduce-range'), /--no-reduce-range applies to calibrated int8/, dir, join(dir, 'x.onnx'));
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'x.onnx'), '--to', 'int4-weights', '--fp32-ops', 'Erf'), /--fp32-ops applies to float16 models \(--to fp16, int4-weights --float16\)/, dir, join(dir, 'x.onnx'));
    assertCliRefused(runCli('quantize', fp32, '-o', join(dir, 'tfjs'), '--to', 'int4-weights', '--format', 'tfjs'), /int4-weights is ONNX only .*--to int8-weights/, dir, join(dir, 'tfjs'));
  });

  it("an accuracy budget moves MatMuls off 4 bits to int8 weights, not to float", async () => {
    const out = join(dir, 'q4-budget.onnx');
    const r = await quantize(fp32, out, { to: 'int4-weights', data: F('val'), maxDrop: 0.1 });
    assert.ok(r.budget!.met && r.keptFloat.length > 0, `taken off 4 bits: ${r.keptFloat.join(', ')}`);
    const info = JSON.parse(loadOnnxModel(out).metadata.quantization);
    assert.deepEqual(info.layers_kept_float, [], 'nothing is float');
    assert.equal(r.quantizedLayers, made.quantizedLayers, 'every layer still on quantized weights');
    assert.ok(r.bytesWritten < 0.3 * statSync(fp32).size, `${r.bytesWritten}`);
  });

  it('converts back to a float model computing the same', async () => {
    const back = join(dir, 'back.onnx');
    await convert(q4, back, {});
    const input: Tensor = readNpy(F('val_input.npy'));
    const [a, b] = [await runFloat(await createSession(q4), input), await runFloat(await createSession(back), input)];
    assert.ok(relative(b.data as Float32Array, a.data as Float32Array) <= 1e-5);
    assert.ok(readFileSync(back).length > 4 * made.bytesWritten, 'the weights are float32 again');
    // and the float16 form: its Casts of int8 weights to float16 are read back too
    const h = join(dir, 'q4f16-rt.onnx');
    await quantize(fp32, h, { to: 'int4-weights', float16: true });
    const hBack = join(dir, 'q4f16-back.onnx');
    await convert(h, hBack, {});
    const [c, d] = [await runFloat(await createSession(h), input), await runFloat(await createSession(hBack), input)];
    assert.ok(relative(d.data as Float32Array, c.data as Float32Array) <= 1e-2, `${relative(d.data as Float32Array, c.data as Float32Array)}`);
    assert.deepEqual(loadOnnxModel(hBack).nodes.filter((n) => n.op === 'Cast' && n.inputs.some((v) => v.endsWith('.int8'))), []);
  });
});
