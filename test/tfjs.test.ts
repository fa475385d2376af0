// The TF.js writer: every checkpoint fixture (and the torch-exported ONNX fixtures) written as a
// graph model, loaded from disk with tfjs-converter and run on the cpu and wasm backends, gives
// PyTorch's outputs; quantized weights stay close; hand-made graphs cover the layout cases the
// ConvNeXt graphs do not (asymmetric pads, channel-axis norms, Gemm, reshapes) against onnxruntime.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { modelMetadata } from '../src/model/metadata.js';
import { buildConvNextGraph } from '../src/convnext/build.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { InputError, UnsupportedError } from '../src/errors.js';
import { decodeOnnx } from '../src/formats/onnx.js';
import { encodeTfjs, tfjsOpCounts, writeTfjsModel, type TfjsOptions } from '../src/formats/tfjs/index.js';
import { attr, GraphBuilder, type Graph } from '../src/graph/graph.js';
import { float32, type Tensor } from '../src/graph/tensor.js';
import { runGraph } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel, tfjs, type TfjsBackend } from '../src/runtime/tfjs.js';
import { TOOL_VERSION } from '../src/version.js';
import { assertClose, checkpointFixtures, fixturePath, golden, manifest, type ModelFixture } from './helpers/fixtures.js';

const BACKENDS = ['cpu', 'wasm'] as const;
const dir = mkdtempSync(join(tmpdir(), 'convnext-tfjs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  const { tf } = await tfjs();
  await tf.setBackend('wasm'); // fails here, once, if the wasm binaries cannot be found
});

/** Runs a written model on NCHW input (fed NHWC); a 4-D output is turned back to NCHW. */
async function runTfjs(folder: string, input: Tensor, backend: TfjsBackend): Promise<{ data: Float32Array; shape: number[] }> {
  const model = await loadTfjsModel(folder, backend);
  try {
    const y = await model.run({ data: input.data as Float32Array, shape: input.shape });
    return { data: y.data, shape: y.dims };
  } finally {
    model.dispose();
  }
}

async function fixtureGraph(m: ModelFixture): Promise<Graph> {
  if (m.format === 'onnx') return decodeOnnx(readFileSync(fixturePath(m.path)), { source: m.path });
  const loaded = await loadCheckpoint(fixturePath(m.path), { stateDictKey: m.state_dict_key ?? undefined, imageSize: m.image_size });
  return buildConvNextGraph(loaded.model, { imageSize: loaded.imageSize, metadata: modelMetadata(loaded, fixturePath(m.path)) });
}

/** max |got − want| / max |want|, and whether every row keeps its top-1. */
function compare(got: ArrayLike<number>, want: Tensor): { ratio: number; top1: boolean } {
  const ref = want.data as Float32Array;
  let maxRef = 0;
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
  }
  const cols = want.shape[want.shape.length - 1];
  const argmax = (a: ArrayLike<number>, r: number) => {
    let best = 0;
    for (let c = 1; c < cols; c++) if (a[r * cols + c] > a[r * cols + best]) best = c;
    return best;
  };
  let top1 = true;
  for (let r = 0; r < ref.length / cols; r++) top1 &&= argmax(got, r) === argmax(ref, r);
  return { ratio: maxErr / maxRef, top1 };
}

describe('TF.js graph model matches PyTorch on every fixture (cpu and wasm)', () => {
  const fixtures = [...checkpointFixtures, ...manifest.models.filter((m) => m.format === 'onnx')];
  for (const m of fixtures) {
    it(`${m.name} (${m.format} ${m.version}, ${m.dtype})`, async (t) => {
      const folder = join(dir, m.name);
      writeTfjsModel(await fixtureGraph(m), folder);
      const { input, output } = golden(m);
      for (const backend of BACKENDS) {
        const y = await runTfjs(folder, input, backend);
        assert.deepEqual(y.shape, output.shape);
        const ratio = assertClose(y.data, output, `${m.name} on ${backend}`);
        t.diagnostic(`${backend}: max |error| = ${ratio.toExponential(2)} × max |logit|`);
      }
    });
  }
});

describe('model.json', () => {
  it('has the graph-model fields, an NHWC signature and structured metadata', async () => {
    const m = checkpointFixtures.find((f) => f.name === 'v1_hf')!;
    const { modelJson, shards } = encodeTfjs(await fixtureGraph(m));
    assert.equal(modelJson.format, 'graph-model');
    assert.equal(modelJson.convertedBy, `convnext-toolchain ${TOOL_VERSION}`);
    assert.deepEqual(modelJson.modelTopology.library, {});
    assert.equal(typeof modelJson.modelTopology.versions.producer, 'number');
    const input = modelJson.signature.inputs.pixel_values;
    assert.equal(input.name, 'pixel_values:0');
    assert.equal(input.dtype, 'DT_FLOAT');
    assert.deepEqual(input.tensorShape.dim.map((d) => Number(d.size)), [-1, 64, 64, 3]);
    assert.deepEqual(modelJson.signature.outputs.logits.tensorShape.dim.map((d) => Number(d.size)), [-1, 10]);
    const meta = modelJson.userDefinedMetadata as { labels: string[]; preprocessing: { crop: number }; source: { variant: string }; converter: string };
    assert.equal(meta.labels.length, 10);
    assert.equal(meta.preprocessing.crop, 64);
    assert.equal(typeof meta.source.variant, 'string');
    assert.match(meta.converter, /^convnext-toolchain /);
    const specs = modelJson.weightsManifest[0].weights;
    const bytes = specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
    assert.equal(shards.reduce((n, s) => n + s.byteLength, 0), bytes);
    assert.ok(specs.every((w) => w.dtype === 'float32' || w.dtype === 'int32'));
  });

  it('op counts: no Transpose in a ConvNeXt graph, GELU in three ops, bias and 1×1 convs fused, spatial means pooled', async (t) => {
    for (const name of ['v1_timm', 'v2_timm']) {
      const counts = tfjsOpCounts(encodeTfjs(await fixtureGraph(checkpointFixtures.find((f) => f.name === name)!)).modelJson);
      t.diagnostic(`${name}: ${JSON.stringify(counts)}`);
      assert.equal(counts.Transpose, undefined);
      assert.equal(counts.Reshape, 1); // the head's pooled [N, 1, 1, C] → [N, C]
      assert.equal(counts.Mean, name === 'v1_timm' ? 22 : 22 + 6); // LayerNorm's mean and variance (+ GRN's channel mean)
      assert.equal(counts.BatchMatMulV2, undefined);
      assert.equal(counts.Erf, 6);
      assert.equal(counts._FusedConv2D, 16); // stem, 3 downsamples, 2 per block
      assert.equal(counts.FusedDepthwiseConv2dNative, 6);
      assert.equal(counts._FusedMatMul, 1); // the head
    }
    const v1 = tfjsOpCounts(encodeTfjs(await fixtureGraph(checkpointFixtures.find((f) => f.name === 'v1_timm')!)).modelJson);
    // Per block: LN 9 (Mean, Sub, Square, Mean, AddV2, Rsqrt, Mul, Mul, AddV2), GELU 3 (Erf, AddV2, Mul).
    assert.equal(v1.Mul, 11 * 2 + 6 + 6); // LN normalise+scale, GELU, LayerScale
    const v2 = tfjsOpCounts(encodeTfjs(await fixtureGraph(checkpointFixtures.find((f) => f.name === 'v2_timm')!)).modelJson);
    // GRN: ‖x‖ over H, W as Sqrt(AvgPool(x²)·HW), then Mean, AddV2, RealDiv, Mul, Mul, AddV2, AddV2;
    // GELU keeps a ·1/√2 (no linear layer after it).
    assert.deepEqual([v2.AvgPool, v2.Sqrt, v2.RealDiv, v2.Mul], [1 + 6, 6, 6, 11 * 2 + 6 * 2 + 6 * 3]);
  });
});

describe('weight formats', () => {
  // Bounds hold with margin on these small random-weight models; the measured errors are reported.
  const bounds: Record<string, number> = { float16: 2e-3, uint16: 1e-3, uint8: 1e-1, int8: 5e-2 };
  for (const name of ['v1_timm', 'v2_timm']) {
    for (const weights of ['float16', 'uint16', 'uint8', 'int8'] as const) {
      it(`${name} with ${weights} weights`, async (t) => {
        const m = checkpointFixtures.find((f) => f.name === name)!;
        const folder = join(dir, `${name}-${weights}`);
        const graph = await fixtureGraph(m);
        const { modelJson } = writeTfjsModel(graph, folder, { weights });
        const specs = modelJson.weightsManifest[0].weights;
        const quantized = specs.filter((w) => w.quantization);
        assert.ok(quantized.length >= 16, 'conv and matmul weights are quantized');
        assert.ok(quantized.every((w) => w.quantization!.dtype === (weights === 'int8' ? 'uint8' : weights)));
        assert.ok(specs.some((w) => /bias/.test(w.name) && !w.quantization), 'biases stay float32');
        const full = encodeTfjs(graph).shards.reduce((n, s) => n + s.byteLength, 0);
        const size = readdirSync(folder).filter((f) => f.endsWith('.bin')).reduce((n, f) => n + readFileSync(join(folder, f)).byteLength, 0);
        const { input, output } = golden(m);
        for (const backend of BACKENDS) {
          const y = await runTfjs(folder, input, backend);
          const { ratio, top1 } = compare(y.data, output);
          t.diagnostic(`${backend}: max |error| = ${ratio.toExponential(2)} × max |logit|, top-1 ${top1 ? 'same' : 'differs'}, ${size} of ${full} bytes`);
          assert.ok(ratio <= bounds[weights], `${weights}: error ${ratio.toExponential(2)} over ${bounds[weights]}`);
          if (weights !== 'uint8') assert.ok(top1, 'top-1 unchanged');
        }
      });
    }
  }

  it('gelu: tanh runs the approximation (close, not exact)', async (t) => {
    const m = checkpointFixtures.find((f) => f.name === 'v1_timm')!;
    const folder = join(dir, 'v1-tanh');
    const { modelJson } = writeTfjsModel(await fixtureGraph(m), folder, { gelu: 'tanh' });
    const counts = tfjsOpCounts(modelJson);
    assert.equal(counts.Erf, undefined);
    assert.equal(counts.Sigmoid, 6);
    const { input, output } = golden(m);
    const { ratio, top1 } = compare((await runTfjs(folder, input, 'cpu')).data, output);
    t.diagnostic(`max |error| = ${ratio.toExponential(2)} × max |logit|`);
    assert.ok(ratio < 2e-3 && top1);
  });
});

describe('writing', () => {
  const tiny = () => {
    const g = new GraphBuilder('tiny');
    g.op('Relu', 'relu', ['x'], {}, 'y');
    return g.build([{ name: 'x', dtype: 'float32', shape: ['n', 4] }], [{ name: 'y', dtype: 'float32', shape: ['n', 4] }]);
  };

  it('splits weights into shards of shardSize, named group1-shard{K}of{N}.bin', async () => {
    const m = checkpointFixtures.find((f) => f.name === 'v1_official_train')!;
    const folder = join(dir, 'sharded');
    const { modelJson } = writeTfjsModel(await fixtureGraph(m), folder, { shardSize: 4096 });
    const paths = modelJson.weightsManifest[0].paths;
    assert.ok(paths.length > 2);
    paths.forEach((p, k) => assert.equal(p, `group1-shard${k + 1}of${paths.length}.bin`));
    assert.deepEqual(readdirSync(folder).sort(), ['model.json', ...paths].sort());
    assert.ok(paths.slice(0, -1).every((p) => readFileSync(join(folder, p)).byteLength === 4096));
    const { input, output } = golden(m);
    assertClose((await runTfjs(folder, input, 'cpu')).data, output, 'sharded');
    // Rewriting with one shard replaces the model and removes the now unused shards.
    writeTfjsModel(await fixtureGraph(m), folder);
    assert.deepEqual(readdirSync(folder).sort(), ['group1-shard1of1.bin', 'model.json']);
  });

  it('refuses a folder with other files unless forced, and leaves no temporary files', () => {
    const folder = join(dir, 'occupied');
    mkdirSync(folder);
    writeFileSync(join(folder, 'notes.txt'), 'mine');
    assert.throws(() => writeTfjsModel(tiny(), folder), (e: unknown) => e instanceof InputError && /other files \(notes\.txt\)/.test(e.message));
    assert.deepEqual(readdirSync(folder), ['notes.txt']);
    writeTfjsModel(tiny(), folder, { force: true });
    assert.deepEqual(readdirSync(folder).sort(), ['group1-shard1of1.bin', 'model.json', 'notes.txt']);
    assert.throws(() => writeTfjsModel(tiny(), join(dir, 'no', 'such', 'parent')), InputError);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), []);
  });

  it('an unsupported op is one UnsupportedError naming each op, and nothing is written', () => {
    const g = new GraphBuilder('bad');
    const a = g.op('LSTM', 'lstm', ['x']);
    const b = g.op('NonMaxSuppression', 'nms', [a]);
    g.op('Relu', 'relu', [b], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: ['n', 4] }], [{ name: 'y', dtype: 'float32', shape: ['n', 4] }]);
    const folder = join(dir, 'unsupported');
    assert.throws(
      () => writeTfjsModel(graph, folder),
      (e: unknown) => e instanceof UnsupportedError && /does not support ops LSTM \(node lstm\), NonMaxSuppression/.test(e.message),
    );
    assert.equal(existsSync(folder), false);
  });
});

// --- hand-made graphs, checked against onnxruntime ------------------------------------------------

let seed = 1;
function random(shape: number[]): Tensor {
  const t = float32(shape);
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    d[i] = seed / 0x7fffffff - 0.5;
  }
  return t;
}

async function againstOnnxruntime(t: { diagnostic(s: string): void }, name: string, graph: Graph, input: Tensor, options: TfjsOptions = {}, tolerance = 1e-5): Promise<Record<string, number>> {
  const want = await runGraph(graph, input);
  const folder = join(dir, `graph-${name}-${options.weights ?? 'float32'}-${options.gelu ?? 'erf'}`);
  const { modelJson } = writeTfjsModel(graph, folder, options);
  for (const backend of BACKENDS) {
    const got = await runTfjs(folder, input, backend);
    assert.deepEqual(got.shape, want.dims);
    const { ratio } = compare(got.data, float32([...want.dims], want.data));
    t.diagnostic(`${backend}: max |error| = ${ratio.toExponential(2)} × max |output|`);
    assert.ok(ratio < tolerance, `${name} on ${backend}: ${ratio}`);
  }
  return tfjsOpCounts(modelJson);
}

const nchw = (c: number, h: number, w: number) => [{ name: 'x', dtype: 'float32' as const, shape: ['n', c, h, w] }];
const out = (shape: (number | string)[]) => [{ name: 'y', dtype: 'float32' as const, shape }];

describe('layouts and ops on hand-made graphs (against onnxruntime)', () => {
  it('convolutions: SAME-equivalent and asymmetric pads, depthwise ×2 with a bias folded from an Add', async (t) => {
    const g = new GraphBuilder('convs');
    const c1 = g.op('Conv', 'c1', ['x', g.constant('w1', random([6, 4, 3, 3])), g.constant('b1', random([6]))], {
      strides: attr.ints([2, 2]),
      pads: attr.ints([1, 1, 1, 1]),
    });
    const c2 = g.op('Conv', 'c2', [c1, g.constant('w2', random([6, 6, 2, 2]))], { pads: attr.ints([0, 1, 1, 0]) });
    const dw = g.op('Conv', 'dw', [c2, g.constant('w3', random([12, 1, 3, 3]))], { group: attr.int(6), pads: attr.ints([1, 1, 1, 1]) });
    g.op('Add', 'bias', [dw, g.constant('b3', random([1, 12, 1, 1]))], {}, 'y');
    const graph = g.build(nchw(4, 9, 7), out(['n', 12, 5, 4]));
    const input = random([2, 4, 9, 7]);
    const counts = await againstOnnxruntime(t, 'convs', graph, input);
    assert.deepEqual([counts._FusedConv2D, counts.Conv2D, counts.Pad, counts.FusedDepthwiseConv2dNative, counts.AddV2], [1, 1, 1, 1, undefined]);
    // int8: per-channel scales (depthwise channel c·m + j) multiply the outputs; filters stay Consts.
    const int8 = await againstOnnxruntime(t, 'convs', graph, input, { weights: 'int8' }, 2e-2);
    assert.equal(int8.Mul, 3);
    const { modelJson } = encodeTfjs(graph, { weights: 'int8' });
    const op = new Map(modelJson.modelTopology.node.map((n) => [n.name, n.op]));
    for (const n of modelJson.modelTopology.node.filter((n) => /Conv/.test(n.op))) assert.equal(op.get(n.input[1]), 'Const');
  });

  it('norms and reductions over the channel axis of NCHW activations', async (t) => {
    const g = new GraphBuilder('norms');
    const bn = g.op('BatchNormalization', 'bn', ['x', ...['s', 'b', 'm'].map((n) => g.constant(n, random([4]))), g.constant('v', float32([4], [0.5, 1, 2, 3]))]);
    const ln = g.op('LayerNormalization', 'ln', [bn, g.constant('ln.s', random([4, 5, 6])), g.constant('ln.b', random([4, 5, 6]))], { axis: attr.int(1) });
    const sm = g.op('Softmax', 'sm', [ln], { axis: attr.int(1) });
    const cl = g.op('Transpose', 'to_nhwc', [sm], { perm: attr.ints([0, 2, 3, 1]) });
    const ln2 = g.op('LayerNormalization', 'ln2', [cl, g.constant('ones', float32([4], [1, 1, 1, 1]))], { axis: attr.int(-1), epsilon: attr.float(1e-6) });
    const axes = g.constant('axes', { dtype: 'int64', shape: [1], data: BigInt64Array.of(-3n) }); // ReduceSum-13 reads axes as an input
    g.op('ReduceSum', 'sum', [ln2, axes], { keepdims: attr.int(0) }, 'y');
    const counts = await againstOnnxruntime(t, 'norms', g.build(nchw(4, 5, 6), out(['n', 6, 4])), random([2, 4, 5, 6]));
    assert.equal(counts.Mean, 4);
    // BatchNormalization 1, LN with scale 2, LN with Scale = ones 1 (normalise only), ReduceSum over H as AvgPool·H 1
    assert.deepEqual([counts.Mul, counts.AvgPool], [5, 1]);
  });

  it('dense layers: Flatten, Gemm with alpha/beta, MatMul on rank 3, Concat, Reshape', async (t) => {
    const g = new GraphBuilder('dense');
    const pool = g.op('GlobalAveragePool', 'pool', ['x']);
    const flat = g.op('Flatten', 'flat', [pool]);
    const gemm = g.op('Gemm', 'gemm', [flat, g.constant('gw', random([6, 4])), g.constant('gc', random([6]))], {
      transB: attr.int(1),
      alpha: attr.float(0.5),
      beta: attr.float(2),
    });
    const seq = g.op('Reshape', 'seq', [gemm, g.constant('shape', { dtype: 'int64', shape: [3], data: BigInt64Array.from([0n, 3n, 2n]) })]);
    const mm = g.op('MatMul', 'mm', [seq, g.constant('mw', random([2, 5]))]);
    const mb = g.op('Add', 'mb', [mm, g.constant('mb.b', random([5]))]);
    const both = g.op('Concat', 'cat', [mb, g.constant('extra', random([2, 3, 5]))], { axis: attr.int(-1) });
    g.op('Relu', 'relu', [both], {}, 'y');
    await againstOnnxruntime(t, 'dense', g.build(nchw(4, 3, 3), out(['n', 3, 10])), random([2, 4, 3, 3]));
  });

  it('GELU in each of torch’s associations, with and without neighbouring weights', async (t) => {
    const g = new GraphBuilder('gelus');
    const k = (name: string, v: number) => g.constant(name, float32([], [v]));
    const [sqrt2, one, half] = [k('sqrt2', Math.SQRT2), k('one', 1), k('half', 0.5)];
    const erf1 = (x: string, p: string) => g.op('Add', `${p}/add`, [g.op('Erf', `${p}/erf`, [g.op('Div', `${p}/div`, [x, sqrt2])]), one]);
    // 1: on the graph input, feeding fc1; (x·(1+erf))·0.5
    const a = g.op('Mul', 'a/m2', [g.op('Mul', 'a/m1', ['x', erf1('x', 'a')]), half]);
    // 2: between fc1 (MatMul+Add) and fc2 (MatMul); (x·0.5)·(1+erf)
    const h = g.op('Add', 'fc1/add', [g.op('MatMul', 'fc1', [a, g.constant('fc1.w', random([6, 8]))]), g.constant('fc1.b', random([8]))]);
    const b = g.op('Mul', 'b/m1', [g.op('Mul', 'b/half', [h, half]), erf1(h, 'b')]);
    const c = g.op('MatMul', 'fc2', [b, g.constant('fc2.w', random([8, 6]))]);
    // 3: after fc2, into the graph output; x·((1+erf)·0.5)
    g.op('Mul', 'c/m2', [c, g.op('Mul', 'c/m1', [erf1(c, 'c'), half])], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: ['n', 5, 6] }], out(['n', 5, 6]));
    const input = float32([2, 5, 6], (random([2, 5, 6]).data as Float32Array).map((v) => v * 6));
    const counts = await againstOnnxruntime(t, 'gelus', graph, input);
    assert.equal(counts.Erf, 3);
    assert.equal(counts.RealDiv, undefined);
    // The tanh approximation through the same folds: close to exact GELU, not equal.
    const tanh = await againstOnnxruntime(t, 'gelus', graph, input, { gelu: 'tanh' }, 5e-3);
    assert.deepEqual([tanh.Erf, tanh.Sigmoid], [undefined, 3]);
  });
});
