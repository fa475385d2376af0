// --format transformers.js: the folder written for the Fashion model is loaded by
// @huggingface/transformers itself (local files only, nothing fetched) and must classify as our
// own runner and `validate` do; the refusals are one line and exit 2.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { env, pipeline } from '@huggingface/transformers';
import { loadImage, openDataset } from '../src/data/images.js';
import { float32 } from '../src/graph/tensor.js';
import { preprocessingOf } from '../src/model/metadata.js';
import { accuracy, argmax } from '../src/runtime/metrics.js';
import { predict } from '../src/runtime/predict.js';
import { onnxRunner } from '../src/runtime/runners.js';
import { validate } from '../src/validate/index.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { fixturePath } from './helpers/fixtures.js';

const F = (p: string) => fixturePath(join('fashion', p));
const dir = mkdtempSync(join(tmpdir(), 'convnext-tjs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fp32 = join(dir, 'fp32.onnx');
const folder = join(dir, 'fashion-tjs');
const classes = readFileSync(F('classes.txt'), 'utf8').split('\n').filter(Boolean);
const valLabels = new Map(readFileSync(F('val/labels.txt'), 'utf8').trim().split('\n').map((l) => l.split(' ') as [string, string]));
const valFiles = [...valLabels.keys()].map((f) => F(join('val', f)));
const FILE = { fp32: 'model.onnx', int8: 'model_int8.onnx', q4: 'model_q4.onnx', q4f16: 'model_q4f16.onnx' } as const;
let written: { measurements: { dtype: string; top1?: number; agreement?: number; latencyMs?: number }[] };
// images already at the model's 32×32 input: neither pipeline resizes them, so both see the same pixels
const exact: string[] = [];

env.allowRemoteModels = false;
env.localModelPath = `${dirname(folder)}/`;

type Top = { label: string; score: number }[];
type Classify = (images: string | string[], options?: { top_k?: number }) => Promise<Top | Top[]>;
const classifiers = new Map<string, Classify>();
const classifier = async (dtype: string): Promise<Classify> => {
  if (!classifiers.has(dtype)) classifiers.set(dtype, (await pipeline('image-classification', basename(folder), { dtype: dtype as 'fp32', device: 'cpu', local_files_only: true })) as unknown as Classify);
  return classifiers.get(dtype)!;
};

before(async () => {
  const c = runCli('convert', F('convnext_fashion.pth'), '-o', fp32, '--image-size', '32', '--crop-pct', '1', '--labels', F('classes.txt'), '-q');
  assert.equal(c.code, 0, c.stderr);
  const q = runCli('quantize', fp32, '--to', 'int8', '--calib', F('calib'), '--format', 'transformers.js', '--dtypes', 'fp32,int8,q4,q4f16', '-o', folder, '--data', F('val'), '--json');
  assert.equal(q.code, 0, q.stderr);
  written = JSON.parse(q.stdout);
  mkdirSync(join(dir, 'exact'));
  for (const f of valFiles.slice(0, 8)) {
    const to = join(dir, 'exact', basename(f));
    await sharp(f).resize(32, 32).png().toFile(to);
    exact.push(to);
  }
});

describe('convert/quantize --format transformers.js', () => {
  it('writes the files, names and keys transformers.js reads', async () => {
    assert.deepEqual(readdirSync(folder).sort(), ['README.md', 'config.json', 'onnx', 'preprocessor_config.json']);
    assert.deepEqual(readdirSync(join(folder, 'onnx')).sort(), ['model.onnx', 'model_int8.onnx', 'model_q4.onnx', 'model_q4f16.onnx']);
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    assert.equal(config.model_type, 'convnext');
    assert.deepEqual(config.id2label, Object.fromEntries(classes.map((c, i) => [String(i), c])));
    assert.equal(config.label2id[classes[9]], 9);
    assert.equal(config.num_labels, 10);
    assert.equal(config.image_size, 32);
    // int8 on the CPU kernels; never int8 on WebGPU, where onnxruntime-web computes it wrong
    assert.deepEqual(config['transformers.js_config'], { dtype: 'fp32', device_config: { cpu: { dtype: 'int8' }, wasm: { dtype: 'int8' }, webgpu: { dtype: 'fp32' } } });
    const pre = JSON.parse(readFileSync(join(folder, 'preprocessor_config.json'), 'utf8'));
    assert.equal(pre.image_processor_type, 'ConvNextImageProcessor');
    assert.deepEqual(pre.size, { shortest_edge: 32 });
    assert.equal(pre.crop_pct, 1);
    assert.equal(pre.resample, 2);
    assert.deepEqual([pre.image_mean, pre.image_std], [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]]);
    for (const file of Object.values(FILE)) {
      const g = await loadOnnxModel(join(folder, 'onnx', file));
      assert.deepEqual([g.inputs.map((v) => v.name), g.outputs.map((v) => v.name)], [['pixel_values'], ['logits']]);
    }
  });

  for (const dtype of ['fp32', 'int8', 'q4', 'q4f16'] as const) {
    it(`${dtype}: transformers.js's top-5 labels and scores are our runner's (≤ 1e-4) on images at the input size`, async () => {
      const model = join(folder, 'onnx', FILE[dtype]);
      const graph = await loadOnnxModel(model);
      const runner = await onnxRunner(dtype, model, {}, graph.inputs[0].shape, 'cpu');
      const classify = await classifier(dtype);
      let worst = 0;
      try {
        for (const image of exact) {
          const x = await loadImage(image, preprocessingOf(graph, {}));
          const logits = (await runner.run(float32([1, 3, 32, 32], x))).data;
          const max = Math.max(...logits);
          const e = [...logits].map((v) => Math.exp(v - max));
          const sum = e.reduce((a, b) => a + b, 0);
          const ours = e.map((v, i) => ({ label: classes[i], score: v / sum })).sort((a, b) => b.score - a.score).slice(0, 5);
          const theirs = (await classify(image)) as Top;
          assert.deepEqual(theirs.map((t) => t.label), ours.map((t) => t.label), image);
          for (let k = 0; k < 5; k++) worst = Math.max(worst, Math.abs(theirs[k].score - ours[k].score));
        }
      } finally {
        await runner.release();
      }
      assert.ok(worst <= 1e-4, `max score difference ${worst}`);
      process.stdout.write(`# ${dtype}: ${exact.length} images, max top-5 score difference ${worst.toExponential(2)}\n`);
    });

    it(`${dtype}: transformers.js's top-1 on all 1,000 validation images is validate's, within its resizer's difference`, async () => {
      const model = join(folder, 'onnx', FILE[dtype]);
      const report = await validate(model, { data: F('val'), batches: [], ep: 'cpu' });
      const graph = await loadOnnxModel(model);
      const runner = await onnxRunner(dtype, model, {}, graph.inputs[0].shape, 'cpu');
      const ours = await predict([(x) => runner.run(x)], openDataset(F('val'), { preprocessing: preprocessingOf(graph, {}), classNames: classes })).finally(() => runner.release());
      const classify = await classifier(dtype);
      const start = performance.now();
      const tops = (await classify(valFiles, { top_k: 1 })) as Top[];
      const ms = performance.now() - start;
      const label = (i: number) => Number(valLabels.get(basename(valFiles[i])));
      const theirs = tops.map((t) => classes.indexOf(t[0].label));
      const top1 = (100 * theirs.filter((c, i) => c === label(i)).length) / valFiles.length;
      const same = (100 * theirs.filter((c, i) => c === argmax(ours.logits[0].subarray(i * 10, i * 10 + 10))).length) / valFiles.length;
      process.stdout.write(`# ${dtype}: transformers.js top-1 ${top1.toFixed(2)} %, validate ${report.accuracy!.model.top1.toFixed(2)} %, same top-1 as our runner on ${same.toFixed(2)} % (${valFiles.length} images, ${(ms / 1000).toFixed(1)} s)\n`);
      assert.equal(accuracy(ours.logits[0], 10, ours.labels).top1, report.accuracy!.model.top1, 'our runner is validate');
      // sharp's affine (28 → 32 px) places and rounds pixels differently from our PIL-style float
      // resize (2 grey levels on average): a few images near a decision boundary may change class
      assert.ok(same >= 99, `same top-1 on ${same} % of the images`);
      assert.ok(Math.abs(top1 - report.accuracy!.model.top1) <= 0.5, `top-1 ${top1} % vs validate's ${report.accuracy!.model.top1} %`);
      // and the model card says what validate measures
      const card = readFileSync(join(folder, 'README.md'), 'utf8');
      assert.equal(written.measurements.find((m) => m.dtype === dtype)!.top1, report.accuracy!.model.top1);
      assert.match(card, new RegExp(`\\| \`${dtype}\` \\| onnxruntime-node [^|]+ \\| [^|]+ \\| 1000 \\| ${report.accuracy!.model.top1.toFixed(2)} % \\|`));
    });
  }

  it('refuses bad --dtypes, int8 without --calib, and an output onto an input (exit 2, one line)', () => {
    const pth = F('convnext_fashion.pth');
    const out = join(dir, 'refused');
    const cases: [string[], RegExp][] = [
      [['convert', pth, '--format', 'transformers.js', '--dtypes', 'fp32,int9', '-o', out], /'int9' is not a transformers\.js dtype/],
      [['convert', pth, '--format', 'transformers.js', '--dtypes', 'fp32,q2', '-o', out], /'q2' is a transformers\.js dtype this tool does not write/],
      [['convert', pth, '--format', 'transformers.js', '--dtypes', 'fp16', '-o', out], /must include fp32/],
      [['convert', pth, '--dtypes', 'fp32,fp16', '-o', join(dir, 'refused.onnx')], /--dtypes applies to --format transformers\.js/],
      [['convert', pth, '--format', 'transformers.js', '--dtypes', 'fp32,int8', '-o', out], /int8 model needs calibration images: give --calib/],
      [['quantize', fp32, '--to', 'int8', '--format', 'transformers.js', '-o', out], /int8 model needs calibration images: give --calib/],
      [['quantize', fp32, '--to', 'fp16', '--format', 'transformers.js', '--dtypes', 'fp32,int8', '-o', out], /--to fp16 makes the fp16 model, which --dtypes fp32,int8 leaves out/],
      [['convert', fp32, '--format', 'transformers.js', '-o', fp32], /would overwrite the input/],
      [['convert', fp32, '--format', 'transformers.js', '-o', dir], /holds the input/],
      [['quantize', fp32, '--to', 'int8', '--calib', F('calib'), '--format', 'transformers.js', '-o', dirname(F('calib'))], /holds the input/],
      [['convert', fp32, '--format', 'transformers.js', '-o', folder], /folder holds files .*pass --force/],
    ];
    for (const [args, pattern] of cases) assertCliRefused(runCli(...args), pattern, dir, args.includes(out) ? out : undefined);
    assert.ok(existsSync(fp32) && readdirSync(F('calib')).length === 301, 'inputs untouched');
  });
});
