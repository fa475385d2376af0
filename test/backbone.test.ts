// Backbone export: convert --outputs stages gives the four stages' feature maps (NCHW, after each
// stage's blocks) and --outputs pooled the normalised pooled features, equal to PyTorch's
// (fixtures/make_backbone_goldens.py, the official definition) for a V1 and a V2 checkpoint, with a
// static and a dynamic spatial size, the dynamic one run at two sizes; in onnxruntime and TF.js.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { convert } from '../src/convert.js';
import { readNpy } from '../src/formats/npy.js';
import { readOnnxSummary } from '../src/formats/onnx-summary.js';
import type { Tensor } from '../src/graph/tensor.js';
import { createSession } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel, tfjs } from '../src/runtime/tfjs.js';
import { assertClose, fixturePath } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-backbone-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const inputs: Record<string, Tensor> = { '64': readNpy(fixturePath('golden/input.npy')), '96': readNpy(fixturePath('golden/input96.npy')) };
const stageGolden = (v: string, size: string, s: number) => readNpy(fixturePath(`golden/stages_${v}_official_${size}_s${s}.npy`));

async function runAll(model: string, x: Tensor): Promise<Record<string, ort.Tensor>> {
  const session = await createSession(model);
  try {
    return await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
  } finally {
    await session.release();
  }
}

describe('backbone export', () => {
  for (const v of ['v1', 'v2']) {
    const ckpt = fixturePath(`${v}/official.pth`);

    it(`${v}: --outputs stages, static 64 and dynamic at 64 and 96, match PyTorch stage by stage`, async () => {
      const fixed = join(dir, `${v}-stages.onnx`);
      await convert(ckpt, fixed, { imageSize: 64, outputs: 'stages' });
      const summary = readOnnxSummary(fixed);
      assert.deepEqual(summary.inputs[0].shape, ['batch', 3, 64, 64]);
      const dynamic = join(dir, `${v}-stages-dynamic.onnx`);
      await convert(ckpt, dynamic, { imageSize: 64, outputs: 'stages', dynamicSize: true });
      for (const [model, sizes] of [[fixed, ['64']], [dynamic, ['64', '96']]] as const) {
        for (const size of sizes) {
          const out = await runAll(model, inputs[size]);
          for (let s = 0; s < 4; s++) {
            const want = stageGolden(v, size, s);
            assert.deepEqual(out[`stage${s}`].dims, want.shape, `stage${s} shape at ${size}`);
            assertClose(out[`stage${s}`].data as Float32Array, want, `${v} stage${s} at ${size}`);
          }
        }
      }
    });

    it(`${v}: --outputs pooled gives the head's normalised features`, async () => {
      const out = join(dir, `${v}-pooled.onnx`);
      await convert(ckpt, out, { imageSize: 64, outputs: 'pooled' });
      const y = await runAll(out, inputs['64']);
      assertClose(y.features.data as Float32Array, readNpy(fixturePath(`golden/pooled_${v}_official_64.npy`)), `${v} pooled`);
    });
  }

  it('TF.js: the four feature maps of a dynamic-size V2 backbone at 96', async () => {
    const folder = join(dir, 'v2-stages-tfjs');
    await convert(fixturePath('v2/official.pth'), folder, { imageSize: 64, outputs: 'stages', dynamicSize: true, format: 'tfjs' });
    const { tf } = await tfjs();
    const loaded = await loadTfjsModel(folder, 'cpu');
    try {
      const x = inputs['96'];
      const nhwc = tf.transpose(tf.tensor(x.data as Float32Array, [...x.shape]), [0, 2, 3, 1]);
      const outs = loaded.model.execute(nhwc, ['stage0', 'stage1', 'stage2', 'stage3']) as import('@tensorflow/tfjs-core').Tensor[];
      for (let s = 0; s < 4; s++) {
        const nchw = tf.transpose(outs[s], [0, 3, 1, 2]);
        assertClose((await nchw.data()) as Float32Array, stageGolden('v2', '96', s), `tfjs v2 stage${s} at 96`);
      }
    } finally {
      loaded.dispose();
    }
  });
});
