import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { attr, checkGraph, GraphBuilder, topologicalOrder, type Graph } from '../src/graph/graph.js';
import { bfloat16ToFloat, float32, floatToHalf, halfToFloat, transpose2d } from '../src/graph/tensor.js';
import { TOOL_VERSION } from '../src/version.js';
import { ROOT } from './helpers/fixtures.js';

function diamond(): Graph {
  const g = new GraphBuilder('g');
  const w = g.constant('w', float32([1], [2]));
  const a = g.op('Mul', 'a', ['x', w]);
  const b = g.op('Relu', 'b', [a]);
  const c = g.op('Neg', 'c', [a]);
  g.op('Add', 'd', [b, c], {}, 'y');
  return g.build([{ name: 'x', dtype: 'float32', shape: ['n'] }], [{ name: 'y', dtype: 'float32', shape: ['n'] }]);
}

describe('graph', () => {
  it('orders nodes topologically and deterministically (input order breaks ties)', () => {
    const g = diamond();
    const shuffled = { ...g, nodes: [g.nodes[3], g.nodes[2], g.nodes[1], g.nodes[0]] };
    assert.deepEqual(topologicalOrder(g).map((n) => n.name), ['a', 'b', 'c', 'd']);
    assert.deepEqual(topologicalOrder(shuffled).map((n) => n.name), ['a', 'c', 'b', 'd']);
    // an order that is already topological comes back as it is (a copy), whichever valid order it is
    const other = { ...g, nodes: [g.nodes[0], g.nodes[2], g.nodes[1], g.nodes[3]] };
    const kept = topologicalOrder(other);
    assert.notEqual(kept, other.nodes);
    assert.deepEqual(kept.map((n) => n.name), ['a', 'c', 'b', 'd']);
    // and what is not still throws: a node reading its own output, a value nothing defines
    const self = { ...g, nodes: [...g.nodes, { name: 'e', op: 'Relu', domain: '', inputs: ['e'], outputs: ['e'], attrs: {} }] };
    assert.throws(() => topologicalOrder(self), /cycle/);
    const undefinedInput = { ...g, nodes: [...g.nodes, { name: 'f', op: 'Relu', domain: '', inputs: ['nowhere'], outputs: ['f'], attrs: {} }] };
    assert.throws(() => topologicalOrder(undefinedInput), /nowhere, which nothing defines/);
  });

  it('checkGraph finds undefined values, double definitions, cycles and missing outputs', () => {
    assert.deepEqual(checkGraph(diamond()), []);
    const g = diamond();
    const broken: Graph = {
      ...g,
      nodes: [...g.nodes, { name: 'e', op: 'Relu', domain: '', inputs: ['nowhere'], outputs: ['b'], attrs: {} }],
      outputs: [...g.outputs, { name: 'z', dtype: 'float32', shape: [] }],
    };
    const problems = checkGraph(broken);
    assert.ok(problems.some((p) => /value b is defined twice/.test(p)));
    assert.ok(problems.some((p) => /reads undefined value nowhere/.test(p)));
    assert.ok(problems.some((p) => /graph output z is not produced/.test(p)));
    const cyc: Graph = { ...g, nodes: [{ name: 'p', op: 'Relu', domain: '', inputs: ['q'], outputs: ['p'], attrs: {} }, { name: 'q', op: 'Relu', domain: '', inputs: ['p'], outputs: ['q'], attrs: {} }] };
    assert.ok(checkGraph(cyc).some((p) => /cycle/.test(p)));
  });

  it('builder names values after nodes and keeps names unique', () => {
    const g = new GraphBuilder('g');
    const a = g.op('Relu', 'n', ['x']);
    const b = g.op('Relu', 'n', [a], { alpha: attr.float(1) });
    assert.deepEqual([a, b], ['n', 'n_1']);
  });
});

describe('tensor', () => {
  it('converts half and bfloat16 exactly, rounding to nearest even', () => {
    for (const v of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, Infinity]) assert.equal(halfToFloat(floatToHalf(v)), v);
    assert.equal(floatToHalf(1 + 2 ** -11), floatToHalf(1)); // tie goes to even
    assert.equal(halfToFloat(floatToHalf(1e6)), Infinity);
    assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
    assert.equal(bfloat16ToFloat(0x3f80), 1);
    assert.equal(bfloat16ToFloat(0xc040), -3);
  });

  it('transposes 2-D tensors of any shape', () => {
    for (const [r, c] of [[1, 1], [3, 5], [17, 33], [40, 16]]) {
      const t = float32([r, c], Array.from({ length: r * c }, (_, i) => i));
      const tt = transpose2d(t);
      assert.deepEqual(tt.shape, [c, r]);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) assert.equal(tt.data[j * r + i], i * c + j);
    }
  });
});

it('the tool version matches package.json', () => {
  assert.equal(TOOL_VERSION, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
});
