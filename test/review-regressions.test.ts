// Regression tests for bugs found in review: each would have let a broken model pass or crashed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GraphBuilder } from '../src/graph/graph.js';
import { float32 } from '../src/graph/tensor.js';
import { foldConstants } from '../src/passes/fold-constants.js';
import { foldLayerScale } from '../src/passes/fold-layerscale.js';
import { recordingContext } from '../src/passes/pass.js';
import { runGraph } from '../src/runtime/onnxruntime.js';
import { accuracy, agreement } from '../src/runtime/metrics.js';
import { fixturePath, ROOT } from './helpers/fixtures.js';

const BIN = join(ROOT, 'dist', 'bin', 'convnext.js');
const dir = mkdtempSync(join(tmpdir(), 'convnext-review-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

describe('metrics never count a broken output as right', () => {
  it('NaN logits and all-equal logits are wrong, and never agree', () => {
    const nan = Float32Array.from([NaN, NaN, NaN, 1, 2, 3]);
    const flat = Float32Array.from([0, 0, 0, 0, 0, 0]);
    assert.equal(accuracy(nan, 3, [0, 2]).top1, 50);
    assert.equal(accuracy(flat, 3, [1, 2]).top1, 0, 'a tie is not a win');
    assert.equal(accuracy(flat, 3, [0, 0]).top1, 100, 'the first of tied classes is the prediction');
    assert.equal(agreement(nan, nan, 3).top1Agreement, 50);
  });
});

describe('in-place folding', () => {
  it('does not rewrite a weight that fold-constants aliased through an Identity', async () => {
    const g = new GraphBuilder('t');
    const w = g.constant('w', float32([2, 2], [1, 2, 3, 4]));
    const w2 = g.op('Identity', 'w_copy', [w]);
    const a = g.op('MatMul', 'a', ['x', w]);
    const b = g.op('MatMul', 'b', ['x', w2]);
    const la = g.op('Add', 'a_bias', [a, g.constant('ba', float32([2], [0, 0]))]);
    const s = g.op('Mul', 'ls', [la, g.constant('gamma', float32([2], [10, 10]))]);
    g.op('Add', 'sum', [s, b], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: [1, 2] }], [{ name: 'y', dtype: 'float32', shape: [1, 2] }]);
    const x = float32([1, 2], [1, -2]);
    const before = (await runGraph(graph, x)).data.slice();
    const folded = foldConstants.run(graph, recordingContext());
    const ctx = { ...recordingContext(), inPlace: true };
    const after = foldLayerScale.run(folded, ctx);
    assert.equal(ctx.log.length, 1);
    const y = (await runGraph(after, x)).data;
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(y[i] - before[i]) < 1e-4, `${y[i]} vs ${before[i]}`);
  });
});

describe('validate and quantize refuse what they cannot measure (exit 2, one line)', () => {
  const model = join(dir, 'm.onnx');
  const data = join(dir, 'data');
  it('setup', () => {
    assert.equal(cli('convert', fixturePath('fashion/convnext_fashion.pth'), '-o', model, '--image-size', '32', '--crop-pct', '1', '-q').status, 0);
    mkdirSync(data);
    const val = fixturePath('fashion/val');
    for (const f of readdirSync(val).filter((n) => n.endsWith('.png')).slice(0, 4)) copyFileSync(join(val, f), join(data, f));
  });
  const cases: [string, string[], RegExp][] = [
    ['a label beyond the class count', ['validate', model, '--data', data, '--batch', 'none', '--ep', 'cpu'], /label 12 is not a class of the model/],
    ['a mean with one value', ['validate', model, '--data', data, '--mean', '0.5'], /expected three numbers/],
    ['a zero std', ['quantize', model, '-o', join(dir, 'q.onnx'), '--to', 'int8', '--calib', data, '--std', '0,0,0'], /three positive numbers/],
    ['a gate that is not a number', ['validate', model, '--reference', model, '--data', data, '--min-agreement', 'abc'], /expected a number/],
    ['a bad batch list', ['validate', model, '--batch', '1,x'], /positive whole number/],
    ['a latency gate without timing', ['validate', model, '--batch', 'none', '--max-latency-ms', '100'], /need timing/],
  ];
  for (const [what, args, message] of cases) {
    it(what, () => {
      writeFileSync(join(data, 'labels.txt'), readdirSync(data).filter((n) => n.endsWith('.png')).map((f, i) => `${f} ${i === 1 ? 12 : 3}`).join('\n'));
      const r = cli(...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    });
  }
});

describe('progress', () => {
  it('predict reports 0 done before the first batch, so images/s and the ETA count the first batch’s time', async () => {
    const { predict } = await import('../src/runtime/predict.js');
    const { openDataset } = await import('../src/data/images.js');
    const data = openDataset(fixturePath('fashion/val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, limit: 6 });
    const calls: [number, number][] = [];
    await predict([async (x) => ({ data: new Float32Array(x.shape[0] * 10), dims: [x.shape[0], 10] })], data, { batchSize: 4, onProgress: (d, t) => calls.push([d, t]) });
    assert.deepEqual(calls, [[0, 6], [4, 6], [6, 6]]);
  });
});
