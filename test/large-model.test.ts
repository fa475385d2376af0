// Models past protobuf's 2 GiB limit (ONNX with external data), as ConvNeXt-V2-H is: made here at
// test time (2.2 GB, deleted after; skipped, saying so, when the disk lacks room), then read by
// every command without a whole-file buffer: inspect, convert (which writes external data again),
// quantize --to int8-weights and validate (onnxruntime reads it by path).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeFilesAtomic } from '../src/formats/files.js';
import { encodeOnnx } from '../src/formats/onnx.js';
import { attr, type Graph } from '../src/graph/graph.js';
import { float32 } from '../src/graph/tensor.js';
import { runCliMeasured } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-large-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Eight Convs whose kernels cover the whole 210×210 image, 512 channels each, concatenated: like a
// large ConvNeXt, many tensors that together (2.17 GB) pass 2 GiB while each stays far below it.
const PARTS = 8;
const OUT = 4096;
const SIZE = 210;
const NEEDED_BYTES = 12 * 2 ** 30;
const free = (() => {
  const s = statfsSync(tmpdir());
  return s.bavail * s.bsize;
})();

function writeLargeModel(path: string): void {
  const per = OUT / PARTS;
  const weights = Array.from({ length: PARTS }, (_, k) => {
    const w = float32([per, 3, SIZE, SIZE]);
    const data = w.data as Float32Array;
    for (let o = 0; o < per; o++) data.fill((((k * per + o) % 17) - 8) * 1e-6, o * 3 * SIZE * SIZE, (o + 1) * 3 * SIZE * SIZE);
    return w;
  });
  const convs = weights.map((_, k) => ({
    name: `conv${k}`, op: 'Conv', domain: '', inputs: ['pixel_values', `w${k}`], outputs: [`c${k}`], attrs: { kernel_shape: attr.ints([SIZE, SIZE]) },
  }));
  const graph: Graph = {
    name: 'large',
    inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, SIZE, SIZE] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', OUT] }],
    nodes: [
      ...convs,
      { name: 'concat', op: 'Concat', domain: '', inputs: convs.map((c) => c.outputs[0]), outputs: ['c'], attrs: { axis: attr.int(1) } },
      { name: 'flatten', op: 'Flatten', domain: '', inputs: ['c'], outputs: ['logits'], attrs: { axis: attr.int(1) } },
    ],
    initializers: new Map(weights.map((w, k) => [`w${k}`, w])),
    opsets: { '': 17 },
    metadata: {},
  };
  const encoded = encodeOnnx(graph, { producerVersion: 'test', external: { location: 'large.onnx.data', minBytes: 1024 } });
  writeFilesAtomic([{ path, chunks: encoded.model }, { path: `${path}.data`, chunks: encoded.externalData! }]);
}

describe('a model over 2 GiB', { skip: free < NEEDED_BYTES && `needs ${NEEDED_BYTES / 2 ** 30} GiB free in ${tmpdir()}, has ${(free / 2 ** 30).toFixed(1)}` }, () => {
  const model = join(dir, 'large.onnx');
  const measured: string[] = [];
  const ok = (...args: string[]) => {
    const r = runCliMeasured(...args);
    assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    measured.push(`${args[0]} ${(r.ms / 1000).toFixed(1)} s, peak RSS ${(r.maxRssBytes / 2 ** 30).toFixed(2)} GiB`);
    return r;
  };

  it('is made: 2.17 GB of external data', () => {
    writeLargeModel(model);
    assert.ok(statSync(`${model}.data`).size > 2 ** 31);
  });

  it('inspect, convert, quantize --to int8-weights and validate take it', (t) => {
    t.after(() => t.diagnostic(measured.join('; ')));
    assert.equal(JSON.parse(ok('inspect', model, '--json').stdout).parameters, OUT * 3 * SIZE * SIZE);
    const converted = join(dir, 'converted.onnx');
    ok('convert', model, '-o', converted, '-q');
    assert.ok(existsSync(`${converted}.data`) && statSync(`${converted}.data`).size > 2 ** 31, 'weights in external data');
    const q = join(dir, 'w8.onnx');
    ok('quantize', converted, '-o', q, '--to', 'int8-weights', '-q');
    assert.ok(statSync(q).size < 0.3 * statSync(`${converted}.data`).size);
    const v = ok('validate', converted, '--ep', 'cpu', '--batch', '1', '--json');
    assert.equal(JSON.parse(v.stdout).speed.model[0].batch, 1);
  });
});
