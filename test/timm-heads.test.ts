// timm's two other ConvNeXt heads, as Hub folders (fixtures/make_timm_heads.py, PyTorch goldens):
// NormMlpClassifierHead with a hidden layer (convnext_large_mlp: pool → norm → fc → GELU → fc) and
// head_norm_first (convnext_tiny_hnf: norm_pre on the map → pool → fc). Each converts with no flags
// through every default pass to PyTorch's logits and pre-logits features, in onnxruntime and TF.js,
// and survives fp16 and int8; a config.json that names another head form than the weights is refused.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { UnsupportedError } from '../src/errors.js';
import { readNpy } from '../src/formats/npy.js';
import type { Tensor } from '../src/graph/tensor.js';
import { timmArchitecture } from '../src/convnext/timm.js';
import { quantize } from '../src/quantize/index.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel, tfjs } from '../src/runtime/tfjs.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { assertClose, fixturePath } from './helpers/fixtures.js';
import { FP16_TOLERANCE, INT8_STATIC_TOLERANCE, INT8_WEIGHTS_TOLERANCE } from './helpers/quantize.js';

interface HeadFixture {
  name: string;
  path: string;
  architecture: string;
  kind: 'mlp' | 'hnf';
  hidden: number;
  widths: number[];
  input: string;
  output: string;
  pooled: string;
  pooled_width: number;
}

const fixtures = (JSON.parse(readFileSync(fixturePath('timm_heads/manifest.json'), 'utf8')) as { models: HeadFixture[] }).models;
const dir = mkdtempSync(join(tmpdir(), 'convnext-timm-heads-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(model: string, x: Tensor, dims?: readonly number[]): Promise<Float32Array> {
  const session = await createSession(model);
  try {
    const y = await runFloat(session, x);
    if (dims) assert.deepEqual(y.dims, dims);
    return y.data;
  } finally {
    await session.release();
  }
}

describe('timm head forms', () => {
  assert.deepEqual(fixtures.map((f) => f.kind).sort(), ['hnf', 'mlp']);
  for (const f of fixtures) {
    const input = readNpy(fixturePath(f.input));
    const logits = readNpy(fixturePath(f.output));
    const fp32 = join(dir, `${f.name}.onnx`);

    it(`${f.architecture}: converts with no flags to PyTorch's logits`, async (t) => {
      const r = await convert(fixturePath(f.path), fp32);
      assert.equal(r.checkpoint?.format, 'hf');
      // the head's LayerNorm hands its affine to the Gemm that alone reads it; norm_pre, read by
      // the pooling, keeps its own; LayerScale folds as in any V1
      const fired = (pass: string) => r.passes.find((p) => p.name === pass)!.fired.map((x) => x.where);
      assert.equal(fired('fold-layernorm-affine').includes('head.norm'), f.kind === 'mlp');
      assert.equal(fired('fold-layernorm-affine').includes('norm_pre'), false);
      assert.ok(fired('fold-layerscale').length > 0);
      t.diagnostic(`max |error| / max |logit|: ${assertClose(await run(fp32, input, [2, 10]), logits, f.name).toExponential(2)}`);
    });

    it(`${f.architecture}: --outputs pooled gives timm's pre-logits features (${f.pooled_width} wide)`, async (t) => {
      const out = join(dir, `${f.name}-pooled.onnx`);
      await convert(fixturePath(f.path), out, { outputs: 'pooled' });
      t.diagnostic(`max |error| / max: ${assertClose(await run(out, input, [2, f.pooled_width]), readNpy(fixturePath(f.pooled)), `${f.name} pooled`).toExponential(2)}`);
    });

    it(`${f.architecture}: fp16, int8-weights and int8 keep the logits`, async (t) => {
      const half = join(dir, `${f.name}-fp16.onnx`);
      await quantize(fp32, half, { to: 'fp16' });
      const e16 = assertClose(await run(half, input), logits, `${f.name} fp16`, FP16_TOLERANCE);
      const w8 = join(dir, `${f.name}-w8.onnx`);
      await quantize(fp32, w8, { to: 'int8-weights' });
      const ew8 = assertClose(await run(w8, input), logits, `${f.name} int8-weights`, INT8_WEIGHTS_TOLERANCE);
      const q8 = join(dir, `${f.name}-int8.onnx`);
      await quantize(fp32, q8, { to: 'int8', calib: fixturePath('fashion/calib') });
      // calibrated on images, run on the N(0,1) golden input: compared on the error alone
      const got = await run(q8, input);
      const ref = logits.data as Float32Array;
      const maxRef = Math.max(...ref.map(Math.abs));
      const e8 = Math.max(...ref.map((v, i) => Math.abs(got[i] - v))) / maxRef;
      assert.ok(e8 <= INT8_STATIC_TOLERANCE, `${f.name} int8: ${e8.toExponential(2)} × max |logit|`);
      t.diagnostic(`fp16 ${e16.toExponential(2)}, int8-weights ${ew8.toExponential(2)}, int8 ${e8.toExponential(2)}`);
    });

    it(`${f.architecture}: the TF.js graph model gives the same logits`, async (t) => {
      const folder = join(dir, `${f.name}-tfjs`);
      await convert(fixturePath(f.path), folder, { format: 'tfjs' });
      const { tf } = await tfjs();
      const loaded = await loadTfjsModel(folder, 'cpu');
      try {
        const nhwc = tf.transpose(tf.tensor(input.data as Float32Array, [...input.shape]), [0, 2, 3, 1]);
        const y = loaded.model.execute(nhwc) as import('@tensorflow/tfjs-core').Tensor;
        t.diagnostic(`max |error| / max |logit|: ${assertClose((await y.data()) as Float32Array, logits, `${f.name} tfjs`).toExponential(2)}`);
      } finally {
        loaded.dispose();
      }
    });
  }

  it('a config.json naming another head form than the weights hold exits 2 in one line', () => {
    const mlp = fixtures.find((f) => f.kind === 'mlp')!;
    const folder = join(dir, 'mislabelled');
    cpSync(fixturePath(mlp.path), folder, { recursive: true });
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, architecture: 'convnext_tiny_hnf', model_args: {} }));
    assertCliRefused(runCli('convert', folder, '-o', join(dir, 'mislabelled.onnx')), /convnext_tiny_hnf has head_norm_first .*but the weights have an MLP head/, dir, join(dir, 'mislabelled.onnx'));
  });

  it('the registry gives the head forms by name, and refuses an *_ols / *_rms name it does not register', () => {
    assert.deepEqual(timmArchitecture('convnext_large_mlp.clip_laion2b_ft_320').head, { normFirst: false, mlpHidden: true });
    assert.deepEqual(timmArchitecture('convnext_tiny_hnf.a2h_in1k').head, { normFirst: true, mlpHidden: false });
    for (const name of ['convnext_tiny_ols', 'convnext_base_rms']) assert.throws(() => timmArchitecture(name), UnsupportedError, name);
  });
});
