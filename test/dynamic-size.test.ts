// convert --dynamic-size: symbolic input height and width. At the fixtures' 64×64 the model gives
// PyTorch's golden outputs; at other sizes it gives what a static conversion for that size gives
// (ConvNeXt is fully convolutional up to the global pooling), in onnxruntime and in TF.js.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { readOnnxSummary } from '../src/formats/onnx-summary.js';
import { float32, type Tensor } from '../src/graph/tensor.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel } from '../src/runtime/tfjs.js';
import { validate } from '../src/validate/index.js';
import { assertClose, fixturePath, golden, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-dynamic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function image(size: number): Tensor {
  const t = float32([2, 3, size, size]);
  (t.data as Float32Array).forEach((_, i, a) => (a[i] = Math.sin(i * 0.37) * 1.5));
  return t;
}

describe('convert --dynamic-size', () => {
  for (const name of ['v1_timm', 'v2_timm']) {
    const m = manifest.models.find((f) => f.name === name)!;
    it(`${name}: symbolic height and width; PyTorch's outputs at 64, a static conversion's at 96 and 160`, async () => {
      const dynamic = join(dir, `${name}-dynamic.onnx`);
      await convert(fixturePath(m.path), dynamic, { imageSize: m.image_size, dynamicSize: true });
      assert.deepEqual(readOnnxSummary(dynamic).inputs[0].shape, ['batch', 3, 'height', 'width']);
      const session = await createSession(dynamic);
      const { input, output } = golden(m);
      assertClose((await runFloat(session, input)).data, output, `${name} dynamic at 64`);
      for (const size of [96, 160]) {
        const fixed = join(dir, `${name}-${size}.onnx`);
        await convert(fixturePath(m.path), fixed, { imageSize: size });
        const x = image(size);
        assertClose((await runFloat(session, x)).data, { dtype: 'float32', shape: [2, 10], data: (await runFloat(await createSession(fixed), x)).data }, `${name} dynamic at ${size}`, 1e-5);
      }
    });
  }

  it('TF.js: the same model at two sizes', async () => {
    const m = manifest.models.find((f) => f.name === 'v1_timm')!;
    const folder = join(dir, 'tfjs-dynamic');
    await convert(fixturePath(m.path), folder, { imageSize: m.image_size, dynamicSize: true, format: 'tfjs' });
    const model = await loadTfjsModel(folder, 'cpu');
    try {
      const { input, output } = golden(m);
      assertClose((await model.run({ data: input.data as Float32Array, shape: input.shape })).data, output, 'tfjs dynamic at 64');
      const fixed = join(dir, 'v1-96.onnx');
      await convert(fixturePath(m.path), fixed, { imageSize: 96 });
      const x = image(96);
      const want = (await runFloat(await createSession(fixed), x)).data;
      assertClose((await model.run({ data: x.data as Float32Array, shape: x.shape })).data, { dtype: 'float32', shape: [2, 10], data: want }, 'tfjs dynamic at 96', 1e-4);
    } finally {
      model.dispose();
    }
  });

  it('validate times a dynamic-size model at the size it was converted for', async () => {
    const m = manifest.models.find((f) => f.name === 'v1_timm')!;
    const dynamic = join(dir, 'timed.onnx');
    await convert(fixturePath(m.path), dynamic, { imageSize: m.image_size, dynamicSize: true, verify: true });
    const r = await validate(dynamic, { batches: [1], ep: 'cpu' });
    assert.equal(r.speed!.model[0].batch, 1);
  });
});
