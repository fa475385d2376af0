// A quantized ONNX model going to TF.js: back to float32, with its precision kept in the weight storage.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { decodeOnnx } from '../src/formats/onnx.js';
import { checkGraph } from '../src/graph/graph.js';
import { toFloat32Graph } from '../src/passes/to-float32.js';
import { quantize } from '../src/quantize/index.js';
import { runGraph } from '../src/runtime/onnxruntime.js';
import { assertClose, fixturePath, golden, manifest } from './helpers/fixtures.js';
import { runTfliteFile } from './helpers/litert.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-f32-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const m = manifest.models.find((x) => x.name === 'v1_official')!;

describe('to-float32', () => {
  for (const [to, precision, tolerance] of [['int8-weights', 'int8', 0.06], ['fp16', 'float16', 1e-2], ['int8', 'int8', 0.15]] as const) {
    it(`${to}: a plain float32 graph that still computes the model (${precision})`, async () => {
      const q = join(dir, `${to}.onnx`);
      await quantize(fixturePath(m.path), q, { to, imageSize: 64, calib: fixturePath('golden/input.npy') });
      const { graph, precision: found } = toFloat32Graph(decodeOnnx(readFileSync(q), { source: q }));
      assert.equal(found, precision);
      assert.deepEqual(checkGraph(graph), []);
      assert.ok(!graph.nodes.some((n) => ['QuantizeLinear', 'DequantizeLinear', 'Cast'].includes(n.op)));
      assert.ok([...graph.initializers.values()].every((t) => t.dtype !== 'float16' && t.dtype !== 'int8'));
      const { input, output } = golden(m);
      const y = (await runGraph(graph, input)).data;
      let maxErr = 0;
      let maxRef = 0;
      for (let i = 0; i < y.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(y[i] - (output.data as Float32Array)[i]));
        maxRef = Math.max(maxRef, Math.abs((output.data as Float32Array)[i]));
      }
      assert.ok(maxErr / maxRef < tolerance, `${maxErr / maxRef}`);
      const folder = join(dir, `${to}-tfjs`);
      await convert(q, folder, { format: 'tfjs' });
      const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8'));
      const weights = json.weightsManifest[0].weights as { dtype: string; quantization?: { dtype: string } }[];
      const stored = weights.map((w) => w.quantization?.dtype ?? w.dtype);
      assert.ok(stored.includes(precision === 'int8' ? 'uint8' : 'float16'), `TF.js keeps ${precision} weights (${[...new Set(stored)]})`);
    });
  }

  it('fp16 ONNX → TFLite: its GELU, √2 rounded to float16 (1.4140625), is still GELU, and LiteRT computes the model', async () => {
    // the GELU matcher once wanted √2 within 1e-6, so the Erf stayed, and TFLite has no Erf
    const q = join(dir, 'fp16-for-tflite.onnx');
    await quantize(fixturePath(m.path), q, { to: 'fp16', imageSize: 64 });
    const out = join(dir, 'fp16.tflite');
    await convert(q, out, { format: 'tflite', tflite: { batch: 2 } });
    const { input, output } = golden(m);
    const y = await runTfliteFile(out, input);
    assertClose(y.data, output, 'fp16 ONNX → TFLite', 1e-2);
  });
});
