// Generic passes (fold-constants, remove-identity, cancel-transposes, remove-dead, compact-names), shape inference
// and the ONNX importer: on the four torch.onnx.export fixtures against PyTorch's outputs, and on
// small hand-made graphs that show each rule firing where it should and not where it must not.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { buildConvNextGraph } from '../src/convnext/build.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { InputError, UnsupportedError } from '../src/errors.js';
import { encodeOnnx, joinChunks } from '../src/formats/onnx.js';
import { attr, checkGraph, GraphBuilder, topologicalOrder, type Dim, type Graph, type Node, type ValueInfo } from '../src/graph/graph.js';
import { inferShapes, rankOf } from '../src/graph/shapes.js';
import { float32, int64, tensor, type Tensor } from '../src/graph/tensor.js';
import { cancelTransposes, removeDead, removeIdentity } from '../src/passes/cleanup.js';
import { compactNames } from '../src/passes/compact-names.js';
import { foldConstants } from '../src/passes/fold-constants.js';
import { recordingContext, type Pass } from '../src/passes/pass.js';
import { runGraph } from '../src/runtime/onnxruntime.js';
import { assertClose, fixturePath, golden, manifest } from './helpers/fixtures.js';

const GENERIC: readonly Pass[] = [foldConstants, removeIdentity, cancelTransposes, removeDead];
const onnxFixtures = manifest.models.filter((m) => m.format === 'onnx');

const dir = mkdtempSync(join(tmpdir(), 'convnext-passes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function apply(pass: Pass, graph: Graph): { graph: Graph; fired: { rule: string; where: string }[] } {
  const ctx = recordingContext();
  const out = pass.run(graph, ctx);
  assert.deepEqual(checkGraph(out), [], `${pass.name} left a broken graph`);
  return { graph: out, fired: ctx.log };
}

const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const ops = (g: Graph) => g.nodes.map((n) => n.op);
const f32 = (name: string, shape: Dim[]): ValueInfo => ({ name, dtype: 'float32', shape });
const ramp = (shape: number[]) => float32(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i % 7) - 3 + i / 10));

/** Runs both graphs in onnxruntime without its own optimisations and asserts bit-identical outputs. */
async function assertSameOutputs(before: Graph, after: Graph, input: Tensor): Promise<void> {
  const a = await runGraph(before, input, { optimization: 'disabled' });
  const b = await runGraph(after, input, { optimization: 'disabled' });
  assert.deepEqual(b.dims, a.dims);
  assert.deepEqual(Array.from(b.data), Array.from(a.data));
}

// ---------------------------------------------------------------------------------------------

describe('generic passes on the torch.onnx.export fixtures keep PyTorch outputs', () => {
  for (const m of onnxFixtures) {
    describe(m.name, () => {
      const { input, output } = golden(m);
      const load = () => loadOnnxModel(fixturePath(m.path));

      it('loads in topological order and matches the golden as is', async () => {
        const g = load();
        assert.equal(g.opsets[''], (m as unknown as { opset: number }).opset);
        assert.deepEqual(topologicalOrder(g), g.nodes);
        assert.deepEqual(g.inputs.map((v) => v.name), ['pixel_values']);
        assertClose((await runGraph(g, input)).data, output, m.name);
      });

      for (const pass of GENERIC) {
        it(`${pass.name} alone`, async () => {
          const g = load();
          const { graph } = apply(pass, g);
          assertClose((await runGraph(graph, input)).data, output, `${m.name} after ${pass.name}`);
          assert.deepEqual(graph.outputs, g.outputs);
          assert.deepEqual(graph.inputs, g.inputs);
          if (pass === foldConstants) {
            assert.ok(count(g, 'Constant') > 0);
            assert.equal(count(graph, 'Constant'), 0);
            assert.equal(graph.nodes.length, g.nodes.length - count(g, 'Constant'));
          } else {
            assert.ok(graph.nodes.length <= g.nodes.length);
          }
        });
      }

      it('all generic passes in sequence', async () => {
        const g = load();
        let graph = g;
        for (const pass of GENERIC) graph = apply(pass, graph).graph;
        assertClose((await runGraph(graph, input)).data, output, `${m.name} after all`);
        assert.equal(count(graph, 'Constant'), 0);
        assert.equal(graph.nodes.length, g.nodes.length - count(g, 'Constant'));
        // The exports are otherwise tight: nothing else is an identity, a transpose pair or dead.
        for (const pass of GENERIC) assert.deepEqual(apply(pass, graph).fired, [], `${pass.name} should find nothing more`);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('inferShapes', () => {
  const node = (g: Graph, name: string) => g.nodes.find((n) => n.name === name)!;

  it('describes every value of the ONNX fixtures, with batch the only symbol', () => {
    for (const m of onnxFixtures) {
      const g = loadOnnxModel(fixturePath(m.path));
      const s = inferShapes(g);
      assert.deepEqual(s.get('logits'), { dtype: 'float32', shape: ['batch', 10] }, m.name);
      for (const n of g.nodes) {
        for (const o of n.outputs) {
          const t = s.get(o);
          assert.ok(t, `${m.name}: ${n.op} ${o} has no shape`);
          assert.ok(t.shape.every((d) => typeof d === 'number' || d === 'batch'), `${m.name}: ${o} is [${t.shape}]`);
        }
      }
      const firstConv = g.nodes.find((n) => n.op === 'Conv')!;
      assert.deepEqual(s.get(firstConv.outputs[0])!.shape, ['batch', 8, 16, 16]);
      const dwconv = g.nodes.filter((n) => n.op === 'Conv')[1];
      assert.equal(dwconv.attrs.group.value, 8);
      assert.deepEqual(s.get(dwconv.outputs[0])!.shape, ['batch', 8, 16, 16]);
      const toNhwc = g.nodes.find((n) => n.op === 'Transpose')!;
      assert.deepEqual(s.get(toNhwc.outputs[0])!.shape, ['batch', 16, 16, 8]);
      assert.equal(rankOf(s, toNhwc.outputs[0]), 4);
      assert.equal(rankOf(s, 'nowhere'), undefined);
    }
  });

  it('follows the Reduce forms of the exports (axes attribute, keepdims, negative axes)', () => {
    const v2 = loadOnnxModel(fixturePath('onnx/v2_opset13.onnx'));
    const s = inferShapes(v2);
    const out = (name: string) => s.get(node(v2, name).outputs[0])!.shape;
    assert.deepEqual(out('/downsample_layers.0/downsample_layers.0.1/ReduceMean'), ['batch', 1, 16, 16]); // axes [1]
    assert.deepEqual(out('/stages.0/stages.0.0/norm/ReduceMean'), ['batch', 16, 16, 1]); // axes [-1]
    assert.deepEqual(out('/stages.0/stages.0.0/grn/ReduceL2'), ['batch', 1, 1, 32]); // axes [1, 2]
    assert.deepEqual(out('/ReduceMean'), ['batch', 32]); // axes [-2, -1], keepdims 0
    const v1 = loadOnnxModel(fixturePath('onnx/v1_opset17.onnx'));
    const s1 = inferShapes(v1);
    assert.deepEqual(s1.get(node(v1, '/avgpool/GlobalAveragePool').outputs[0])!.shape, ['batch', 32, 1, 1]);
    assert.deepEqual(s1.get(node(v1, '/classifier/classifier.1/Flatten').outputs[0])!.shape, ['batch', 32]);
  });

  it('gives the same shapes when an export is rewritten to opset 18 (axes as an input), which still runs', async () => {
    const m = onnxFixtures.find((x) => x.name === 'onnx_v2_opset17')!;
    const g17 = loadOnnxModel(fixturePath(m.path));
    const initializers = new Map(g17.initializers);
    const nodes = g17.nodes.map((n): Node => {
      if (!n.op.startsWith('Reduce') || !n.attrs.axes) return n;
      const { axes, ...attrs } = n.attrs;
      const name = `${n.name}/axes`;
      initializers.set(name, int64(axes.value as number[]));
      return { ...n, inputs: [n.inputs[0], name], attrs };
    });
    const g18: Graph = { ...g17, nodes, initializers, opsets: { '': 18 } };
    assert.ok(g18.nodes.filter((n) => n.op.startsWith('Reduce')).every((n) => n.inputs.length === 2));
    const s17 = inferShapes(g17);
    const s18 = inferShapes(g18);
    for (const n of g17.nodes) assert.deepEqual(s18.get(n.outputs[0]), s17.get(n.outputs[0]), n.name);
    let graph = g18;
    for (const pass of GENERIC) graph = apply(pass, graph).graph;
    const { input, output } = golden(m);
    assertClose((await runGraph(graph, input)).data, output, 'opset 18 rewrite');
  });

  it('describes the graph we build from a checkpoint', async () => {
    const m = manifest.models.find((x) => x.name === 'v1_official')!;
    const loaded = await loadCheckpoint(fixturePath(m.path), { imageSize: 64 });
    const g = buildConvNextGraph(loaded.model, { imageSize: 64 });
    const s = inferShapes(g);
    assert.deepEqual(s.get('logits')!.shape, ['batch', 10]);
    assert.deepEqual(s.get('head.pool')!.shape, ['batch', 32]);
    for (const n of g.nodes) assert.ok(s.has(n.outputs[0]), n.name);
  });

  it('reads axes from the second input at opset 18 (and ReduceSum from 13)', () => {
    const g = new GraphBuilder('g');
    const axes = g.constant('axes', int64([-1]));
    const both = g.constant('both', int64([1, 2]));
    const keep = g.op('ReduceMean', 'keep', ['x', axes]);
    const drop = g.op('ReduceMean', 'drop', ['x', both], { keepdims: attr.int(0) });
    const l2 = g.op('ReduceL2', 'l2', ['x', axes], { keepdims: attr.int(0) });
    const all = g.op('ReduceMax', 'all', ['x'], { keepdims: attr.int(0) });
    const noop = g.op('ReduceSum', 'noop', ['x'], { noop_with_empty_axes: attr.int(1) });
    const attrForm = g.op('ReduceMax', 'attr', ['x'], { axes: attr.ints([0]) });
    const graph = { ...g.build([f32('x', ['batch', 5, 6, 7])], []), opsets: { '': 18 } };
    const s = inferShapes(graph);
    assert.deepEqual(s.get(keep)!.shape, ['batch', 5, 6, 1]);
    assert.deepEqual(s.get(drop)!.shape, ['batch', 7]);
    assert.deepEqual(s.get(l2)!.shape, ['batch', 5, 6]);
    assert.deepEqual(s.get(all)!.shape, []);
    assert.deepEqual(s.get(noop)!.shape, ['batch', 5, 6, 7]);
    assert.deepEqual(s.get(attrForm)!.shape, [1, 5, 6, 7]);
  });

  it('computes Conv, MatMul, Gemm, broadcasting, Cast and unknown ops', () => {
    const g = new GraphBuilder('g');
    const w = g.constant('w', float32([16, 4, 3, 3]));
    const dw = g.constant('dw', float32([8, 1, 7, 7]));
    const m = g.constant('m', float32([5, 6]));
    const a = g.op('Conv', 'a', ['x', w], { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) });
    const b = g.op('Conv', 'b', ['x', w], { auto_pad: attr.string('SAME_UPPER'), strides: attr.ints([2, 2]) });
    const c = g.op('Conv', 'c', ['x', w], { dilations: attr.ints([2, 2]) });
    const d = g.op('Conv', 'd', ['y', dw], { group: attr.int(8), pads: attr.ints([3, 3, 3, 3]) });
    const mm = g.op('MatMul', 'mm', ['z', m]);
    const mv = g.op('MatMul', 'mv', ['z', g.constant('v', float32([5]))]);
    const gemm = g.op('Gemm', 'gemm', [g.constant('at', float32([5, 3])), m], { transA: attr.int(1) });
    const bc = g.op('Add', 'bc', ['z', g.constant('row', float32([1, 1, 5]))]);
    const cast = g.op('Cast', 'cast', ['z'], { to: attr.int(7) });
    const unknown = g.op('NonMaxSuppression', 'nms', ['z']);
    const s = inferShapes(g.build([f32('x', [1, 4, 32, 30]), f32('y', ['n', 8, 'h', 'w']), f32('z', ['batch', 'seq', 5])], []));
    assert.deepEqual(s.get(a)!.shape, [1, 16, 16, 15]);
    assert.deepEqual(s.get(b)!.shape, [1, 16, 16, 15]);
    assert.deepEqual(s.get(c)!.shape, [1, 16, 28, 26]);
    assert.deepEqual(s.get(d)!.shape, ['n', 8, 'h', 'w']);
    assert.deepEqual(s.get(mm)!.shape, ['batch', 'seq', 6]);
    assert.deepEqual(s.get(mv)!.shape, ['batch', 'seq']);
    assert.deepEqual(s.get(gemm)!.shape, [3, 6]);
    assert.deepEqual(s.get(bc)!.shape, ['batch', 'seq', 5]);
    assert.deepEqual(s.get(cast), { dtype: 'int64', shape: ['batch', 'seq', 5] });
    assert.equal(s.get(unknown), undefined);
    assert.equal(rankOf(s, unknown), undefined);
  });

  it('follows shape arithmetic: Shape → Gather → Unsqueeze → Concat → Reshape, Squeeze, Slice, Expand', () => {
    const g = new GraphBuilder('g');
    const shape = g.op('Shape', 'shape', ['x']);
    const n = g.op('Gather', 'n', [shape, g.constant('zero', tensor('int64', [], BigInt64Array.of(0n)))]);
    const n1 = g.op('Unsqueeze', 'n1', [n, g.constant('ax0', int64([0]))]);
    const target = g.op('Concat', 'target', [n1, g.constant('minus1', int64([-1]))], { axis: attr.int(0) });
    const flat = g.op('Reshape', 'flat', ['x', target]);
    const zeros = g.op('Reshape', 'zeros', ['x', g.constant('t2', int64([0, 0, -1]))]);
    const flatten = g.op('Flatten', 'flatten', ['x'], { axis: attr.int(2) });
    const sq = g.op('Squeeze', 'sq', [g.op('Unsqueeze', 'un', ['x', g.constant('ax', int64([1, -1]))])], { axes: attr.ints([1]) });
    const sl = g.op('Slice', 'sl', ['x', g.constant('st', int64([1])), g.constant('en', int64([-1])), g.constant('sa', int64([2]))]);
    const ex = g.op('Expand', 'ex', [g.constant('one', float32([1, 1])), g.constant('es', int64([4, 1, 6]))]);
    const cat = g.op('Concat', 'cat', ['x', 'x'], { axis: attr.int(-1) });
    const s = inferShapes(g.build([f32('x', ['batch', 3, 8, 8])], []));
    assert.deepEqual(s.get(shape), { dtype: 'int64', shape: [4] });
    assert.deepEqual(s.get(n)!.shape, []);
    assert.deepEqual(s.get(flat)!.shape, ['batch', 192]);
    assert.deepEqual(s.get(zeros)!.shape, ['batch', 3, 64]);
    assert.deepEqual(s.get(flatten)!.shape, ['3*batch', 64]);
    assert.deepEqual(s.get(sq)!.shape, ['batch', 3, 8, 8, 1]);
    assert.deepEqual(s.get(sl)!.shape, ['batch', 3, 6, 8]);
    assert.deepEqual(s.get(ex)!.shape, [4, 1, 6]);
    assert.deepEqual(s.get(cat)!.shape, ['batch', 3, 8, 16]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('fold-constants', () => {
  it('turns Constant nodes into initializers and evaluates constant chains exactly', async () => {
    const g = new GraphBuilder('g');
    const k = g.op('Constant', 'k', [], { value: attr.tensor(float32([], [2])) });
    const shape = g.op('Constant', 'shape', [], { value_ints: attr.ints([1, -1]) });
    const w = g.constant('w', ramp([2, 3]));
    const scaled = g.op('Div', 'scaled', [g.op('Sqrt', 'sqrt', [g.op('Pow', 'sq', [w, k])]), g.constant('three', float32([], [3]))]);
    const row = g.op('Reshape', 'row', [g.op('Transpose', 't', [scaled], { perm: attr.ints([1, 0]) }), shape]);
    g.op('Mul', 'y', ['x', row], {}, 'y');
    const graph = g.build([f32('x', ['batch', 6])], [f32('y', ['batch', 6])]);
    const { graph: folded, fired } = apply(foldConstants, graph);
    assert.deepEqual(ops(folded), ['Mul']);
    assert.deepEqual(fired.filter((f) => f.rule === 'constant-node').map((f) => f.where), ['k', 'shape']);
    assert.deepEqual(folded.initializers.get(folded.nodes[0].inputs[1])!.shape, [1, 6]);
    await assertSameOutputs(graph, folded, ramp([2, 6]));
  });

  it('folds shape computations, and Shape itself when the shape is static', () => {
    const build = (batch: Dim) => {
      const g = new GraphBuilder('g');
      const n = g.op('Gather', 'n', [g.op('Shape', 'shape', ['x']), g.constant('zero', tensor('int64', [], BigInt64Array.of(0n)))]);
      const target = g.op('Concat', 'target', [g.op('Unsqueeze', 'n1', [n, g.constant('ax0', int64([0]))]), g.constant('m1', int64([-1]))], { axis: attr.int(0) });
      g.op('Reshape', 'flat', ['x', target], {}, 'y');
      return g.build([f32('x', [batch, 3, 4])], [f32('y', [batch, 12])]);
    };
    const fixed = apply(foldConstants, build(2));
    assert.deepEqual(ops(fixed.graph), ['Reshape']);
    assert.deepEqual(Array.from(fixed.graph.initializers.get(fixed.graph.nodes[0].inputs[1])!.data as BigInt64Array), [2n, -1n]);
    assert.ok(fixed.fired.some((f) => f.rule === 'static-shape' && f.where === 'shape'));
    // With a symbolic batch the chain depends on the input: nothing folds.
    const dynamic = apply(foldConstants, build('batch'));
    assert.deepEqual(ops(dynamic.graph), ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape']);
    assert.deepEqual(dynamic.fired, []);
  });

  it('never folds a node that reads a graph input, even one with a default initializer', () => {
    const g = new GraphBuilder('g');
    g.constant('x', float32([2], [1, 2]));
    const neg = g.op('Neg', 'neg', ['x']);
    g.op('Add', 'y', [neg, g.constant('c', float32([2], [1, 1]))], {}, 'y');
    const graph = g.build([f32('x', [2])], [f32('y', [2])]);
    const { graph: out, fired } = apply(foldConstants, graph);
    assert.deepEqual(ops(out), ['Neg', 'Add']);
    assert.deepEqual(fired, []);
  });

  it('keeps ops it cannot evaluate exactly, graph outputs, and constants that would grow', () => {
    const g = new GraphBuilder('g');
    const c = g.constant('c', ramp([4]));
    const erf = g.op('Erf', 'erf', [c]);
    const cube = g.op('Pow', 'cube', [c, g.constant('three', float32([], [3]))]);
    const big = g.op('Expand', 'big', [g.constant('one', float32([], [1])), g.constant('sz', int64([100, 100]))]);
    const sum = g.op('Add', 'sum', [g.op('Add', 'a', ['x', erf]), cube]);
    const y = g.op('Mul', 'y', [sum, g.op('ReduceMean', 'r', [big], { keepdims: attr.int(0) })], {}, 'y');
    g.op('Neg', 'z', [c], {}, 'z'); // constant, but a graph output: stays a node
    const graph = g.build([f32('x', [4])], [f32(y, [4]), f32('z', [4])]);
    const { graph: out, fired } = apply(foldConstants, graph);
    assert.deepEqual(fired, []);
    assert.equal(out.nodes.length, graph.nodes.length);
  });

  it('evaluates int64 arithmetic, Slice, Gather, Cast and Squeeze like onnxruntime', async () => {
    const g = new GraphBuilder('g');
    const v = g.constant('v', int64([7, -7, 9, 12]));
    const q = g.op('Div', 'q', [v, g.constant('two', int64([2]))]); // truncates toward zero
    const sl = g.op('Slice', 'sl', [q, g.constant('s', int64([-1])), g.constant('e', int64([-5])), g.constant('a', int64([0])), g.constant('st', int64([-2]))]);
    const picked = g.op('Gather', 'pick', [q, g.constant('i', int64([3, -1, 0]))]);
    const both = g.op('Concat', 'both', [sl, picked], { axis: attr.int(0) });
    const asFloat = g.op('Cast', 'f', [g.op('Squeeze', 'sq', [g.op('Unsqueeze', 'un', [both, g.constant('ax', int64([0]))])])], { to: attr.int(1) });
    g.op('Add', 'y', ['x', asFloat], {}, 'y');
    const graph = g.build([f32('x', [5])], [f32('y', [5])]);
    const { graph: out } = apply(foldConstants, graph);
    assert.deepEqual(ops(out), ['Add']);
    assert.deepEqual(Array.from(out.initializers.get(out.nodes[0].inputs[1])!.data as Float32Array), [6, -3, 6, 6, 3]);
    await assertSameOutputs(graph, out, ramp([5]));
  });
});

// ---------------------------------------------------------------------------------------------

describe('remove-identity', () => {
  it('bypasses every kind of pass-through node and keeps the output name', async () => {
    const g = new GraphBuilder('g');
    let h = g.op('Relu', 'relu', ['x']);
    h = g.op('Identity', 'id', [h]);
    h = g.op('Dropout', 'drop', [h, g.constant('ratio', float32([], [0.5]))]);
    h = g.op('Cast', 'cast', [h], { to: attr.int(1) });
    h = g.op('Reshape', 'reshape', [h, g.constant('same', int64([0, 4, 3]))]);
    h = g.op('Flatten', 'flatten', [g.op('Flatten', 'flat2d', [h], { axis: attr.int(1) })], { axis: attr.int(1) });
    h = g.op('Transpose', 'tid', [h], { perm: attr.ints([0, 1]) });
    h = g.op('Mul', 'one', [g.constant('ones', float32([1, 12], new Array(12).fill(1))), h]);
    h = g.op('Add', 'zero', [h, g.constant('z', float32([], [0]))]);
    h = g.op('Sub', 'minus0', [h, g.constant('z2', float32([1], [-0]))]);
    g.op('Div', 'div1', [h, g.constant('o', float32([], [1]))], {}, 'y');
    const graph = g.build([f32('x', ['batch', 4, 3])], [f32('y', ['batch', 12])]);
    const { graph: out, fired } = apply(removeIdentity, graph);
    assert.deepEqual(ops(out), ['Relu', 'Flatten']);
    assert.deepEqual(out.nodes[1].outputs, ['y']);
    assert.deepEqual(
      fired.map((f) => f.rule),
      ['identity', 'dropout', 'cast-same-type', 'reshape-same-shape', 'reshape-same-shape', 'transpose-identity', 'neutral-element', 'neutral-element', 'neutral-element', 'neutral-element'],
    );
    await assertSameOutputs(graph, out, ramp([2, 4, 3]));
  });

  it('keeps the graph output name when the Identity that produced it goes', () => {
    const g = new GraphBuilder('g');
    const r = g.op('Relu', 'relu', ['x']);
    g.op('Neg', 'other', [r], {}, 'other');
    g.op('Identity', 'id', [r], {}, 'y');
    const graph = g.build([f32('x', [3])], [f32('y', [3]), f32('other', [3])]);
    const { graph: out } = apply(removeIdentity, graph);
    assert.deepEqual(ops(out), ['Relu', 'Neg']);
    assert.deepEqual(out.nodes[0].outputs, ['y']);
    assert.deepEqual(out.nodes[1].inputs, ['y']);
    assert.deepEqual(out.outputs.map((o) => o.name), ['y', 'other']);
  });

  it('does not fire where the node is not an identity or the name could not be kept', () => {
    const g = new GraphBuilder('g');
    const widened = g.op('Mul', 'widen', ['x', g.constant('ones', float32([1, 3], [1, 1, 1]))]); // [2,1] → [2,3]
    const recip = g.op('Div', 'recip', [g.constant('one', float32([], [1])), widened]); // 1/x, not x/1
    const minus = g.op('Sub', 'negate', [g.constant('zero', float32([], [0])), recip]); // 0−x, not x−0
    const cast = g.op('Cast', 'cast', [minus], { to: attr.int(10) });
    const back = g.op('Cast', 'back', [cast], { to: attr.int(1) });
    const reshaped = g.op('Reshape', 'reshape', [back, g.constant('s', int64([3, 2]))]);
    const turned = g.op('Transpose', 'turn', [reshaped]); // no perm on rank 2: a real transpose
    const train = g.op('Dropout', 'train', [turned, g.constant('r', float32([], [0.5])), g.constant('t', tensor('bool', [], Uint8Array.of(1)))]);
    const masked = g.op('Dropout', 'masked', [train]);
    const graph0 = g.build([f32('x', [2, 1])], []);
    const maskNode = graph0.nodes.find((n) => n.name === 'masked')!;
    const withMask: Node = { ...maskNode, outputs: [masked, 'mask'] };
    const nodes = [...graph0.nodes.filter((n) => n !== maskNode), withMask, { name: 'pass', op: 'Identity', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} }];
    const graph: Graph = { ...graph0, nodes, outputs: [f32(masked, [2, 3]), { name: 'mask', dtype: 'bool', shape: [2, 3] }, f32('y', [2, 1])] };
    const { graph: out, fired } = apply(removeIdentity, graph);
    assert.deepEqual(fired, []);
    assert.equal(out.nodes.length, graph.nodes.length);
  });
});

// ---------------------------------------------------------------------------------------------

describe('cancel-transposes', () => {
  it('removes a pair that cancels, keeping the output name', async () => {
    const g = new GraphBuilder('g');
    const r = g.op('Relu', 'relu', ['x']);
    const a = g.op('Transpose', 'to_nhwc', [r], { perm: attr.ints([0, 2, 3, 1]) });
    g.op('Transpose', 'to_nchw', [a], { perm: attr.ints([0, 3, 1, 2]) }, 'y');
    const graph = g.build([f32('x', [1, 2, 3, 4])], [f32('y', [1, 2, 3, 4])]);
    const { graph: out, fired } = apply(cancelTransposes, graph);
    assert.deepEqual(ops(out), ['Relu']);
    assert.deepEqual(out.nodes[0].outputs, ['y']);
    assert.deepEqual(fired, [{ rule: 'cancel', where: 'to_nchw' }]);
    await assertSameOutputs(graph, out, ramp([1, 2, 3, 4]));
  });

  it('composes a chain into one Transpose, using the rank for a default perm', async () => {
    const g = new GraphBuilder('g');
    const a = g.op('Transpose', 'a', ['x'], { perm: attr.ints([0, 2, 3, 1]) });
    const b = g.op('Transpose', 'b', [a]); // reverses: [3, 2, 1, 0]
    const c = g.op('Transpose', 'c', [b], { perm: attr.ints([1, 0, 2, 3]) });
    g.op('Relu', 'y', [c], {}, 'y');
    const graph = g.build([f32('x', [1, 2, 3, 4])], [f32('y', [4, 2, 3, 1])]);
    const { graph: out, fired } = apply(cancelTransposes, graph);
    assert.deepEqual(ops(out), ['Transpose', 'Relu']);
    assert.deepEqual(out.nodes[0].inputs, ['x']);
    assert.equal(fired.length, 2);
    await assertSameOutputs(graph, out, ramp([1, 2, 3, 4]));
  });

  it('leaves a pair alone when the middle value has another reader or is a graph output', () => {
    for (const share of ['reader', 'output'] as const) {
      const g = new GraphBuilder('g');
      const a = g.op('Transpose', 'a', ['x'], { perm: attr.ints([1, 0]) });
      const b = g.op('Transpose', 'b', [a], { perm: attr.ints([1, 0]) });
      const outputs = [f32(g.op('Relu', 'y', [b], {}, 'y'), [2, 3])];
      if (share === 'reader') outputs.push(f32(g.op('Neg', 'z', [a], {}, 'z'), [3, 2]));
      else outputs.push(f32(a, [3, 2]));
      const graph = g.build([f32('x', [2, 3])], outputs);
      const { graph: out, fired } = apply(cancelTransposes, graph);
      assert.deepEqual(fired, [], share);
      assert.equal(count(out, 'Transpose'), 2, share);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('compact-names', () => {
  const LAYERS = ['Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'LayerNormalization'];
  for (const m of onnxFixtures) {
    it(`${m.name}: same outputs, short internal names, layer names and graph I/O kept, a smaller file`, async () => {
      const { input, output } = golden(m);
      const g = loadOnnxModel(fixturePath(m.path));
      const { graph, fired } = apply(compactNames, g);
      await assertSameOutputs(g, graph, input);
      assertClose((await runGraph(graph, input)).data, output, `${m.name} after compact-names`);
      assert.deepEqual(graph.inputs, g.inputs);
      assert.deepEqual(graph.outputs, g.outputs);
      assert.equal(fired.length, 1);
      const io = new Set([...g.inputs, ...g.outputs].map((v) => v.name));
      for (const name of [...graph.initializers.keys(), ...graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]) {
        if (name && !io.has(name)) assert.ok(name.length <= 3, `value '${name}' was not shortened`);
      }
      graph.nodes.forEach((n, i) => assert.equal(n.name, LAYERS.includes(n.op) ? g.nodes[i].name : '', `node ${i} (${n.op})`));
      const size = (x: Graph) => joinChunks(encodeOnnx(x, { producerVersion: 'test' }).model).byteLength;
      assert.ok(size(graph) < size(g));
    });
  }

  it('never gives an internal value the name of a graph input or output', async () => {
    const g = new GraphBuilder('g');
    const h = g.op('Mul', 'scale', ['0', g.constant('w', ramp([4]))]);
    g.op('Relu', 'relu', [g.op('Add', 'shift', [h, g.constant('b', ramp([4]))])], {}, '2');
    const graph = g.build([f32('0', [4])], [f32('2', [4])]);
    const { graph: out } = apply(compactNames, graph);
    const values = [...out.initializers.keys(), ...out.nodes.flatMap((n) => n.outputs)];
    assert.equal(new Set(values).size, values.length);
    assert.deepEqual(values.filter((v) => v === '0' || v === '2'), ['2'], 'only the graph output is called 2');
    await assertSameOutputs(graph, out, ramp([4]));
  });

  it('an unnamed node survives the ONNX round trip (the importer names it)', () => {
    const g = new GraphBuilder('g');
    g.op('Relu', 'y', [g.op('Neg', 'n', ['x'])], {}, 'y');
    const { graph } = apply(compactNames, g.build([f32('x', [2])], [f32('y', [2])]));
    const path = join(dir, 'compact.onnx');
    writeFileSync(path, joinChunks(encodeOnnx(graph, { producerVersion: 'test' }).model));
    const back = loadOnnxModel(path);
    assert.deepEqual(back.nodes.map((n) => n.name), ['Neg_0', 'Relu_1']);
    assert.deepEqual(checkGraph(back), []);
  });
});

// ---------------------------------------------------------------------------------------------

describe('remove-dead', () => {
  it('drops unread chains and unused initializers, keeps outputs and multi-output nodes', () => {
    const g = new GraphBuilder('g');
    const used = g.constant('used', float32([1], [2]));
    g.constant('orphan', float32([1], [3]));
    const dead = g.op('Mul', 'dead1', [g.op('Neg', 'dead0', ['x']), g.constant('deadc', float32([1], [4]))]);
    g.op('Relu', 'dead2', [dead]);
    g.op('Mul', 'y', ['x', used], {}, 'y');
    const graph0 = g.build([f32('x', [3])], [f32('y', [3])]);
    const split: Node = { name: 'split', op: 'Dropout', domain: '', inputs: ['x'], outputs: ['kept', 'unread_mask'], attrs: {} };
    const graph: Graph = { ...graph0, nodes: [...graph0.nodes, split], outputs: [...graph0.outputs, f32('kept', [3])] };
    const { graph: out, fired } = apply(removeDead, graph);
    assert.deepEqual(ops(out), ['Mul', 'Dropout']);
    assert.deepEqual([...out.initializers.keys()], ['used']);
    assert.deepEqual(fired.filter((f) => f.rule === 'dead-node').map((f) => f.where).sort(), ['dead0', 'dead1', 'dead2']);
    assert.deepEqual(fired.filter((f) => f.rule === 'unused-initializer').map((f) => f.where).sort(), ['deadc', 'orphan']);
    assert.deepEqual(out.outputs, graph.outputs);
  });
});

// ---------------------------------------------------------------------------------------------

describe('loadOnnxModel', () => {
  const write = (name: string, graph: Graph, external = false) => {
    const path = join(dir, name);
    const encoded = encodeOnnx(graph, { producerVersion: 'test', external: external ? { location: `${name}.data`, minBytes: 16 } : undefined });
    writeFileSync(path, joinChunks(encoded.model));
    if (encoded.externalData) writeFileSync(`${path}.data`, joinChunks(encoded.externalData));
    return path;
  };
  const small = (opset: number, extra: (g: GraphBuilder, h: string) => string = (_, h) => h) => {
    const g = new GraphBuilder('g');
    const h = g.op('Mul', 'm', ['x', g.constant('w', ramp([64]))]);
    g.op('Relu', 'y', [extra(g, h)], {}, 'y');
    return { ...g.build([f32('x', ['batch', 64])], [f32('y', ['batch', 64])]), opsets: { '': opset } };
  };

  it('refuses opsets outside 13–21, naming the opset', () => {
    for (const opset of [11, 22]) {
      const path = write(`opset${opset}.onnx`, small(opset));
      assert.throws(() => loadOnnxModel(path), (e: Error) => e instanceof UnsupportedError && new RegExp(`opset ${opset} is not supported`).test(e.message));
    }
    assert.equal(loadOnnxModel(write('opset18.onnx', small(18))).opsets[''], 18);
  });

  it('lists every unsupported op in one error', () => {
    const graph = small(17, (g, h) => g.op('Foo', 'foo2', [g.op('Foo', 'foo1', [g.op('Bar', 'bar', [h])])]));
    const odd: Node = { name: 'fused', op: 'FusedConv', domain: 'com.microsoft', inputs: ['x'], outputs: ['f'], attrs: {} };
    const path = write('ops.onnx', { ...graph, nodes: [...graph.nodes, odd], opsets: { '': 17, 'com.microsoft': 1 } });
    assert.throws(() => loadOnnxModel(path), (e: Error) => e instanceof UnsupportedError && /unsupported ONNX ops: Bar, com\.microsoft\.FusedConv, Foo \(×2\)/.test(e.message));
  });

  it('reads external data next to the model and returns nodes in topological order', () => {
    const graph = small(17);
    const shuffled = { ...graph, nodes: [...graph.nodes].reverse() };
    const loaded = loadOnnxModel(write('ext.onnx', shuffled, true));
    assert.deepEqual(ops(loaded), ['Mul', 'Relu']);
    assert.deepEqual(loaded.initializers.get('w')!.data, graph.initializers.get('w')!.data);
    assert.throws(() => loadOnnxModel(join(dir, 'missing.onnx')), InputError);
  });
});
