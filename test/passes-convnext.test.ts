// The ConvNeXt passes preserve PyTorch's outputs on every fixture, fire where they should, and
// refuse folds that would be inexact.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConvNextGraph } from '../src/convnext/build.js';
import { importConvNext } from '../src/convnext/import.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { attr, checkGraph, GraphBuilder, type Graph } from '../src/graph/graph.js';
import { float32, toFloat32 } from '../src/graph/tensor.js';
import { foldGrnBeta } from '../src/passes/fold-grn-beta.js';
import { foldLayerNormAffine } from '../src/passes/fold-layernorm-affine.js';
import { foldLayerScale } from '../src/passes/fold-layerscale.js';
import { biasFullRank } from '../src/passes/bias-full-rank.js';
import { fuseLayerNorm } from '../src/passes/fuse-layernorm.js';
import { recordingContext, type Pass } from '../src/passes/pass.js';
import { PASSES, runPipeline, selectPasses } from '../src/passes/pipeline.js';
import { pointwiseToConv, pointwiseToMatMul } from '../src/passes/pointwise-layout.js';
import { runGraph } from '../src/runtime/onnxruntime.js';
import { officialKeys } from './helpers/convnext-keys.js';
import { assertClose, checkpointFixtures, fixturePath, golden, manifest } from './helpers/fixtures.js';
import { optimizedOps } from './helpers/quantize.js';

const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const isOnes = (g: Graph, name: string) => toFloat32(g.initializers.get(name)!).every((v) => v === 1);
const foldedNorms = (g: Graph) => g.nodes.filter((n) => n.op === 'LayerNormalization' && isOnes(g, n.inputs[1]) && !n.inputs[2]).length;

async function graphOf(m: (typeof checkpointFixtures)[number]) {
  const c = await loadCheckpoint(fixturePath(m.path), { stateDictKey: m.state_dict_key ?? undefined });
  return buildConvNextGraph(c.model, { imageSize: m.image_size });
}

function run(pass: Pass, g: Graph) {
  const ctx = recordingContext();
  const out = pass.run(g, ctx);
  assert.deepEqual(checkGraph(out), [], `${pass.name} keeps the graph well-formed`);
  return { graph: out, fired: ctx.log };
}

describe('every pass keeps every fixture equal to PyTorch', () => {
  for (const m of checkpointFixtures) {
    it(m.name, async () => {
      const g = await graphOf(m);
      const { input, output } = golden(m);
      for (const pass of PASSES) {
        const { graph } = run(pass, g);
        assertClose((await runGraph(graph, input)).data, output, `${m.name} after ${pass.name} alone`);
      }
      const { graph, reports } = await runPipeline(g, selectPasses());
      assertClose((await runGraph(graph, input)).data, output, `${m.name} after the pipeline`);
      assert.ok(graph.nodes.length < g.nodes.length);
      assert.equal(reports.length, PASSES.length);
      if (m.version === 'v1') assert.equal(graph.nodes.filter((n) => n.name.includes('layer_scale')).length, 0);
    });
  }
});

describe('every pass keeps torch.onnx.export graphs equal to PyTorch (opset 13 and 17, V1 and V2)', () => {
  for (const m of manifest.models.filter((x) => x.format === 'onnx')) {
    it(m.name, async () => {
      const g = loadOnnxModel(fixturePath(m.path));
      const { input, output } = golden(m);
      let current = g;
      for (const pass of PASSES) {
        const alone = run(pass, g).graph;
        assertClose((await runGraph(alone, input)).data, output, `${m.name} after ${pass.name} alone`);
        current = run(pass, current).graph;
        assertClose((await runGraph(current, input)).data, output, `${m.name} after ${pass.name} in the pipeline`);
      }
      assert.equal(count(current, 'LayerNormalization'), 11, 'every LayerNorm is one op');
      assert.equal(foldedNorms(current), 10, 'every LayerNorm but the stem hands its affine on');
      assert.equal(count(current, 'Pow') + count(current, 'Sqrt'), 0, 'no decomposed LayerNorm remains');
      assert.equal(current.opsets[''], 17);
      assert.ok(current.nodes.length < g.nodes.length);
    });
  }

  it('our converted graph has fewer nodes than torch.onnx.export of the same weights', async () => {
    for (const [ckpt, exported] of [['v1_official', 'onnx_v1_opset17'], ['v2_official', 'onnx_v2_opset17']]) {
      const ours = (await runPipeline(await graphOf(manifest.models.find((x) => x.name === ckpt)!), selectPasses())).graph;
      const theirs = loadOnnxModel(fixturePath(manifest.models.find((x) => x.name === exported)!.path));
      assert.ok(ours.nodes.length < theirs.nodes.length, `${ckpt}: ${ours.nodes.length} nodes vs ${theirs.nodes.length}`);
    }
  });
});

describe('on a ConvNeXt-T-shaped graph (depths 3,3,9,3)', () => {
  const keys = (version: 'v1' | 'v2') => officialKeys({ version, depths: [3, 3, 9, 3], widths: [8, 16, 24, 32], numClasses: 10 });
  const build = (version: 'v1' | 'v2') => {
    const sd = new Map([...keys(version)].map(([k, s]) => {
      const t = float32(s);
      for (let i = 0; i < t.data.length; i++) (t.data as Float32Array)[i] = 0.5 + 0.25 * Math.sin(i + k.length);
      return [k, t];
    }));
    return buildConvNextGraph(importConvNext(sd, { source: 't' }).model, { imageSize: 64 });
  };

  it('no LayerScale Mul remains, and 22 of the 23 LayerNorms are folded (all but the stem)', async () => {
    const g = build('v1');
    assert.equal(count(g, 'LayerNormalization'), 23);
    const { graph, reports } = await runPipeline(g, selectPasses());
    const fired = (name: string) => reports.find((r) => r.name === name)!.fired;
    assert.equal(fired('fold-layerscale').length, 18);
    assert.equal(graph.nodes.filter((n) => n.op === 'Mul' && n.name.includes('layer_scale')).length, 0);
    assert.equal(fired('fold-layernorm-affine').length, 22);
    assert.equal(foldedNorms(graph), 22);
    const stem = graph.nodes.find((n) => n.name === 'stem.norm')!;
    assert.equal(isOnes(graph, stem.inputs[1]), false, 'the stem LayerNorm feeds a residual and keeps its affine');
    const blocks = fired('fold-layernorm-affine').filter((f) => f.where.includes('blocks')).length;
    const downsample = fired('fold-layernorm-affine').filter((f) => f.where.includes('downsample')).length;
    assert.deepEqual([blocks, downsample], [18, 3]);
    assert.ok(fired('fold-layernorm-affine').some((f) => f.where === 'head.norm'));
  });

  it("V2: every GRN's β is folded into the second pointwise bias", async () => {
    const { reports } = await runPipeline(build('v2'), selectPasses());
    assert.equal(reports.find((r) => r.name === 'fold-grn-beta')!.fired.length, 18);
  });
});

describe('folds are refused where they would be inexact', () => {
  // x → LayerNorm(γ, β) → MatMul(W) + b, and the LayerNorm output also feeds a residual Add
  function lnGraph(opts: { residual?: boolean; conv?: { pads: number } }): Graph {
    const g = new GraphBuilder('t');
    const c = 4;
    const gamma = g.constant('gamma', float32([c], [1.5, 0.5, 2, -1]));
    const beta = g.constant('beta', float32([c], [0.1, -0.2, 0.3, 0.4]));
    const ln = g.op('LayerNormalization', 'ln', ['x', gamma, beta], { axis: attr.int(-1), epsilon: attr.float(1e-6) });
    if (opts.conv) {
      const t = g.op('Transpose', 't', [ln], { perm: attr.ints([0, 3, 1, 2]) });
      const w = g.constant('w', float32([2, c, 2, 2], Array.from({ length: 32 }, (_, i) => Math.cos(i))));
      const b = g.constant('b', float32([2], [0.5, -0.5]));
      const p = opts.conv.pads;
      g.op('Conv', 'conv', [t, w, b], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), pads: attr.ints([p, p, p, p]) }, 'y');
      return g.build([{ name: 'x', dtype: 'float32', shape: [1, 4, 4, c] }], [{ name: 'y', dtype: 'float32', shape: [1, 2, p + 2, p + 2] }]);
    }
    const w = g.constant('w', float32([c, c], Array.from({ length: 16 }, (_, i) => Math.sin(i))));
    const mm = g.op('MatMul', 'mm', [ln, w]);
    const y = g.op('Add', 'bias', [mm, g.constant('b', float32([c], [1, 2, 3, 4]))], {}, opts.residual ? undefined : 'y');
    if (opts.residual) g.op('Add', 'residual', [y, ln], {}, 'y');
    return g.build([{ name: 'x', dtype: 'float32', shape: [1, 4, 4, c] }], [{ name: 'y', dtype: 'float32', shape: [1, 4, 4, c] }]);
  }
  const probe = float32([1, 4, 4, 4], Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 2));

  for (const [label, opts, folds] of [
    ['LayerNorm → MatMul alone: folded', {}, 1],
    ['LayerNorm output also feeds a residual: refused', { residual: true }, 0],
    ['LayerNorm → Transpose → unpadded 2×2 conv: folded', { conv: { pads: 0 } }, 1],
    ['LayerNorm → Transpose → padded conv: refused', { conv: { pads: 1 } }, 0],
  ] as const) {
    it(label, async () => {
      const g = lnGraph(opts);
      const { graph, fired } = run(foldLayerNormAffine, g);
      assert.equal(fired.length, folds);
      const probeIn = probe;
      const before = (await runGraph(g, probeIn)).data;
      const after = (await runGraph(graph, probeIn)).data;
      for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i] - after[i]) <= 1e-5 * (1 + Math.abs(before[i])));
    });
  }

  it('fold-layerscale leaves a Mul whose input has another reader', () => {
    const g = new GraphBuilder('t');
    const w = g.constant('w', float32([2, 2], [1, 2, 3, 4]));
    const mm = g.op('MatMul', 'mm', ['x', w]);
    const y = g.op('Add', 'bias', [mm, g.constant('b', float32([2], [1, 1]))]);
    const s = g.op('Mul', 'ls', [y, g.constant('gamma', float32([2], [0.5, 2]))]);
    g.op('Add', 'out', [s, y], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: [1, 2] }], [{ name: 'y', dtype: 'float32', shape: [1, 2] }]);
    assert.equal(run(foldLayerScale, graph).fired.length, 0);
    assert.equal(run(foldGrnBeta, graph).fired.length, 0);
    assert.equal(run(fuseLayerNorm, graph).fired.length, 0);
  });
});

describe('pointwise layout: 1×1 Convs for float, MatMuls for int8', () => {
  const ops = (g: Graph) => g.nodes.map((n) => n.op).sort().join(',');
  const withoutPointwiseToConv = async (g: Graph) => (await runPipeline(g, selectPasses({ skip: ['pointwise-to-conv'] }))).graph;

  const isPointwise = (g: Graph, n: Graph['nodes'][number]) => n.op === 'Conv' && g.initializers.get(n.inputs[1])!.shape.slice(2).join() === '1,1';
  const pointwiseConvs = (g: Graph) => g.nodes.filter((n) => isPointwise(g, n)).length;

  for (const m of [...checkpointFixtures.filter((x) => ['v1_official', 'v2_official', 'v2_hf'].includes(x.name)), ...manifest.models.filter((x) => x.format === 'onnx')]) {
    it(`${m.name}: every block's pointwise layers are 1×1 Convs, and pointwise-to-matmul gives the MatMul form`, async () => {
      const imported = m.format === 'onnx';
      const g = imported ? loadOnnxModel(fixturePath(m.path)) : await graphOf(m as (typeof checkpointFixtures)[number]);
      const { input, output } = golden(m);
      const { graph: conv, reports } = await runPipeline(g, selectPasses());
      const blocks = count(conv, 'LayerNormalization') - 5; // not the stem, downsampling or head LayerNorms
      // an exporter's MatMuls are moved; our builder writes 1×1 Convs in the first place
      assert.equal(reports.find((r) => r.name === 'pointwise-to-conv')!.fired.length, imported ? blocks : 0);
      assert.equal(count(conv, 'MatMul'), 0);
      assert.equal(pointwiseConvs(conv), 2 * blocks);
      assertClose((await runGraph(conv, input)).data, output, `${m.name} with 1×1 Convs`);

      const { graph: back, fired } = run(pointwiseToMatMul, conv);
      assert.equal(fired.length, blocks);
      assert.deepEqual([count(back, 'MatMul'), pointwiseConvs(back)], [2 * blocks, 0]);
      if (imported) assert.equal(ops(back), ops(await withoutPointwiseToConv(g)), 'the same ops as the pipeline without pointwise-to-conv');
      assertClose((await runGraph(back, input)).data, output, `${m.name} back in MatMul form`);
      assert.equal(run(pointwiseToMatMul, back).fired.length, 0, 'nothing left to move');
      assert.equal(run(pointwiseToConv, back).fired.length, blocks, 'and forth again');
    });
  }

  // x(NHWC) → LayerNorm → MatMul + b → Relu → MatMul → Transpose to NCHW → y
  function block(opts: { leak?: boolean; secondInput?: boolean } = {}): Graph {
    const g = new GraphBuilder('t');
    const c = 4;
    const ln = g.op('LayerNormalization', 'ln', ['x', g.constant('one', float32([c], [1, 1, 1, 1]))], { axis: attr.int(-1) });
    const fc1 = g.op('Add', 'fc1_bias', [g.op('MatMul', 'fc1', [ln, g.constant('w1', float32([c, 8], Array.from({ length: 32 }, (_, i) => Math.sin(i))))]), g.constant('b1', float32([8], [1, 2, 3, 4, 5, 6, 7, 8]))]);
    const act = g.op('Relu', 'act', [opts.secondInput ? g.op('Add', 'mix', [fc1, 'z']) : fc1], {}, opts.leak ? 'hidden' : undefined);
    const fc2 = g.op('MatMul', 'fc2', [act, g.constant('w2', float32([8, c], Array.from({ length: 32 }, (_, i) => Math.cos(i))))]);
    g.op('Transpose', 'to_nchw', [g.op('Mul', 'scale', [fc2, g.constant('s', float32([1, 1, 1, c], [0.5, 1, 2, 4]))])], { perm: attr.ints([0, 3, 1, 2]) }, 'y');
    const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [1, 3, 3, c] }, ...(opts.secondInput ? [{ name: 'z', dtype: 'float32' as const, shape: [1, 3, 3, 8] }] : [])];
    const outputs = [{ name: 'y', dtype: 'float32' as const, shape: [1, c, 3, 3] }, ...(opts.leak ? [{ name: 'hidden', dtype: 'float32' as const, shape: [1, 3, 3, 8] }] : [])];
    return g.build(inputs, outputs);
  }

  it('moves the Transpose up to the LayerNorm on a hand-made block, and back again, with the same outputs', async () => {
    const g = block();
    const { graph: conv, fired } = run(pointwiseToConv, g);
    assert.equal(fired.length, 1);
    assert.deepEqual(conv.nodes.map((n) => n.op), ['LayerNormalization', 'Transpose', 'Conv', 'Relu', 'Conv', 'Mul']);
    assert.deepEqual(conv.outputs, g.outputs);
    const x = float32([1, 3, 3, 4], Array.from({ length: 36 }, (_, i) => Math.sin(i * 0.7) * 3));
    const want = (await runGraph(g, x)).data;
    assertClose((await runGraph(conv, x)).data, float32([want.length], want), 'to conv', 1e-6);
    const { graph: back } = run(pointwiseToMatMul, conv);
    assert.deepEqual(back.nodes.map((n) => n.op), ['LayerNormalization', 'MatMul', 'Add', 'Relu', 'MatMul', 'Mul', 'Transpose']);
    assertClose((await runGraph(back, x)).data, float32([want.length], want), 'back to matmul', 1e-6);
  });

  it('in place, a weight is transposed within its own array; otherwise the source graph is left as it was', async () => {
    const x = float32([1, 3, 3, 4], Array.from({ length: 36 }, (_, i) => Math.cos(i * 0.3)));
    const copied = block();
    const w1 = Array.from(copied.initializers.get('w1')!.data as Float32Array);
    const { graph: out } = run(pointwiseToConv, copied);
    assert.deepEqual(Array.from(copied.initializers.get('w1')!.data as Float32Array), w1, 'the source graph keeps its weights');
    const inPlaceGraph = block();
    const own = inPlaceGraph.initializers.get('w1')!.data;
    const ctx = { ...recordingContext(), inPlace: true };
    const rewritten = pointwiseToConv.run(inPlaceGraph, ctx);
    const conv = rewritten.nodes.find((n) => n.name === 'fc1')!;
    assert.equal(rewritten.initializers.get(conv.inputs[1])!.data, own, 'the conv weight is the MatMul weight’s own array');
    assert.deepEqual(rewritten.initializers.get(conv.inputs[1])!.shape, [8, 4, 1, 1]);
    assert.deepEqual(Array.from((await runGraph(rewritten, x)).data), Array.from((await runGraph(out, x)).data));
  });

  it('pointwise-to-matmul keeps a Transpose whose output is also a graph output (e.g. FPN features)', () => {
    const g = new GraphBuilder('fpn');
    const t = g.op('Transpose', 't', ['x'], { perm: attr.ints([0, 3, 1, 2]) }, 'features');
    const w = g.constant('w', float32([5, 4, 1, 1], new Float32Array(20).fill(0.1)));
    g.op('Conv', 'lateral', [t, w, g.constant('b', float32([5], [1, 2, 3, 4, 5]))], { kernel_shape: attr.ints([1, 1]) }, 'y');
    const graph = g.build(
      [{ name: 'x', dtype: 'float32', shape: [1, 3, 3, 4] }],
      [{ name: 'y', dtype: 'float32', shape: [1, 5, 3, 3] }, { name: 'features', dtype: 'float32', shape: [1, 4, 3, 3] }],
    );
    assert.equal(run(pointwiseToMatMul, graph).fired.length, 0);
  });

  it('leaves a region alone when an inner value is read outside it, or it has a second way in', () => {
    assert.equal(run(pointwiseToConv, block({ leak: true })).fired.length, 0);
    assert.equal(run(pointwiseToConv, block({ secondInput: true })).fired.length, 0);
  });
});

describe('bias-full-rank: the bias before GELU at full rank, so onnxruntime runs Add and Gelu, not BiasGelu', () => {
  for (const m of checkpointFixtures.filter((x) => ['v1_official', 'v2_official'].includes(x.name))) {
    it(`${m.name}: every fc1 bias, and only those, changes rank; the outputs do not move`, async () => {
      const { input, output } = golden(m);
      const matmul = run(pointwiseToMatMul, (await runPipeline(await graphOf(m), selectPasses())).graph).graph;
      const { graph, fired } = run(biasFullRank, matmul);
      assert.deepEqual(checkGraph(graph), []);
      const blocks = count(matmul, 'Erf');
      assert.ok(blocks >= 4);
      assert.deepEqual(fired.length, blocks, 'one bias per GELU');
      const biases = graph.nodes.filter((n) => n.op === 'Add').map((n) => n.inputs.map((v) => graph.initializers.get(v)).find(Boolean)).filter((t) => t !== undefined);
      assert.equal(biases.filter((t) => t.shape.length === 4 && t.shape.slice(0, 3).join() === '1,1,1').length, blocks);
      assert.ok(biases.some((t) => t.shape.length === 1), 'the fc2 biases stay rank 1');
      assert.equal(run(biasFullRank, graph).fired.length, 0, 'nothing left to change');

      const before = await optimizedOps(matmul);
      const after = await optimizedOps(graph);
      assert.equal(before.get('BiasGelu'), blocks, 'onnxruntime fuses a rank-1 bias into BiasGelu');
      assert.equal(after.get('BiasGelu'), undefined);
      assert.equal(after.get('Gelu'), blocks, 'and keeps its Gelu with a full-rank one');
      const got = (await runGraph(graph, input)).data;
      assertClose(got, output, `${m.name} with full-rank biases`);
      const rank1 = (await runGraph(matmul, input)).data;
      assertClose(got, float32([...output.shape], rank1), `${m.name} against the rank-1 form`, 1e-6);
    });
  }
});

describe('in-place mode', () => {
  it('rewrites a weight only one node reads, and copies a shared one', async () => {
    const g = new GraphBuilder('t');
    const w = g.constant('w', float32([2, 2], [1, 2, 3, 4]));
    const own = g.constant('own', float32([2, 2], [5, 6, 7, 8]));
    const a = g.op('Add', 'a_bias', [g.op('MatMul', 'a', ['x', w]), g.constant('b1', float32([2], [1, 1]))]);
    const b = g.op('Add', 'b_bias', [g.op('MatMul', 'b', ['x', w]), g.constant('b2', float32([2], [1, 1]))]);
    const c = g.op('Add', 'c_bias', [g.op('MatMul', 'c', ['x', own]), g.constant('b3', float32([2], [1, 1]))]);
    const sa = g.op('Mul', 'ls_a', [a, g.constant('ga', float32([2], [0.5, 2]))]);
    const sc = g.op('Mul', 'ls_c', [c, g.constant('gc', float32([2], [3, 4]))]);
    g.op('Add', 'sum2', [g.op('Add', 'sum', [sa, b]), sc], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: [1, 2] }], [{ name: 'y', dtype: 'float32', shape: [1, 2] }]);
    const x = float32([1, 2], [0.3, -0.7]);
    const before = (await runGraph(graph, x)).data.slice();
    const ctx = { ...recordingContext(), inPlace: true };
    const after = foldLayerScale.run(graph, ctx);
    assert.equal(ctx.log.length, 2);
    assert.deepEqual([...graph.initializers.get('w')!.data], [1, 2, 3, 4], 'the shared weight is copied, not overwritten');
    assert.deepEqual([...graph.initializers.get('own')!.data], [15, 24, 21, 32], 'the unshared weight is scaled where it lies');
    assert.ok(after.initializers.has('own'));
    const y = (await runGraph(after, x)).data;
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(y[i] - before[i]) < 1e-5);
  });
});

describe('pass selection', () => {
  it('chooses, skips, and names unknown passes', () => {
    assert.deepEqual(selectPasses({ passes: ['fold-layerscale', 'remove-dead'] }).map((p) => p.name), ['fold-layerscale', 'remove-dead']);
    assert.ok(!selectPasses({ skip: ['fold-layerscale'] }).some((p) => p.name === 'fold-layerscale'));
    assert.throws(() => selectPasses({ passes: ['nope'] }), /unknown pass 'nope' \(passes: fold-constants, /);
    for (const p of PASSES) assert.ok(p.purpose.length > 20 && !p.purpose.includes('\n'));
  });
});
