// float16 and int8 (QDQ) conversions on the checkpoint fixtures: structure, model size, closeness
// to PyTorch's golden logits, and what onnxruntime's CPU provider actually runs.
//
// Tolerances, as max |error| / max |golden logit|, with top-1 equal on every row:
//   float16      1e-2   an 11-bit significand rounds each stored value by ≤ 2⁻¹¹ ≈ 4.9e-4; a few
//                       dozen roundings in sequence stay well under 1e-2 (measured 5e-4 … 1e-3)
//   int8 weights 6e-2   per-channel int8 rounds each weight by ≤ scale/2 = max|w_c|/254; through the
//                       fixtures' tiny (8–32 channel), untrained layers this adds up (measured 1.4e-2
//                       V1, 4.0e-2 V2)
//   int8 static  0.15   also rounds every activation fed to a layer to 1/255 of its range, per tensor
//                       (measured 3.5e-2 V1, 9.1e-2 V2)
// The fixtures are far too small and random for these to predict a trained model's accuracy; they
// bound the numerics and catch a broken rewrite, whose error is of the order of the logits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildConvNextGraph } from '../src/convnext/build.js';
import { importConvNext } from '../src/convnext/import.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { Warnings } from '../src/errors.js';
import { attr, checkGraph, consumers, GraphBuilder, producers, type Graph } from '../src/graph/graph.js';
import { float32, halfToFloat, int64, isFloat, numel, tensor, toFloat32, type Tensor } from '../src/graph/tensor.js';
import { onnxBytes } from '../src/formats/onnx.js';
import { convertToFloat16, float16Pass } from '../src/passes/fp16.js';
import { recordingContext } from '../src/passes/pass.js';
import { biasFullRank } from '../src/passes/bias-full-rank.js';
import { expandMatMulIntegerToFloat, matmulIntegerToFloat } from '../src/passes/matmul-integer-to-float.js';
import { dequantizeAsCastMul } from '../src/passes/dequantize-as-cast-mul.js';
import { foldConstants } from '../src/passes/fold-constants.js';
import { toFloat32Graph } from '../src/passes/to-float32.js';
import { pointwiseToMatMul } from '../src/passes/pointwise-layout.js';
import { runPipeline, selectPasses } from '../src/passes/pipeline.js';
import {
  activationsToCalibrate,
  quantizationParams,
  quantizeStatic,
  quantizeWeight,
  quantizeWeightsOnly,
} from '../src/passes/quantize-int8.js';
import { officialKeys } from './helpers/convnext-keys.js';
import { assertClose, checkpointFixtures, fixturePath, golden } from './helpers/fixtures.js';
import { FP16_TOLERANCE, INT8_STATIC_TOLERANCE, INT8_WEIGHTS_TOLERANCE, modelBytes, observeRanges, optimizedOps, runAny } from './helpers/quantize.js';

// Fused kernels vs the same QDQ graph run op by op: float sums in another order move a few
// activations across a rounding boundary, one step each (measured ≤ 4e-2 over all fixtures); u8×s8
// saturation with 8-bit weights on AVX2 shows as 0.06–0.28.
const FUSED_TOLERANCE = 5e-2;

const fixture = (name: string) => checkpointFixtures.find((m) => m.name === name)!;
const graphs = new Map<string, Promise<Graph>>();
/** The fixture's graph after the default pipeline (what convert writes), built once per file. */
function graphOf(name: string): Promise<Graph> {
  let g = graphs.get(name);
  if (!g) {
    const m = fixture(name);
    g = loadCheckpoint(fixturePath(m.path), { stateDictKey: m.state_dict_key ?? undefined })
      .then((c) => runPipeline(buildConvNextGraph(c.model, { imageSize: m.image_size }), selectPasses()))
      .then((r) => r.graph);
    graphs.set(name, g);
  }
  return g;
}

/** The same in the form `quantize` gives int8 (pointwise layers as channels-last MatMuls). */
const int8GraphOf = async (name: string) => pointwiseToMatMul.run(await graphOf(name), recordingContext());

const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;

/** max |got − want| / max |want|, after checking top-1 per row agrees (logits of 10 classes when `want` is bare). */
function assertNear(got: Float32Array, want: Tensor | Float32Array, tolerance: number, what: string): number {
  const ref = want instanceof Float32Array ? float32([want.length / 10, 10], want) : want;
  return assertClose(got, ref, what, tolerance);
}

describe('float16', () => {
  for (const name of ['v1_official', 'v2_official', 'v1_timm_headless']) {
    it(`${name}: float16 everywhere but LayerNorm, float32 I/O, close to PyTorch`, async () => {
      const g = await graphOf(name);
      const { input, output } = golden(fixture(name));
      const warnings = new Warnings();
      const h = convertToFloat16(g, { warnings });
      assert.deepEqual(checkGraph(h), []);
      assert.deepEqual(warnings.items, []);

      const readers = consumers(h);
      for (const [k, t] of h.initializers) {
        if (!isFloat(t.dtype)) continue;
        const ops = (readers.get(k) ?? []).map((n) => n.op);
        if (t.dtype === 'float32') assert.ok(ops.every((op) => op === 'LayerNormalization'), `${k} is float32 but feeds ${ops}`);
        else assert.equal(t.dtype, 'float16', k);
      }
      for (const ln of h.nodes.filter((n) => n.op === 'LayerNormalization')) {
        for (const p of ln.inputs.slice(1).filter(Boolean)) assert.equal(h.initializers.get(p)!.dtype, 'float32', `${ln.name} keeps float32 parameters`);
      }
      assert.deepEqual([h.inputs[0].dtype, h.outputs[0].dtype], ['float32', 'float32']);

      // Casts only where types meet: after the input, around each LayerNorm, before the output
      // (none there when a LayerNorm, already float32, makes the output), and never two in a row.
      const made = producers(h);
      const casts = h.nodes.filter((n) => n.op === 'Cast');
      assert.ok(casts.every((c) => made.get(c.inputs[0])?.op !== 'Cast'), 'no Cast reads a Cast');
      const lnOutput = made.get(h.outputs[0].name)?.op === 'LayerNormalization';
      assert.equal(casts.length, 2 + 2 * count(g, 'LayerNormalization') - (lnOutput ? 2 : 0));

      const got = await runAny(h, input);
      assertNear(got, output, FP16_TOLERANCE, `${name} float16`);
    });
  }

  it('keepIoTypes: false makes the graph input and output float16 (and it runs)', async () => {
    const g = await graphOf('v1_official');
    const { input, output } = golden(fixture('v1_official'));
    const h = convertToFloat16(g, { keepIoTypes: false });
    assert.deepEqual(checkGraph(h), []);
    assert.deepEqual([h.inputs[0].dtype, h.outputs[0].dtype], ['float16', 'float16']);
    assert.equal(count(h, 'Cast'), 2 * count(g, 'LayerNormalization'));
    assertNear(await runAny(h, input), output, FP16_TOLERANCE, 'float16 I/O');
  });

  it('clamps a weight beyond ±65504 and names it in a warning', async () => {
    const g = await graphOf('v1_official');
    const conv = g.nodes.find((n) => n.op === 'Conv')!;
    const w = g.initializers.get(conv.inputs[1])!;
    const data = toFloat32(w).slice();
    data[0] = 1e5;
    data[1] = -7e4;
    const big: Graph = { ...g, initializers: new Map([...g.initializers, [conv.inputs[1], tensor('float32', w.shape, data)]]) };
    const ctx = recordingContext({ warnings: new Warnings() });
    const h = float16Pass().run(big, ctx);
    assert.deepEqual(checkGraph(h), []);
    assert.equal(ctx.warnings!.items.length, 1);
    assert.match(ctx.warnings!.items[0], new RegExp(`2 of ${data.length} values of ${conv.inputs[1].replace(/[.]/g, '\\.')} lie outside ±65504`));
    const half = h.initializers.get(conv.inputs[1])!;
    assert.deepEqual([halfToFloat((half.data as Uint16Array)[0]), halfToFloat((half.data as Uint16Array)[1])], [65504, -65504]);
    assert.ok(ctx.log.length > 0 && ctx.log.every((f) => f.rule === 'float16-cast'));
    // it runs (a weight of 65504 then overflows the float16 activations, as it would have to)
    await runAny(h, golden(fixture('v1_official')).input);
  });

  it('shape tensors untouched; a constant shared with a float32 op exists in both types; scalars follow their reader', async () => {
    // x → Reshape(shape) → MatMul(W) → Add(b) → LayerNorm(γ, b) → Mul(0.5) → y
    const g = new GraphBuilder('t');
    const shape = g.constant('shape', int64([2, 4]));
    const w = g.constant('W', float32([4, 4], Array.from({ length: 16 }, (_, i) => Math.sin(i))));
    const b = g.constant('b', float32([4], [0.1, -0.2, 0.3, 0.4]));
    const gamma = g.constant('gamma', float32([4], [1, 2, 0.5, -1]));
    const r = g.op('Reshape', 'reshape', ['x', shape]);
    const mm = g.op('Add', 'bias', [g.op('MatMul', 'mm', [r, w]), b]);
    const ln = g.op('LayerNormalization', 'ln', [mm, gamma, b], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
    g.op('Mul', 'half', [ln, g.constant('half_const', float32([], [0.5]))], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: [1, 8] }], [{ name: 'y', dtype: 'float32', shape: [2, 4] }]);
    const h = convertToFloat16(graph);
    assert.deepEqual(checkGraph(h), []);
    const dtype = (name: string) => h.initializers.get(name)!.dtype;
    assert.equal(h.initializers.get('shape'), graph.initializers.get('shape'), 'the int64 shape is the same tensor');
    assert.deepEqual([dtype('W'), dtype('gamma'), dtype('half_const'), dtype('b'), dtype('b.float16')], ['float16', 'float32', 'float16', 'float32', 'float16']);
    const add = h.nodes.find((n) => n.name === 'bias')!;
    assert.equal(add.inputs[1], 'b.float16');
    assert.equal(h.nodes.find((n) => n.name === 'ln')!.inputs[2], 'b');
    assert.deepEqual(h.nodes.filter((n) => n.op === 'Cast').map((n) => n.attrs.to), [attr.int(10), attr.int(1), attr.int(10), attr.int(1)]);
    const x = float32([1, 8], [0.5, -1, 2, 0.25, 1.5, -0.75, 0, 3]);
    const want = await runAny(graph, x);
    const got = await runAny(h, x);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 5e-3 * (1 + Math.abs(want[i])), `y[${i}] ${got[i]} vs ${want[i]}`);
  });
});

/** DequantizeLinear nodes reading an int8 constant, by the node that reads their output. */
function weightDq(g: Graph): Map<string, { axis?: number; q: Tensor }> {
  const readers = consumers(g);
  const out = new Map<string, { axis?: number; q: Tensor }>();
  for (const n of g.nodes) {
    const q = g.initializers.get(n.inputs[0]);
    if (n.op !== 'DequantizeLinear' || q?.dtype !== 'int8') continue;
    const axis = n.attrs.axis?.kind === 'int' ? n.attrs.axis.value : undefined;
    for (const r of readers.get(n.outputs[0]) ?? []) out.set(r.name, { axis, q });
  }
  return out;
}

describe('int8 weight-only', () => {
  for (const name of ['v1_official', 'v2_official']) {
    it(`${name}: int8 per-channel weights behind DequantizeLinear, float elsewhere, close to PyTorch`, async () => {
      const g = await int8GraphOf(name);
      const { input, output } = golden(fixture(name));
      const q = quantizeWeightsOnly(g, { method: 'absmax' });
      assert.deepEqual(checkGraph(q), []);
      const dq = weightDq(q);
      for (const n of q.nodes.filter((x) => ['Conv', 'MatMul', 'Gemm'].includes(x.op))) {
        const expectedAxis = n.op === 'MatMul' ? 1 : 0; // MatMul W[in,out]; Conv W[out,…]; the head's Gemm has transB
        assert.equal(dq.get(n.name)?.axis, expectedAxis, `${n.name} reads a per-channel DequantizeLinear on axis ${expectedAxis}`);
        if (n.inputs[2]) assert.equal(q.initializers.get(n.inputs[2])!.dtype, 'float32', `${n.name} keeps a float bias`);
      }
      assert.equal(count(q, 'QuantizeLinear'), 0, 'activations stay float');
      assert.equal(count(q, 'DequantizeLinear'), count(g, 'Conv') + count(g, 'MatMul') + count(g, 'Gemm'));
      assert.deepEqual(JSON.parse(q.metadata.quantization), { mode: 'weight-only', method: 'absmax', layers_kept_float: [] });

      // Size: the int8 data is exactly ¼ of the float weights it replaces; with a float32 scale and
      // an int8 zero point per channel, these 8–32-channel layers pay 5 bytes per channel on top.
      let floatBytes = 0;
      let int8Bytes = 0;
      for (const n of g.nodes.filter((x) => dq.has(x.name))) floatBytes += 4 * numel(g.initializers.get(n.inputs[1])!.shape);
      for (const { q: t } of new Set(dq.values())) int8Bytes += numel(t.shape);
      assert.equal(int8Bytes / floatBytes, 0.25);
      const channels = [...q.nodes].filter((n) => n.op === 'DequantizeLinear').reduce((s, n) => s + numel(q.initializers.get(n.inputs[1])!.shape), 0);
      assert.ok((int8Bytes + 5 * channels) / floatBytes < 0.45);
      const ratio = modelBytes(q).byteLength / modelBytes(g).byteLength;
      assert.ok(ratio < 0.5, `${name}: whole model ${ratio.toFixed(2)} of float32 (LayerNorm parameters, biases and names stay)`);

      assertNear(await runAny(q, input), output, INT8_WEIGHTS_TOLERANCE, `${name} int8 weights`);
    });
  }

  it('a model with 64–512 channels is at most 0.3 of its float32 size', () => {
    const keys = officialKeys({ version: 'v1', depths: [1, 1, 1, 1], widths: [64, 128, 256, 512], numClasses: 100 });
    const sd = new Map([...keys].map(([k, s]) => {
      const t = float32(s);
      for (let i = 0; i < t.data.length; i++) (t.data as Float32Array)[i] = 0.02 * Math.sin(i * 0.37 + k.length);
      return [k, t];
    }));
    const g = buildConvNextGraph(importConvNext(sd, { source: 't' }).model, { imageSize: 64 });
    const q = quantizeWeightsOnly(g);
    assert.deepEqual(checkGraph(q), []);
    const ratio = modelBytes(q).byteLength / modelBytes(g).byteLength;
    assert.ok(ratio <= 0.3, `int8 model is ${ratio.toFixed(3)} of float32`);
    // in the Cast → Mul form too, and after convert's constant folding, which must not widen the
    // weights back to float32 (all but those of at most 85 values, whose float32 copy grows ≤ 256 bytes)
    const folded = foldConstants.run(dequantizeAsCastMul.run(q, recordingContext()), recordingContext());
    const big = q.nodes.filter((n) => n.op === 'DequantizeLinear' && numel(q.initializers.get(n.inputs[0])!.shape) > 85).length;
    assert.ok(big >= 4);
    assert.equal(count(folded, 'Cast'), big);
    const foldedRatio = modelBytes(folded).byteLength / modelBytes(g).byteLength;
    assert.ok(foldedRatio <= 0.3, `Cast → Mul form after fold-constants: ${foldedRatio.toFixed(3)} of float32`);
  });
});

describe('int8 static (QDQ)', () => {
  for (const name of ['v1_official', 'v2_official']) {
    it(`${name}: min/max calibration on the golden batch, onnxruntime runs int8 kernels, top-1 kept`, async () => {
      const g = await int8GraphOf(name);
      const { input, output } = golden(fixture(name));
      const values = activationsToCalibrate(g);
      const convs = g.nodes.filter((n) => n.op === 'Conv');
      // each layer's input (the stem's is the image; a downsample output is the next dwconv's input) and each Conv's output
      const expected = new Set([...g.nodes.filter((n) => ['Conv', 'MatMul', 'Gemm'].includes(n.op)).map((n) => n.inputs[0]), ...convs.map((n) => n.outputs[0])]);
      assert.deepEqual(new Set(values), expected);
      const ranges = await observeRanges(g, values, input);
      const q = quantizeStatic(g, ranges, { method: 'minmax' });
      assert.deepEqual(checkGraph(q), []);
      assert.deepEqual(JSON.parse(q.metadata.quantization), { mode: 'static', method: 'minmax', layers_kept_float: [] });

      // Conv and Gemm biases are int32 at scale s_x·s_w (what QLinearConv and QGemm take as is)
      const made = producers(q);
      for (const n of q.nodes.filter((x) => x.op === 'Conv' || x.op === 'Gemm')) {
        const dq = made.get(n.inputs[2])!;
        assert.equal(dq.op, 'DequantizeLinear');
        assert.equal(q.initializers.get(dq.inputs[0])!.dtype, 'int32');
      }
      // LayerNorm and GELU's Erf stay float ops with float parameters; nothing quantizes their inputs
      assert.equal(count(q, 'LayerNormalization'), count(g, 'LayerNormalization'));
      for (const n of q.nodes.filter((x) => x.op === 'LayerNormalization' || x.op === 'Erf')) {
        assert.notEqual(made.get(n.inputs[0])?.op, 'DequantizeLinear', n.name);
        for (const p of n.inputs.slice(1).filter(Boolean)) assert.equal(q.initializers.get(p)?.dtype, 'float32');
      }

      const ops = await optimizedOps(q);
      assert.equal(ops.get('QLinearConv'), convs.length, 'every Conv runs as QLinearConv');
      assert.equal(ops.get('MatMulIntegerToFloat'), count(g, 'MatMul'), 'every MatMul runs as MatMulIntegerToFloat');
      assert.equal(ops.get('QGemm'), 1, 'the head runs as QGemm');
      for (const op of ['Conv', 'MatMul', 'Gemm']) assert.equal(ops.get(op), undefined, `no float ${op} left`);
      assert.equal(ops.get('LayerNormalization'), count(g, 'LayerNormalization'));

      const float = await runAny(g, input);
      const fused = await runAny(q, input);
      // the fused kernels compute what the QDQ graph says, op by op (7-bit weights: no u8×s8 saturation)
      assertNear(fused, await runAny(q, input, 'disabled'), FUSED_TOLERANCE, `${name} fused vs QDQ reference`);
      assertNear(fused, float, INT8_STATIC_TOLERANCE, `${name} int8 vs float32`);
      assertNear(fused, output, INT8_STATIC_TOLERANCE, `${name} int8 vs PyTorch`);
    });
  }

  it('leaves excluded nodes (by name and by glob) and other op types float', async () => {
    const g = await int8GraphOf('v2_official');
    const { input } = golden(fixture('v2_official'));
    const exclude = ['stem.conv', '*.fc2'];
    const all = await observeRanges(g, activationsToCalibrate(g), input);
    const q = quantizeStatic(g, all, { exclude, method: 'minmax' });
    assert.deepEqual(checkGraph(q), []);
    const fc2 = g.nodes.filter((n) => n.op === 'MatMul' && n.name.endsWith('.fc2')).map((n) => n.name);
    assert.ok(fc2.length > 0);
    const floatWeight = (graph: Graph, node: string) => graph.initializers.get(graph.nodes.find((n) => n.name === node)!.inputs[1])?.dtype === 'float32';
    for (const n of ['stem.conv', ...fc2]) assert.ok(floatWeight(q, n), `${n} keeps its float weight`);
    assert.ok(!floatWeight(q, 'stages.0.blocks.0.fc1'));
    assert.deepEqual(JSON.parse(q.metadata.quantization).layers_kept_float, ['stem.conv', ...fc2]);
    const values = activationsToCalibrate(g, { exclude });
    assert.ok(!values.includes('pixel_values') && !values.includes('stem.conv'), 'no range asked for what stays float');

    const onlyMatMul = activationsToCalibrate(g, { opTypes: ['MatMul'] });
    assert.deepEqual(onlyMatMul, g.nodes.filter((n) => n.op === 'MatMul').map((n) => n.inputs[0]));
    const m = quantizeStatic(g, new Map(onlyMatMul.map((v) => [v, all.get(v)!])), { opTypes: ['MatMul'] });
    assert.deepEqual(checkGraph(m), []);
    for (const n of m.nodes.filter((x) => x.op === 'Conv' || x.op === 'Gemm')) assert.ok(floatWeight(m, n.name), `${n.name} is not a MatMul: float`);
    assert.equal(count(m, 'QuantizeLinear'), onlyMatMul.length);
    const ops = await optimizedOps(m);
    assert.equal(ops.get('MatMulIntegerToFloat'), count(g, 'MatMul'));
    assert.equal(ops.get('QLinearConv'), undefined);
  });

  it('names the values it has no range for, and refuses op types it cannot quantize', async () => {
    const g = await int8GraphOf('v1_official');
    assert.throws(() => quantizeStatic(g, new Map()), /no calibration range for \d+ value\(s\): pixel_values, stem\.conv/);
    assert.throws(() => activationsToCalibrate(g, { opTypes: ['Add'] }), /cannot quantize Add/);
  });

  it('int8 activations: onnxruntime (x86) leaves the depthwise convs to float Conv, hence uint8 by default', async () => {
    const g = await int8GraphOf('v1_official');
    const { input } = golden(fixture('v1_official'));
    const q = quantizeStatic(g, await observeRanges(g, activationsToCalibrate(g), input), { activationType: 'int8' });
    assert.deepEqual(checkGraph(q), []);
    assert.equal(q.initializers.get(producers(q).get(q.nodes.find((n) => n.name === 'stem.conv')!.inputs[0])!.inputs[2])!.dtype, 'int8');
    const ops = await optimizedOps(q);
    const depthwise = g.nodes.filter((n) => n.op === 'Conv' && n.name.endsWith('dwconv')).length;
    assert.ok(depthwise > 0);
    assert.equal((ops.get('QLinearConv') ?? 0) + (ops.get('Conv') ?? 0), count(g, 'Conv'));
    assert.ok((ops.get('QLinearConv') ?? 0) >= count(g, 'Conv') - depthwise, 'the dense convs still fuse');
    assert.equal(ops.get('MatMulIntegerToFloat'), count(g, 'MatMul'));
    assertNear(await runAny(q, input), await runAny(g, input), INT8_STATIC_TOLERANCE, 'int8 activations');
  });

  it('vector activation scales (the WebGPU form): the same function as the scalar form, no scale of length 1', async () => {
    for (const name of ['v1_official', 'v2_official']) {
      const g = await int8GraphOf(name);
      const { input } = golden(fixture(name));
      const ranges = await observeRanges(g, activationsToCalibrate(g), input);
      const scalar = quantizeStatic(g, ranges, { activationType: 'int8' });
      const vector = quantizeStatic(g, ranges, { activationType: 'int8', vectorActivationScales: true });
      assert.deepEqual(checkGraph(vector), []);
      const made = producers(vector);
      let activations = 0;
      for (const n of vector.nodes.filter((x) => x.op === 'QuantizeLinear' || (x.op === 'DequantizeLinear' && made.get(x.inputs[0])?.op === 'QuantizeLinear'))) {
        const [s, z] = [vector.initializers.get(n.inputs[1])!, vector.initializers.get(n.inputs[2])!];
        assert.equal(s.shape.length, 1, `${n.name}: a vector scale`);
        assert.ok(s.shape[0] > 1, `${n.name}: longer than 1 (JSEP reads [1] as per-tensor)`);
        assert.deepEqual(z.shape, s.shape);
        assert.equal(z.dtype, 'int8', `${n.name}: int8 (JSEP subtracts uint8 zero points in u32)`);
        assert.equal(new Set(toFloat32(s)).size, 1, `${n.name}: one value repeated`);
        activations++;
      }
      assert.ok(activations >= 2 * count(g, 'MatMul'));
      // op by op (no fusion takes vector activation scales), so compare with the scalar form op by op
      assertNear(await runAny(vector, input), await runAny(scalar, input, 'disabled'), 1e-6, `${name} vector vs scalar scales`);
    }
    const g = await int8GraphOf('v1_official');
    assert.throws(() => quantizeStatic(g, new Map(), { vectorActivationScales: true }), /need int8 activations/);
  });
});

describe("matmul-integer-to-float: the int8 pointwise layers with their bias as onnxruntime's MatMulIntegerToFloat", () => {
  for (const name of ['v1_official', 'v2_official']) {
    it(`${name}: every MatMul and its bias Add become one node; onnxruntime computes the same; read back as QDQ`, async () => {
      const g = biasFullRank.run(await int8GraphOf(name), recordingContext());
      const { input } = golden(fixture(name));
      const q = quantizeStatic(g, await observeRanges(g, activationsToCalibrate(g), input), { method: 'minmax' });
      const ctx = recordingContext();
      const fused = matmulIntegerToFloat.run(q, ctx);
      assert.deepEqual(checkGraph(fused), []);
      const matmuls = count(g, 'MatMul');
      assert.ok(matmuls >= 8);
      assert.equal(ctx.log.length, matmuls);
      assert.equal(count(fused, 'MatMul'), 0);
      assert.equal(count(fused, 'Add'), count(q, 'Add') - matmuls, 'the bias Adds are gone, the residual Adds stay');
      const nodes = fused.nodes.filter((n) => n.op === 'MatMulIntegerToFloat');
      assert.equal(nodes.length, matmuls);
      for (const n of nodes) {
        assert.equal(n.domain, 'com.microsoft');
        assert.equal(n.inputs.length, 7, `${n.name}: with its bias`);
        assert.equal(fused.initializers.get(n.inputs[1])!.dtype, 'int8');
        assert.equal(fused.initializers.get(n.inputs[6])!.shape.length, 1, 'a 1-D bias');
      }
      assert.equal(fused.opsets['com.microsoft'], 1);
      assert.equal(matmulIntegerToFloat.run(fused, recordingContext()), fused, 'nothing left to change');

      const ops = await optimizedOps(fused);
      assert.equal(ops.get('MatMulIntegerToFloat'), matmuls);
      const unfused = await optimizedOps(q);
      assert.equal(unfused.get('MatMulIntegerToFloat'), matmuls, 'onnxruntime fuses DQ → MatMul itself');
      assert.equal((unfused.get('Add') ?? 0) - (ops.get('Add') ?? 0), matmuls, 'but not the bias Add after it');
      // the same integer products and scales; the bias joins in the GEMM's output stage instead of after it
      const qdq = await runAny(q, input);
      assertNear(await runAny(fused, input), qdq, 1e-5, `${name} fused vs QDQ`);

      const expanded = expandMatMulIntegerToFloat(fused);
      assert.equal(count(expanded, 'MatMulIntegerToFloat'), 0);
      assert.equal(count(expanded, 'MatMul'), matmuls);
      assertNear(await runAny(expanded, input), qdq, 1e-5, `${name} expanded back vs QDQ`);
      const dir = mkdtempSync(join(tmpdir(), 'mitf-'));
      try {
        writeFileSync(join(dir, 'm.onnx'), onnxBytes(fused));
        const read = loadOnnxModel(join(dir, 'm.onnx'));
        assert.equal(read.nodes.filter((n) => n.domain !== '').length, 0, 'read back in standard ops only');
        assertNear(await runAny(read, input), qdq, 1e-5, `${name} read back vs QDQ`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('dequantize-as-cast-mul: int8 weights that onnxruntime folds into float32 ones at load', () => {
  // v1 in the float layout (1×1 Convs, per-channel scales on axis 0), which quantize --to int8-weights
  // keeps with this pass; v2 with its pointwise layers as MatMuls (scales on axis 1), as transformers.js's q8 had them
  for (const [name, layout] of [['v1_official', 'conv'], ['v2_official', 'matmul']] as const) {
    it(`${name} (${layout} layout): each weight DequantizeLinear becomes Cast → Mul, the same function; onnxruntime runs neither; read back as int8`, async () => {
      const g = layout === 'conv' ? await graphOf(name) : await int8GraphOf(name);
      const { input, output } = golden(fixture(name));
      const q = quantizeWeightsOnly(g, { method: 'absmax' });
      const ctx = recordingContext();
      const cast = dequantizeAsCastMul.run(q, ctx);
      assert.deepEqual(checkGraph(cast), []);
      const layers = count(q, 'DequantizeLinear');
      assert.ok(layers >= 8);
      assert.equal(ctx.log.length, layers);
      assert.equal(count(cast, 'DequantizeLinear'), 0);
      assert.equal(count(cast, 'Cast'), layers);
      for (const n of cast.nodes.filter((x) => x.op === 'Cast')) assert.equal(cast.initializers.get(n.inputs[0])!.dtype, 'int8', `${n.name} reads the int8 weight`);
      assert.equal(dequantizeAsCastMul.run(cast, recordingContext()), cast, 'nothing left to change');
      // a Cast and a Mul per layer, named after it: these fixtures' long names add 7 %; quantize compacts them
      assert.ok(modelBytes(cast).byteLength <= 1.1 * modelBytes(q).byteLength, 'the file stays int8-sized');

      // each int8 value is exact in float32 and meets its channel's scale once: the model of the int8
      // weights dequantized ahead of time. (onnxruntime's QDQ form is that too for Convs; its DQ →
      // MatMul becomes MatMulNBits, which computes otherwise: 1.1e-2 off on v2 here.)
      const exact = await runAny(toFloat32Graph(q).graph, input);
      assertNear(await runAny(cast, input), exact, 1e-6, `${name} Cast → Mul vs the weights dequantized ahead`);
      assertNear(exact, output, INT8_WEIGHTS_TOLERANCE, `${name} int8 weights vs PyTorch`);
      if (layout === 'conv') assertNear(await runAny(q, input), exact, 1e-6, `${name} QDQ form in onnxruntime`);
      // what the session runs: the QDQ form dequantizes on every run, the Cast → Mul form is folded at load
      assert.ok((await optimizedOps(q)).get('DequantizeLinear')! > 0, 'onnxruntime keeps DequantizeLinear');
      const ops = await optimizedOps(cast);
      assert.equal((ops.get('Cast') ?? 0) + (ops.get('DequantizeLinear') ?? 0), 0, [...ops].join(' '));

      const back = toFloat32Graph(cast);
      assert.equal(back.precision, 'int8', 'read back as an int8-weight model');
      assert.equal(count(back.graph, 'Cast'), 0);
      assertNear(await runAny(back.graph, input), exact, 1e-6, `${name} back to float32`);
    });
  }
});

describe('quantization parameters (onnxruntime conventions)', () => {
  it('widens the range to include 0, rounds the zero point half to even, and gives scale 1 to an empty range', () => {
    assert.deepEqual(quantizationParams({ min: 0.5, max: 2 }, 'uint8'), { scale: Math.fround(2 / 255), zeroPoint: 0 });
    assert.deepEqual(quantizationParams({ min: -1, max: 3 }, 'uint8'), { scale: Math.fround(4 / 255), zeroPoint: 64 });
    assert.deepEqual(quantizationParams({ min: -3, max: -1 }, 'uint8'), { scale: Math.fround(3 / 255), zeroPoint: 255 });
    assert.deepEqual(quantizationParams({ min: -1, max: 1 }, 'int8'), { scale: Math.fround(2 / 255), zeroPoint: 0 }); // −128 + 127.5 → 0
    assert.deepEqual(quantizationParams({ min: -2, max: 1 }, 'int8', { symmetric: true }), { scale: Math.fround(2 / 127), zeroPoint: 0 });
    assert.deepEqual(quantizationParams({ min: -2, max: 1 }, 'uint8', { symmetric: true }), { scale: Math.fround(4 / 255), zeroPoint: 128 });
    assert.deepEqual(quantizationParams({ min: -2, max: 1 }, 'int8', { symmetric: true, reduceRange: true }), { scale: Math.fround(2 / 64), zeroPoint: 0 });
    assert.deepEqual(quantizationParams({ min: 0, max: 0 }, 'uint8'), { scale: 1, zeroPoint: 0 });
    assert.throws(() => quantizationParams({ min: 1, max: NaN }, 'uint8'), /invalid range/);
  });

  it('quantizes weights per slice of the given axis, within half a step', () => {
    // MatMul W[in=3, out=2]: one scale per column (axis 1)
    const w = float32([3, 2], [0.5, -4, -1, 2, 0.25, 1]);
    const { values, scales } = quantizeWeight(w, 1);
    assert.deepEqual([...scales], [Math.fround(1 / 127), Math.fround(4 / 127)]);
    assert.deepEqual([...values], [64, -127, -127, 64, 32, 32]);
    for (let j = 0; j < 6; j++) assert.ok(Math.abs(values[j] * scales[j % 2] - (w.data as Float32Array)[j]) <= scales[j % 2] / 2 + 1e-7);
    // Conv W[out=2, in=1, 1, 2]: one scale per output channel (axis 0); an all-zero channel gets scale 1
    const c = quantizeWeight(float32([2, 1, 1, 2], [0, 0, 3, -1.5]), 0);
    assert.deepEqual([...c.scales], [1, Math.fround(3 / 127)]);
    assert.deepEqual([...c.values], [0, 0, 127, -64]);
    assert.deepEqual([...quantizeWeight(float32([2], [1, -0.5]), undefined, true).values], [64, -32]);
  });
});
