// Backbone export: convert --outputs stages gives the four stages' feature maps (NCHW, after each
// stage's blocks) and --outputs pooled the normalised pooled features, equal to PyTorch's
// (fixtures/make_backbone_goldens.py, the official definition) for a V1 and a V2 checkpoint, with a
// static and a dynamic spatial size, the dynamic one run at two sizes; in onnxruntime and TF.js.
// Backbone checkpoints (fixtures/backbone/manifest.json: HF ConvNextBackbone/V2 folders, a
// UperNet-style backbone.-prefixed .pth, an official det-style .pth) convert by default to exactly
// their feature maps, each through its own LayerNorm, equal to PyTorch's; the refusals exit 2.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { convert } from '../src/convert.js';
import { inspect } from '../src/inspect.js';
import { quantize } from '../src/quantize/index.js';
import { readNpy } from '../src/formats/npy.js';
import { readOnnxSummary } from '../src/formats/onnx-summary.js';
import type { Tensor } from '../src/graph/tensor.js';
import { createSession } from '../src/runtime/onnxruntime.js';
import { loadTfjsModel, tfjs } from '../src/runtime/tfjs.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
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

interface BackboneFixture {
  name: string;
  path: string;
  layout: string;
  input: string;
  image_size: number;
  state_dict_key?: string;
  dropped?: string[];
  features: { name: string; channels: number; shape: number[]; golden: string }[];
}
const backbones = (JSON.parse(readFileSync(fixturePath('backbone/manifest.json'), 'utf8')) as { models: BackboneFixture[] }).models;

async function matchFeatures(m: BackboneFixture, outs: Record<string, { dims: readonly number[]; data: unknown }>, what: string, tolerance?: number): Promise<string> {
  const errors: string[] = [];
  for (const f of m.features) {
    const want = readNpy(fixturePath(f.golden));
    assert.deepEqual(outs[f.name].dims, want.shape, `${what} ${f.name} shape`);
    errors.push(`${f.name} ${assertClose(outs[f.name].data as Float32Array, want, `${what} ${f.name}`, tolerance).toExponential(1)}`);
  }
  return errors.join(', ');
}

describe('backbone checkpoints', () => {
  for (const m of backbones) {
    it(`${m.name}: converts by default to its feature maps ${m.features.map((f) => f.name).join(', ')}, each matching PyTorch`, async (t) => {
      const out = join(dir, `${m.name}.onnx`);
      const result = await convert(fixturePath(m.path), out, { imageSize: m.image_size });
      const onnx = await inspect(out);
      assert.ok(onnx.kind === 'onnx');
      assert.deepEqual(onnx.outputs.map((o) => [o.name, ...o.shape]), m.features.map((f) => [f.name, 'batch', ...f.shape.slice(1)]));
      const ys = await runAll(out, readNpy(fixturePath(m.input)));
      assert.deepEqual(Object.keys(ys).sort(), m.features.map((f) => f.name).sort());
      t.diagnostic(`max |error| / max |golden|: ${await matchFeatures(m, ys, m.name)}`);
      for (const head of m.dropped ?? []) assert.ok(result.warnings.some((w) => w.includes('dropped') && w.includes(head)), `a warning names ${head}: ${result.warnings}`);
      if (!m.dropped) assert.deepEqual(result.warnings, []);
    });

    it(`${m.name}: inspect gives the layout and the feature maps`, async () => {
      const info = await inspect(fixturePath(m.path));
      assert.equal(info.kind, 'checkpoint');
      if (info.kind !== 'checkpoint') return;
      assert.equal(info.layout, m.layout);
      assert.deepEqual(info.outFeatures?.map((f) => [f.name, f.channels, f.norm]), m.features.map((f) => [f.name, f.channels, true]));
      if (m.state_dict_key) assert.equal(info.stateDictKey, `${m.state_dict_key}.backbone`);
    });
  }

  const hf = backbones.find((m) => m.name === 'hf_v2')!;

  it('an UperNet folder (model_type upernet, backbone_config convnext) converts to its backbone\'s feature maps, the heads dropped by name', async (t) => {
    const m = backbones.find((b) => b.name === 'upernet_v1')!;
    const folder = join(dir, 'upernet-folder');
    cpSync(fixturePath(m.path), join(folder, 'pytorch_model.bin'));
    const backboneConfig = { model_type: 'convnext', depths: [2, 1, 2, 1], hidden_sizes: [8, 16, 24, 32], image_size: 64, out_features: m.features.map((f) => f.name), layer_norm_eps: 1e-12, id2label: { 0: 'LABEL_0', 1: 'LABEL_1' } };
    const config = { architectures: ['UperNetForSemanticSegmentation'], model_type: 'upernet', hidden_size: 512, use_auxiliary_head: true, id2label: { 0: 'wall', 1: 'building', 2: 'sky' }, backbone_config: backboneConfig };
    writeFileSync(join(folder, 'config.json'), JSON.stringify(config));
    const out = join(dir, 'upernet-folder.onnx');
    const result = await convert(folder, out);
    assert.equal(result.checkpoint?.format, 'hf');
    t.diagnostic(`max |error| / max |golden|: ${await matchFeatures(m, await runAll(out, readNpy(fixturePath(m.input))), 'UperNet folder')}`);
    assert.deepEqual(result.warnings, ["took the ConvNeXt under 'backbone'; dropped what is not part of it: auxiliary_head (2 tensors), decode_head (3 tensors)"]);
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ ...config, backbone_config: undefined, backbone: 'convnext_tiny' }, /an UperNet config without backbone_config \(it names backbone "convnext_tiny" instead\)/],
      [{ ...config, backbone_config: { ...backboneConfig, model_type: 'swin' } }, /an UperNet whose backbone is not a ConvNeXt: backbone_config\.model_type is "swin"/],
      [{ ...config, backbone_config: { ...backboneConfig, depths: [3, 3, 9, 3] } }, /config\.json says depths \[3,3,9,3\]/],
      [{ ...config, backbone_config: { ...backboneConfig, out_features: ['stage2'] } }, /hidden_states_norms for stage1, stage3, stage4, which out_features \[stage2\] does not list/],
    ];
    for (const [i, [bad, pattern]] of refused.entries()) {
      writeFileSync(join(folder, 'config.json'), JSON.stringify(bad));
      assertCliRefused(runCli('convert', folder, '-o', join(dir, `upernet-bad-${i}.onnx`)), pattern, dir, join(dir, `upernet-bad-${i}.onnx`));
    }
  });

  it('fp16: a V2 backbone quantized to fp16 keeps float32 feature maps close to PyTorch', async (t) => {
    const out = join(dir, 'hf_v2-fp16.onnx');
    await quantize(fixturePath(hf.path), out, { to: 'fp16', imageSize: 64 });
    const ys = await runAll(out, readNpy(fixturePath(hf.input)));
    for (const f of hf.features) assert.equal(ys[f.name].type, 'float32');
    t.diagnostic(`fp16, max |error| / max |golden|: ${await matchFeatures(hf, ys, 'fp16', 1e-2)}`);
  });

  it('TF.js: the feature maps of a V1 HF backbone (stem included), NHWC', async (t) => {
    const m = backbones.find((b) => b.name === 'hf_v1')!;
    const folder = join(dir, 'hf_v1-tfjs');
    await convert(fixturePath(m.path), folder, { imageSize: 64, format: 'tfjs' });
    const { tf } = await tfjs();
    const loaded = await loadTfjsModel(folder, 'cpu');
    try {
      const x = readNpy(fixturePath(m.input));
      const nhwc = tf.transpose(tf.tensor(x.data as Float32Array, [...x.shape]), [0, 2, 3, 1]);
      const names = m.features.map((f) => f.name);
      const outs = loaded.model.execute(nhwc, names) as import('@tensorflow/tfjs-core').Tensor[];
      const ys: Record<string, { dims: readonly number[]; data: unknown }> = {};
      for (let i = 0; i < names.length; i++) {
        const nchw = tf.transpose(outs[i], [0, 3, 1, 2]);
        ys[names[i]] = { dims: nchw.shape, data: await nchw.data() };
      }
      t.diagnostic(`TF.js, max |error| / max |golden|: ${await matchFeatures(m, ys, 'tfjs')}`);
    } finally {
      loaded.dispose();
    }
  });

  describe('refusals: exit 2, one line', () => {
    const withConfig = (name: string, edit: (c: Record<string, unknown>) => void) => {
      const folder = join(dir, name);
      cpSync(fixturePath('backbone/hf_v1'), folder, { recursive: true });
      const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
      edit(config);
      writeFileSync(join(folder, 'config.json'), JSON.stringify(config));
      return folder;
    };
    const refused = (input: string, pattern: RegExp, ...flags: string[]) => {
      const out = join(dir, 'refused.onnx');
      assertCliRefused(runCli('convert', input, '-o', out, ...flags), pattern, dir, out);
    };

    it('an out_feature that is not a stage', () => {
      const folder = withConfig('bad-stage', (c) => {
        c.out_features = ['stem', 'stage7'];
        delete c.out_indices;
      });
      refused(folder, /config\.json: out_features has 'stage7', which is not a stage \(the stages are stem, stage1, stage2, stage3, stage4\)/);
    });

    it('norms for a stage that out_features does not list', () => {
      const folder = withConfig('extra-norms', (c) => {
        c.out_features = ['stage4'];
        c.out_indices = [4];
      });
      refused(folder, /hidden_states_norms for stem, stage2, which out_features \[stage4\] does not list/);
    });

    it('out_features and out_indices naming different stages', () => {
      refused(withConfig('disagree', (c) => (c.out_indices = [0, 2, 3])), /out_features \[stem, stage2, stage4\] and out_indices \[0, 2, 3\] name different stages/);
    });

    it('a checkpoint of task heads alone', () => {
      refused(fixturePath('backbone/head_only.pth'), /head_only\.pth: holds only task heads \(decode_head, auxiliary_head\), no backbone/);
    });

    it('logits or pooled features of a backbone, which has no head', () => {
      refused(fixturePath('backbone/det_v1.pth'), /has no head for --outputs logits; --outputs stages, its default, gives the feature maps/, '--outputs', 'logits');
    });
  });
});
