// timm Hub folders (what `timm.models.push_to_hf_hub` / save_for_hf write: config.json with
// architecture, num_classes and pretrained_cfg beside model.safetensors), made here around the timm
// fixtures' weights so PyTorch's golden outputs still hold. They convert with no flags, and the
// model records its image size, labels and preprocessing from pretrained_cfg, which quantize and
// validate then use. Architectures whose weights look plain but compute otherwise are refused.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { inspect } from '../src/inspect.js';
import { readOnnxSummary } from '../src/formats/onnx-summary.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { assertClose, fixturePath, golden, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-timm-hub-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LABELS = ['tee', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];

/** A timm Hub folder: the fixture's safetensors as model.safetensors and a config.json as timm writes it. */
function hubFolder(name: string, fixture: string, config: Record<string, unknown>): string {
  const m = manifest.models.find((f) => f.name === fixture)!;
  const folder = join(dir, name);
  mkdirSync(folder);
  copyFileSync(fixturePath(m.path), join(folder, 'model.safetensors'));
  writeFileSync(join(folder, 'config.json'), JSON.stringify(config, null, 2));
  return folder;
}

const timmConfig = (architecture: string, more: Record<string, unknown> = {}) => ({
  architecture,
  num_classes: 10,
  num_features: 32,
  global_pool: 'avg',
  pretrained_cfg: {
    tag: 'test',
    input_size: [3, 64, 64],
    fixed_input_size: false,
    interpolation: 'bilinear',
    crop_pct: 0.95,
    crop_mode: 'center',
    mean: [0.5, 0.4, 0.3],
    std: [0.2, 0.25, 0.3],
    num_classes: 10,
    first_conv: 'stem.0',
    classifier: 'head.fc',
  },
  label_names: LABELS,
  ...more,
});

describe('timm Hub folders', () => {
  for (const [fixture, architecture] of [['v1_timm', 'convnext_atto'], ['v2_timm', 'convnextv2_atto']] as const) {
    it(`${architecture}: converts with no flags to PyTorch's outputs, with image size, labels and preprocessing recorded`, async () => {
      const folder = hubFolder(`${fixture}-hub`, fixture, timmConfig(architecture));
      const out = join(dir, `${fixture}.onnx`);
      const r = await convert(folder, out);
      assert.equal(r.checkpoint?.format, 'hf');
      const m = manifest.models.find((f) => f.name === fixture)!;
      const { input, output } = golden(m);
      assertClose((await runFloat(await createSession(out), input)).data, output, architecture);
      const { metadata, inputs } = readOnnxSummary(out);
      assert.deepEqual(inputs[0].shape.slice(1), [3, 64, 64]);
      assert.deepEqual(JSON.parse(metadata.labels), LABELS);
      assert.deepEqual(JSON.parse(metadata.preprocessing), { resize: Math.floor(64 / 0.95), crop: 64, interpolation: 'bilinear', mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] });
    });
  }

  it('validate and quantize on it need no preprocessing flags (they read the model)', () => {
    const folder = hubFolder('flagless', 'v1_timm', timmConfig('convnext_atto'));
    const out = join(dir, 'flagless.onnx');
    assert.equal(runCli('convert', folder, '-o', out, '-q').code, 0);
    const q = runCli('quantize', out, '-o', join(dir, 'flagless-int8.onnx'), '--to', 'int8', '--calib', fixturePath('fashion/calib'), '--calib-size', '16', '-q');
    assert.equal(q.code, 0, q.stderr);
    const v = runCli('validate', out, '--data', fixturePath('fashion/val'), '--limit', '8', '--batch', 'none', '--ep', 'cpu', '--json');
    assert.equal(v.code, 0, v.stderr);
    assert.equal(JSON.parse(v.stdout).data.images, 8);
  });

  it('label_names as an object, and inspect says it is a timm folder', async () => {
    const folder = hubFolder('dict-labels', 'v1_timm', timmConfig('convnext_atto', { label_names: Object.fromEntries(LABELS.map((l, i) => [String(i), l])) }));
    const info = await inspect(folder);
    assert.equal(info.kind, 'checkpoint');
    assert.equal(info.kind === 'checkpoint' && info.labels, 10);
  });

  it("--image-size test takes pretrained_cfg's test_input_size and test_crop_pct (timm's use_test_size), only from a timm folder", async () => {
    const base = timmConfig('convnext_atto');
    const cfg = { ...base, pretrained_cfg: { ...base.pretrained_cfg, test_input_size: [3, 96, 96], test_crop_pct: 1.0 } };
    const folder = hubFolder('test-size', 'v1_timm', cfg);
    const out = join(dir, 'test-size.onnx');
    const r = await convert(folder, out, { imageSize: 'test' });
    assert.deepEqual(r.warnings, []);
    const { metadata, inputs } = readOnnxSummary(out);
    assert.deepEqual(inputs[0].shape.slice(1), [3, 96, 96]);
    assert.deepEqual(JSON.parse(metadata.preprocessing), { resize: 96, crop: 96, interpolation: 'bilinear', mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] });
    // without the flag the training size stays the default; without a test size timm falls back to input_size
    assert.deepEqual(readOnnxSummary((await convert(folder, join(dir, 'train-size.onnx')), join(dir, 'train-size.onnx'))).inputs[0].shape.slice(1), [3, 64, 64]);
    const plain = await convert(hubFolder('no-test-size', 'v1_timm', timmConfig('convnext_atto')), join(dir, 'no-test-size.onnx'), { imageSize: 'test' });
    assert.match(plain.warnings.join('\n'), /pretrained_cfg has no test_input_size; its input_size is taken, as timm does/);
    const m = manifest.models.find((f) => f.name === 'v1_timm')!;
    assertCliRefused(runCli('convert', fixturePath(m.path), '-o', join(dir, 'x.onnx'), '--image-size', 'test'), /--image-size test takes pretrained_cfg\.test_input_size from a timm Hub folder/, dir, join(dir, 'x.onnx'));
    assertCliRefused(runCli('convert', folder, '-o', join(dir, 'x.onnx'), '--image-size', 'tset'), /expected a positive whole number or 'test', got 'tset'/, dir, join(dir, 'x.onnx'));
  });

  it("convnext_xxlarge's eps comes from timm's registry, and inspect says so", async () => {
    const info = await inspect(hubFolder('xxlarge', 'v1_timm', timmConfig('convnext_xxlarge')));
    assert.ok(info.kind === 'checkpoint');
    assert.deepEqual(info.assumed.find((a) => a.what === 'LayerNorm eps'), { what: 'LayerNorm eps', value: '1e-5', why: "timm's registry for convnext_xxlarge" });
    assert.match(info.assumed.find((a) => a.what === 'preprocessing')!.why, /pretrained_cfg/);
    assert.match(info.assumed.find((a) => a.what === 'image size')!.why, /pretrained_cfg\.input_size/);
  });

  it('architectures whose weights look plain but compute otherwise are refused, naming the piece', () => {
    // the head forms convert (timm-heads.test.ts); named over plain weights, one of the two is wrong
    const plainHead = /but the weights have the plain head \(head\.norm, head\.fc\)/;
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['convnext_tiny_hnf', {}, new RegExp(`convnext_tiny_hnf has head_norm_first .*${plainHead.source}`)],
      // the stems and norms convert (timm-variants.test.ts); named over plain weights, refused likewise
      ['convnext_atto_ols', {}, /convnext_atto_ols has an overlapping stem \(stem\.0, stem\.1 convs, stem\.2 norm\), but the weights have the patch stem/],
      ['convnext_zepto_rms', {}, /convnext_zepto_rms has SimpleNorm norms \(weight only\), but the weights' norms have a bias/],
      ['convnext_tiny_ols', {}, /timm convnext_tiny_ols is not a registered ConvNeXt this tool knows the stem and norm of/],
      ['convnext_atto', { model_args: { norm_layer: 'batchnorm2d' } }, /model_args\.norm_layer "batchnorm2d" is not one this tool builds/],
      ['convnext_large_mlp', {}, new RegExp(`convnext_large_mlp has an MLP head .*${plainHead.source}`)],
      ['convnext_atto', { model_args: { head_norm_first: true } }, new RegExp(`convnext_atto has head_norm_first .*${plainHead.source}`)],
      ['convnext_atto', { model_args: { stem_type: 'overlap' } }, /convnext_atto has an overlapping stem .*but the weights have the patch stem/],
      ['convnext_atto', { model_args: { kernel_sizes: 5 } }, /model_args change kernel_sizes/],
      ['resnet50', {}, /timm architecture resnet50 is not a ConvNeXt/],
    ];
    for (const [i, [architecture, more, pattern]] of cases.entries()) {
      const folder = hubFolder(`refused-${architecture}-${i}`, 'v1_timm', timmConfig(architecture, more));
      assertCliRefused(runCli('convert', folder, '-o', join(dir, 'x.onnx')), pattern, dir, join(dir, 'x.onnx'));
    }
  });

  it("a config that disagrees with the weights (num_classes, V1 vs V2), and crop_mode 'squash'", () => {
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ num_classes: 1000, label_names: undefined }, 'convnext_atto', /num_classes 1000, the weights' head has 10/],
      [{}, 'convnextv2_atto', /config\.json says convnextv2_atto, the weights are ConvNeXt V1/],
    ];
    for (const [i, [more, architecture, pattern]] of bad.entries()) {
      const folder = hubFolder(`disagree-${i}`, 'v1_timm', timmConfig(architecture, more));
      assertCliRefused(runCli('convert', folder, '-o', join(dir, 'x.onnx')), pattern, dir);
    }
    const squash = timmConfig('convnext_atto');
    (squash.pretrained_cfg as Record<string, unknown>).crop_mode = 'squash';
    assertCliRefused(runCli('convert', hubFolder('squash', 'v1_timm', squash), '-o', join(dir, 'x.onnx')), /crop_mode 'squash' is not supported/, dir);
  });
});
