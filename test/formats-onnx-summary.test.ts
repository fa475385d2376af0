// readOnnxSummary: validate's cheap look at an ONNX file (metadata and inputs, no weights) must say
// what the full decoder says, and refuse a broken file with a one-line error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { InputError } from '../src/errors.js';
import { decodeOnnx, encodeOnnx, joinChunks } from '../src/formats/onnx.js';
import { readOnnxSummary } from '../src/formats/onnx-summary.js';
import { attr, GraphBuilder } from '../src/graph/graph.js';
import { float32 } from '../src/graph/tensor.js';
import { fixturePath, manifest } from './helpers/fixtures.js';
import { throwsUser } from './helpers/assert-errors.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-summary-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function written(name: string, external = false): string {
  const g = new GraphBuilder('g');
  const w = g.constant('w', float32([4, 3, 2, 2], Array.from({ length: 48 }, (_, i) => i / 7)));
  g.op('Conv', 'conv', ['pixel_values', w], { kernel_shape: attr.ints([2, 2]) }, 'logits');
  const graph = g.build([{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 8, 8] }], [{ name: 'logits', dtype: 'float32', shape: ['batch', 4, 7, 7] }], {
    labels: JSON.stringify(['a', 'b', 'c', 'd']),
    preprocessing: '{"resize":8}',
  });
  const path = join(dir, name);
  const encoded = encodeOnnx(graph, { producerVersion: 't', external: external ? { location: `${name}.data`, minBytes: 16 } : undefined });
  writeFileSync(path, joinChunks(encoded.model));
  if (encoded.externalData) writeFileSync(`${path}.data`, joinChunks(encoded.externalData));
  return path;
}

describe('readOnnxSummary', () => {
  const paths = [...manifest.models.filter((m) => m.format === 'onnx').map((m) => fixturePath(m.path)), written('meta.onnx'), written('external.onnx', true)];
  for (const path of paths) {
    it(`says what decodeOnnx says: ${path.split('/').slice(-2).join('/')}`, () => {
      const full = decodeOnnx(readFileSync(path), { source: path, readExternal: (loc) => readFileSync(join(path, '..', loc)) });
      const summary = readOnnxSummary(path);
      assert.deepEqual(summary.inputs, full.inputs);
      assert.deepEqual(summary.metadata, full.metadata);
    });
  }

  it('leaves out inputs that are initializers (older exporters list every weight as an input)', () => {
    const path = written('listed.onnx');
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(readFileSync(path));
    model.graph!.input!.push({ name: 'w', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }, { dimValue: 3 }, { dimValue: 2 }, { dimValue: 2 }] } } } });
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
    assert.deepEqual(readOnnxSummary(path).inputs.map((v) => v.name), ['pixel_values']);
  });

  it('a truncated or garbled file is an InputError naming it, at every length', () => {
    const bytes = readFileSync(written('whole.onnx'));
    const cut = join(dir, 'cut.onnx');
    let refused = 0;
    let tried = 0;
    for (let n = 1; n < bytes.length; n += 7, tried++) {
      writeFileSync(cut, bytes.subarray(0, n));
      try {
        readOnnxSummary(cut); // a cut between two fields is a shorter valid message
      } catch (e) {
        assert.ok(e instanceof InputError, `length ${n}: ${(e as Error).message}`);
        assert.match(e.message, /cut\.onnx: not a valid ONNX model/);
        refused++;
      }
    }
    // the graph and the weights are single long fields: nearly every cut lands inside one
    assert.ok(refused > 0.9 * tried, `${refused} of ${tried} cuts refused`);
    writeFileSync(cut, Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    throwsUser(() => readOnnxSummary(cut), InputError, /not a valid ONNX model/);
  });
});
