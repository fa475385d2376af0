// The TFLite writer, checked by a real runtime: every checkpoint and ONNX fixture converted to
// .tflite (float32, float16 and int8 weights) and run in LiteRT.js (Google's LiteRT in wasm, on
// XNNPACK) gives PyTorch's outputs; the file holds only builtins, no Transpose, one GELU per block,
// our metadata and a serving signature; the Fashion model keeps its accuracy on 1,000 real images.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { openDataset } from '../src/data/images.js';
import { UnsupportedError } from '../src/errors.js';
import { readNpy } from '../src/formats/npy.js';
import { encodeTflite, METADATA_NAME, type TfliteWeights } from '../src/formats/tflite/index.js';
import { GraphBuilder } from '../src/graph/graph.js';
import { float32, tensor } from '../src/graph/tensor.js';
import { quantize } from '../src/quantize/index.js';
import { accuracy, agreement } from '../src/runtime/metrics.js';
import { predict } from '../src/runtime/predict.js';
import { loadTfjsModel } from '../src/runtime/tfjs.js';
import { assertClose, checkpointFixtures, fixturePath, golden, manifest, type ModelFixture } from './helpers/fixtures.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { imageByImage, liteRt, loadTflite, runTfliteFile } from './helpers/litert.js';
import { readTflite, type TfliteSummary } from './helpers/tflite-read.js';
import { ByteBuffer } from 'flatbuffers';
import { openZip } from '../src/formats/zip.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-tflite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const fixtures = [...checkpointFixtures, ...manifest.models.filter((m) => m.format === 'onnx')];
const BOUNDS: Record<TfliteWeights, number> = { float32: 1e-4, float16: 1e-3, int8: 5e-2, "int8-hybrid": 5e-2 };

async function convertFixture(m: ModelFixture, weights: TfliteWeights, batch: number): Promise<string> {
  const out = join(dir, `${m.name}-${weights}-${batch}.tflite`);
  const checkpoint = m.format !== 'onnx';
  await convert(fixturePath(m.path), out, {
    format: 'tflite',
    tflite: { weights, batch },
    ...(checkpoint ? { stateDictKey: m.state_dict_key ?? undefined, imageSize: m.image_size } : {}),
  });
  return out;
}

const summary = async (m: ModelFixture, weights: TfliteWeights) => readTflite(readFileSync(await convertFixture(m, weights, 1)));

describe('LiteRT runs every fixture converted to .tflite and matches PyTorch', () => {
  for (const m of fixtures) {
    it(`${m.name} (${m.format} ${m.version}, ${m.dtype})`, async (t) => {
      const { input, output } = golden(m);
      const sizes: string[] = [];
      for (const weights of ['float32', 'float16', 'int8', 'int8-hybrid'] as const) {
        const path = await convertFixture(m, weights, input.shape[0]);
        const y = await runTfliteFile(path, input);
        assert.deepEqual(y.dims, output.shape);
        const ratio = assertClose(y.data, output, `${m.name} ${weights}`, BOUNDS[weights]);
        assert.equal(agreement(y.data, output.data as Float32Array, output.shape[1]).top1Agreement, 100, `${m.name} ${weights}: top-1 kept`);
        sizes.push(`${weights} ${statSync(path).size} B, max |error| ${ratio.toExponential(2)} × max |logit|`);
      }
      t.diagnostic(sizes.join('; '));
    });
  }
});

describe('the .tflite file', () => {
  const m = manifest.models.find((x) => x.name === 'v2_official')!;

  it('holds builtins only: no TRANSPOSE, one GELU per block, DEQUANTIZE only for stored weights; NHWC input and the signature', async () => {
    const depth = m.depths.reduce((a, b) => a + b, 0);
    const files = Object.fromEntries(await Promise.all((['float32', 'float16', 'int8', 'int8-hybrid'] as const).map(async (w) => [w, await summary(m, w)]))) as Record<TfliteWeights, TfliteSummary>;
    const f32 = files.float32;
    assert.equal(f32.identifier, 'TFL3');
    assert.equal(f32.version, 3);
    assert.equal(f32.ops.GELU, depth);
    assert.equal(f32.ops.TRANSPOSE, undefined);
    assert.equal(f32.ops.DEQUANTIZE, undefined);
    assert.ok(Object.keys(f32.ops).every((k) => !k.startsWith('builtin')), `unknown ops ${Object.keys(f32.ops)}`);
    assert.deepEqual(f32.tensors[f32.inputs[0]].shape, [1, 64, 64, 3]);
    assert.deepEqual(f32.tensors[f32.outputs[0]].shape, [1, 10]);
    assert.deepEqual(f32.signature, { key: 'serving_default', inputs: ['pixel_values'], outputs: ['logits'] });
    const layers = f32.ops.CONV_2D + f32.ops.DEPTHWISE_CONV_2D + f32.ops.FULLY_CONNECTED;
    for (const [w, type] of [['float16', 'FLOAT16'], ['int8', 'INT8']] as const) {
      const f = files[w];
      const dequantized = new Map(f.operators.filter((o) => o.op === 'DEQUANTIZE').map((o) => [o.outputs[0], f.tensors[o.inputs[0]].type]));
      const stored = f.operators.filter((o) => ['CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED'].includes(o.op)).flatMap((o) => (w === 'float16' ? o.inputs.slice(1) : [o.inputs[1]]));
      // float16 stores the biases halved too; int8 keeps them float32
      assert.ok(stored.every((t) => dequantized.get(t) === type), `${w}: every layer weight${w === 'float16' ? ' and bias' : ''} is a DEQUANTIZE'd ${type} constant`);
      assert.equal(f.ops.DEQUANTIZE, stored.length, `${w}: one DEQUANTIZE per stored constant`);
      assert.equal(f.tensors.filter((x) => x.type === type).length, stored.length);
      assert.ok(w === 'int8' || stored.length > layers);
      const { DEQUANTIZE: _, ...rest } = f.ops;
      assert.deepEqual(rest, f32.ops, `${w}: the same compute ops`);
    }
    // equal constants (each LayerNorm's axes) share one buffer
    for (const f of Object.values(files)) {
      const byBytes = new Map<string, number>();
      for (const t of f.tensors.filter((x) => x.data.length)) {
        const key = Buffer.from(t.data).toString('base64');
        assert.equal(byBytes.get(key) ?? t.buffer, t.buffer, `${t.name}: a second buffer of the same bytes`);
        byBytes.set(key, t.buffer);
      }
      assert.ok(byBytes.size < f.tensors.filter((x) => x.data.length).length, 'some constants are shared');
    }
    // hybrid: the int8 weight goes into the layer itself, beside the float input, with a scale per output channel
    const hybrid = files['int8-hybrid'];
    assert.deepEqual(hybrid.ops, f32.ops, 'int8-hybrid: no DEQUANTIZE, the same ops');
    const hybridLayers = hybrid.operators.filter((o) => ['CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED'].includes(o.op));
    assert.equal(hybridLayers.length, layers);
    for (const o of hybridLayers) {
      const [x, w, b] = o.inputs.map((i) => hybrid.tensors[i]);
      assert.deepEqual([x.type, w.type, b.type, hybrid.tensors[o.outputs[0]].type], ['FLOAT32', 'INT8', 'FLOAT32', 'FLOAT32'], `${o.op} ${w.name}`);
      assert.equal(w.quantization!.scale.length, w.shape[w.quantization!.dimension], `${w.name}: per output channel`);
    }
  });

  it('carries our metadata (labels, preprocessing, source, converter) as one JSON entry', async () => {
    const hf = manifest.models.find((x) => x.name === 'v1_hf')!;
    const file = readTflite(readFileSync(await convertFixture(hf, 'float32', 1)));
    const meta = JSON.parse(new TextDecoder().decode(file.metadata[METADATA_NAME]));
    assert.equal(meta.labels.length, 10);
    assert.deepEqual(Object.keys(meta.preprocessing).sort(), ['crop', 'interpolation', 'mean', 'resize', 'std']);
    assert.equal(meta.source.layout, 'hf');
    assert.match(meta.converter, /^convnext-toolchain /);
  });

  it('int8 weights are read as written: LiteRT gives what TF.js computes from the same integers and scales', async () => {
    const { input } = golden(m);
    const tflite = await runTfliteFile(await convertFixture(m, 'int8', 2), input);
    const folder = join(dir, 'tfjs-int8');
    await convert(fixturePath(m.path), folder, { format: 'tfjs', tfjs: { weights: 'int8' }, stateDictKey: m.state_dict_key ?? undefined, imageSize: m.image_size });
    const model = await loadTfjsModel(folder, 'cpu');
    try {
      const y = await model.run({ data: input.data as Float32Array, shape: input.shape });
      assertClose(tflite.data, float32(y.dims, y.data), 'int8 TFLite vs TF.js', 1e-5);
    } finally {
      model.dispose();
    }
  });

  it('float16 with a layer excluded keeps that layer float32, its bias included', async () => {
    const path = join(dir, 'v2-float16-exclude-head.tflite');
    await convert(fixturePath(m.path), path, { format: 'tflite', tflite: { weights: 'float16', exclude: ['head.fc'], keepNames: true }, stateDictKey: m.state_dict_key ?? undefined, imageSize: m.image_size });
    const f = readTflite(readFileSync(path));
    const dequantized = new Set(f.operators.filter((o) => o.op === 'DEQUANTIZE').map((o) => o.outputs[0]));
    const [head] = f.operators.filter((o) => o.op === 'FULLY_CONNECTED');
    for (const i of head.inputs.slice(1)) assert.ok(f.tensors[i].type === 'FLOAT32' && !dequantized.has(i), `${f.tensors[i].name}: stored float32`);
    const conv = f.operators.find((o) => o.op === 'CONV_2D')!;
    assert.ok(conv.inputs.slice(1).every((i) => dequantized.has(i)), 'the other layers stay float16');
  });

  it('is byte-for-byte the same for the same input', () => {
    const make = () => {
      const g = new GraphBuilder('conv');
      const w = g.constant('w', tensor('float32', [2, 3, 1, 1], Float32Array.from({ length: 6 }, (_, i) => i / 6)));
      g.op('Conv', 'conv', ['x', w], {}, 'y');
      return g.build([{ name: 'x', dtype: 'float32', shape: [1, 3, 4, 4] }], [{ name: 'y', dtype: 'float32', shape: [1, 2, 4, 4] }]);
    };
    assert.deepEqual(encodeTflite(make()), encodeTflite(make()));
  });

  it('refuses an op TFLite has no builtin for, naming it', () => {
    const g = new GraphBuilder('erf');
    g.op('Erf', 'erf', ['x'], {}, 'y');
    const graph = g.build([{ name: 'x', dtype: 'float32', shape: [1, 4] }], [{ name: 'y', dtype: 'float32', shape: [1, 4] }]);
    assert.throws(() => encodeTflite(graph), (e: unknown) => e instanceof UnsupportedError && /TFLite export does not support TF op Erf/.test(e.message));
  });
});

describe('Fashion-MNIST ConvNeXt as .tflite in LiteRT, 1,000 validation images', () => {
  const F = (p: string) => fixturePath(join('fashion', p));
  const meta = JSON.parse(readFileSync(F('meta.json'), 'utf8'));

  it('float32 gives PyTorch’s logits and top-1; fp16 and int8 weights keep it; sizes against float32', async (t) => {
    const pth = F('convnext_fashion.pth');
    const files = { float32: join(dir, 'fashion.tflite'), float16: join(dir, 'fashion-fp16.tflite'), int8: join(dir, 'fashion-int8.tflite'), 'int8-hybrid': join(dir, 'fashion-int8-hybrid.tflite') };
    await convert(pth, files.float32, { format: 'tflite', imageSize: 32, cropPct: 1 });
    await quantize(pth, files.float16, { to: 'fp16', format: 'tflite', imageSize: 32, cropPct: 1 });
    await quantize(pth, files.int8, { to: 'int8-weights', format: 'tflite', imageSize: 32, cropPct: 1 });
    await convert(pth, files['int8-hybrid'], { format: 'tflite', imageSize: 32, cropPct: 1, tflite: { weights: 'int8-hybrid' } });
    const data = openDataset(F('val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: meta.mean, std: meta.std } });
    const models = await Promise.all(Object.values(files).map((f) => loadTflite(readFileSync(f))));
    try {
      // the files take one image; predict's batches are run image by image
      const p = await predict(models.map(imageByImage), data);
      const torch = readNpy(F('val_logits.npy'));
      const ratio = assertClose(p.logits[0], torch, 'fashion float32 vs PyTorch');
      const fp32 = accuracy(p.logits[0], 10, p.labels).top1;
      assert.equal(fp32, 100 * meta.val_accuracy, 'float32 top-1 equals PyTorch’s');
      const lines = [`float32: top-1 ${fp32.toFixed(2)} %, max |error| vs PyTorch ${ratio.toExponential(2)} × max |logit|, ${statSync(files.float32).size} B`];
      for (const [k, w] of [[1, 'float16'], [2, 'int8'], [3, 'int8-hybrid']] as const) {
        const top1 = accuracy(p.logits[k], 10, p.labels).top1;
        const agree = agreement(p.logits[k], p.logits[0], 10).top1Agreement;
        const size = statSync(files[w]).size / statSync(files.float32).size;
        lines.push(`${w}: top-1 ${top1.toFixed(2)} % (drop ${(fp32 - top1).toFixed(2)}), agreement ${agree.toFixed(2)} %, ${size.toFixed(3)} × float32`);
        assert.ok(fp32 - top1 <= (w === 'float16' ? 0.05 : 0.1) + 1e-9, `${w} drop ${fp32 - top1}`);
        assert.ok(agree >= 99.5, `${w} agreement ${agree}`);
        // float16 0.5072, int8 0.2801, int8-hybrid 0.2790: on a model this small the per-channel scales
        // and zero points (int64, one vector per channel count) and float32 biases keep int8 above
        // 0.27 with no structure at all (README: TFLite, what the bytes are)
        assert.ok(size <= (w === 'float16' ? 0.508 : 0.281), `${w} size ${size}`);
      }
      t.diagnostic(lines.join('; '));
    } finally {
      for (const model of models) model.delete();
    }
  });
});

describe('full-integer int8 .tflite (quantize --to int8 --calib), Fashion model, 1,000 validation images', () => {
  const F = (p: string) => fixturePath(join('fashion', p));
  const meta = JSON.parse(readFileSync(F('meta.json'), 'utf8'));
  const LAYERS = ['CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED'];
  const files = { float32: join(dir, 'fashion-int8-ref.tflite'), int8: join(dir, 'fashion-full-int8.tflite'), uint8: join(dir, 'fashion-full-int8-uint8.tflite') };
  // made once, by whichever test runs first (not at load: a filtered run would leave it running)
  let made: Promise<void> | undefined;
  const make = () =>
    (made ??= (async () => {
      const pth = F('convnext_fashion.pth');
      await convert(pth, files.float32, { format: 'tflite', imageSize: 32, cropPct: 1 });
      await quantize(pth, files.int8, { to: 'int8', format: 'tflite', imageSize: 32, cropPct: 1, calib: F('calib') });
      await quantize(pth, files.uint8, { to: 'int8', format: 'tflite', imageSize: 32, cropPct: 1, calib: F('calib'), tflite: { io: 'uint8' } });
    })());

  it('keeps top-1 within 0.3 points and agrees with float32 on ≥ 99 % of images', async (t) => {
    await make();
    const data = openDataset(F('val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: meta.mean, std: meta.std } });
    assert.equal(data.size, 1000);
    const models = await Promise.all([files.float32, files.int8].map((f) => loadTflite(readFileSync(f))));
    try {
      const p = await predict(models.map(imageByImage), data);
      const [fp32, int8] = p.logits.map((l) => accuracy(l, 10, p.labels).top1);
      const agree = agreement(p.logits[1], p.logits[0], 10).top1Agreement;
      const size = statSync(files.int8).size / statSync(files.float32).size;
      t.diagnostic(`float32 ${fp32.toFixed(2)} %, int8 ${int8.toFixed(2)} % (drop ${(fp32 - int8).toFixed(2)}), agreement ${agree.toFixed(2)} %, ${size.toFixed(3)} × float32`);
      assert.ok(fp32 - int8 <= 0.3 + 1e-9, `int8 drop ${fp32 - int8}`);
      assert.ok(agree >= 99, `int8 agreement ${agree}`);
      // 0.2917: a float32 scale per output channel, twice (weight and bias), and the shared int64
      // zero points weigh on a 356k-parameter model (README: TFLite); ConvNeXt-T is at 0.255
      assert.ok(size <= 0.292, `int8 size ${size}`);
    } finally {
      for (const model of models) model.delete();
    }
  });

  it('--io uint8: the RGB bytes in, uint8 logits out; LiteRT runs it fed by hand; top-1 within 0.3 points, ≥ 99 % agreement', async (t) => {
    await make();
    const f = readTflite(readFileSync(files.uint8));
    const [x, y] = [f.tensors[f.inputs[0]], f.tensors[f.outputs[0]]];
    assert.deepEqual([x.type, x.shape, x.name], ['UINT8', [1, 32, 32, 3], 'pixel_values']);
    assert.deepEqual(x.quantization?.zeroPoint, [0]);
    assert.ok(Math.abs(x.quantization!.scale[0] - 1 / 255) < 1e-9, 'bytes at 1/255: real values 0–1');
    assert.deepEqual([y.type, y.shape, y.name], ['UINT8', [1, 10], 'logits']);
    const [yScale, yZero] = [y.quantization!.scale[0], y.quantization!.zeroPoint[0]];
    assert.ok(yScale > 0 && yZero >= 0 && yZero <= 255);
    assert.equal(f.operators[0].op, 'DEQUANTIZE');
    assert.deepEqual(f.operators.at(-1)!.op, 'QUANTIZE', 'the last layer’s int8 logits requantized to uint8');
    assert.match(JSON.parse(new TextDecoder().decode(f.metadata[METADATA_NAME])).quantization.io, /^uint8/);

    const data = openDataset(F('val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: meta.mean, std: meta.std } });
    const models = await Promise.all([files.float32, files.uint8].map((file) => loadTflite(readFileSync(file))));
    try {
      const p = await predict(models.map(imageByImage), data);
      const [fp32, uint8] = p.logits.map((l) => accuracy(l, 10, p.labels).top1);
      const agree = agreement(p.logits[1], p.logits[0], 10).top1Agreement;
      t.diagnostic(`float32 ${fp32.toFixed(2)} %, int8 with uint8 I/O ${uint8.toFixed(2)} % (drop ${(fp32 - uint8).toFixed(2)}), agreement ${agree.toFixed(2)} %`);
      assert.ok(fp32 - uint8 <= 0.3 + 1e-9, `uint8 I/O drop ${fp32 - uint8}`);
      assert.ok(agree >= 99, `uint8 I/O agreement ${agree}`);

      // the first image as an app feeds it, bytes straight into LiteRT, without the loader's conversion
      let nchw: Float32Array = new Float32Array(0);
      for await (const b of data.batches(1)) {
        nchw = b.input.data as Float32Array;
        break;
      }
      const bytes = new Uint8Array(32 * 32 * 3);
      for (let c = 0; c < 3; c++) for (let i = 0; i < 32 * 32; i++) bytes[i * 3 + c] = Math.round(255 * (nchw[c * 1024 + i] * meta.std[c] + meta.mean[c]));
      const lrt = await liteRt();
      const raw = await lrt.loadAndCompile(readFileSync(files.uint8), { accelerator: 'wasm' });
      const input = new lrt.Tensor(bytes, [1, 32, 32, 3]);
      try {
        const [out] = await raw.run(input);
        const logits = Float32Array.from(out.toTypedArray() as Uint8Array, (q) => (q - yZero) * yScale);
        out.delete();
        // a resized pixel on a rounding boundary may become the neighbouring byte either way: one output step at most
        const loader = p.logits[1].subarray(0, 10);
        logits.forEach((v, i) => assert.ok(Math.abs(v - loader[i]) <= yScale * 1.001, `logit ${i}: by hand ${v}, through the loader ${loader[i]} (step ${yScale})`));
      } finally {
        input.delete();
        raw.delete();
      }
    } finally {
      for (const model of models) model.delete();
    }
  });

  it('--exclude keeps the named layers float32, weights included; the rest stay int8; LiteRT keeps top-1', async (t) => {
    await make();
    const out = join(dir, 'fashion-full-int8-exclude.tflite');
    // named tensors (--keep-names) to find each layer's by
    const r = await quantize(F('convnext_fashion.pth'), out, { to: 'int8', format: 'tflite', imageSize: 32, cropPct: 1, calib: F('calib'), exclude: ['stages.3.*', 'head.fc'], compactNames: false });
    const f = readTflite(readFileSync(out));
    const kept = (name: string) => name.startsWith('stages.3.') || name === 'head.fc';
    const layers = f.operators.filter((o) => LAYERS.includes(o.op));
    // a layer's output is named after it, but the classifier's carries the public name
    const named = layers.map((o) => ({ o, name: f.tensors[o.outputs[0]].name.replace(/\/int8$/, '').replace(/^logits$/, 'head.fc') }));
    assert.ok(named.some((l) => kept(l.name)) && named.some((l) => !kept(l.name)));
    const dequantized = new Set(f.operators.filter((o) => o.op === 'DEQUANTIZE').map((o) => o.outputs[0]));
    for (const { o, name } of named) {
      const [x, w] = [f.tensors[o.inputs[0]], f.tensors[o.inputs[1]]];
      if (kept(name)) assert.ok(x.type === 'FLOAT32' && w.type === 'FLOAT32' && !dequantized.has(o.inputs[1]), `${name}: float32 with float32 weights`);
      else if (name !== 'stem.conv') assert.equal(x.type, 'INT8', `${name}: int8`);
    }
    assert.deepEqual([...r.keptFloat].sort(), named.filter((l) => kept(l.name)).map((l) => l.name).sort());
    assert.deepEqual(JSON.parse(new TextDecoder().decode(f.metadata[METADATA_NAME])).quantization.layers_kept_float, r.keptFloat);
    const data = openDataset(F('val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: meta.mean, std: meta.std } });
    // int8 weights only (DEQUANTIZE'd) keep the same layers float32 too
    const weightsOnly = join(dir, 'fashion-int8-weights-exclude.tflite');
    await quantize(F('convnext_fashion.pth'), weightsOnly, { to: 'int8-weights', format: 'tflite', imageSize: 32, cropPct: 1, exclude: ['stages.3.*', 'head.fc'] });
    const w = readTflite(readFileSync(weightsOnly));
    assert.equal(w.tensors.filter((x) => x.type === 'INT8').length, named.length - r.keptFloat.length);
    const models = await Promise.all([files.float32, out, weightsOnly].map((file) => loadTflite(readFileSync(file))));
    try {
      const p = await predict(models.map(imageByImage), data);
      const [fp32, int8, weights] = p.logits.map((l) => accuracy(l, 10, p.labels).top1);
      const agree = agreement(p.logits[1], p.logits[0], 10).top1Agreement;
      t.diagnostic(`${r.keptFloat.length} layers float: int8 ${int8.toFixed(2)} % (float32 ${fp32.toFixed(2)} %), agreement ${agree.toFixed(2)} %, ${statSync(out).size} B; int8 weights ${weights.toFixed(2)} %`);
      assert.ok(fp32 - int8 <= 0.3 + 1e-9 && agree >= 99, `drop ${fp32 - int8}, agreement ${agree}`);
      assert.ok(fp32 - weights <= 0.1 + 1e-9, `int8 weights drop ${fp32 - weights}`);
    } finally {
      for (const model of models) model.delete();
    }
  });

  it('--min-agreement: layers go back to float, measured in LiteRT, until the budget holds; the written file holds it', async (t) => {
    await make();
    const out = join(dir, 'fashion-full-int8-budget.tflite');
    const r = await quantize(F('convnext_fashion.pth'), out, { to: 'int8', format: 'tflite', imageSize: 32, cropPct: 1, calib: F('calib'), data: F('val'), minAgreement: 99.9 });
    assert.ok(r.budget?.met, 'budget met');
    assert.ok(r.keptFloat.length > 0, 'full int8 alone agrees on 99.80 % of the 1,000 images');
    const recorded = JSON.parse(new TextDecoder().decode(readTflite(readFileSync(out)).metadata[METADATA_NAME])).quantization;
    assert.deepEqual(recorded.layers_kept_float, r.keptFloat);
    // measured again on the written file, against the float32 one, on the same images
    const data = openDataset(F('val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: meta.mean, std: meta.std } });
    const models = await Promise.all([files.float32, out].map((file) => loadTflite(readFileSync(file))));
    try {
      const p = await predict(models.map(imageByImage), data);
      const agree = agreement(p.logits[1], p.logits[0], 10).top1Agreement;
      t.diagnostic(`${r.keptFloat.length} layers float (${r.keptFloat.join(', ')}) after ${r.budget!.evaluations} evaluations: agreement ${agree.toFixed(2)} % on ${data.size} images`);
      assert.ok(agree >= 99.9, `agreement ${agree}`);
    } finally {
      for (const model of models) model.delete();
    }
  });

  it('writes every int8 layer with valid quantization: int8 in and out, per-channel symmetric weights, int32 bias at input × weight scale', async () => {
    await make();
    const f = readTflite(readFileSync(files.int8));
    const ref = readTflite(readFileSync(files.float32));
    const layers = f.operators.filter((o) => LAYERS.includes(o.op));
    assert.equal(layers.length, LAYERS.reduce((n, op) => n + (ref.ops[op] ?? 0), 0), 'every layer is kept');
    const int8 = layers.filter((o) => f.tensors[o.inputs[0]].type === 'INT8');
    // the layer that reads the image stays float by default, as in ONNX int8
    assert.equal(int8.length, layers.length - 1);
    const perTensor = (i: number) => {
      const q = f.tensors[i].quantization!;
      assert.equal(f.tensors[i].type, 'INT8');
      assert.equal(q.scale.length, 1);
      assert.ok(q.scale[0] > 0 && Number.isFinite(q.scale[0]), `${f.tensors[i].name} scale ${q.scale}`);
      assert.ok(Number.isInteger(q.zeroPoint[0]) && q.zeroPoint[0] >= -128 && q.zeroPoint[0] <= 127, `${f.tensors[i].name} zero point ${q.zeroPoint}`);
      return q.scale[0];
    };
    for (const o of int8) {
      const [x, w, b] = o.inputs.map((i) => f.tensors[i]);
      const inScale = perTensor(o.inputs[0]);
      perTensor(o.outputs[0]);
      const wq = w.quantization!;
      assert.equal(w.type, 'INT8', w.name);
      assert.equal(wq.dimension, o.op === 'DEPTHWISE_CONV_2D' ? 3 : 0, `${w.name}: scales on the output channels`);
      const channels = w.shape[wq.dimension];
      assert.equal(wq.scale.length, channels);
      assert.ok(wq.zeroPoint.length === channels && wq.zeroPoint.every((z) => z === 0), `${w.name}: symmetric`);
      assert.ok(wq.scale.every((s) => s > 0));
      assert.ok(new Int8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength).every((v) => v >= -127), `${w.name}: TFLite's weights exclude −128`);
      assert.equal(b.type, 'INT32', b.name);
      assert.deepEqual(b.shape, [channels]);
      const bq = b.quantization!;
      assert.ok(bq.zeroPoint.length === channels && bq.zeroPoint.every((z) => z === 0));
      bq.scale.forEach((s, c) => assert.ok(Math.abs(s - inScale * wq.scale[c]) <= 1e-6 * s, `${b.name}[${c}] scale ${s} ≠ ${inScale} × ${wq.scale[c]}`));
      assert.equal(x.shape.length, f.tensors[o.outputs[0]].shape.length);
    }
    // float32 in and out; LayerNorm (MEAN, RSQRT…), GELU and the residual ADDs stay float32
    assert.equal(f.tensors[f.inputs[0]].type, 'FLOAT32');
    assert.equal(f.tensors[f.outputs[0]].type, 'FLOAT32');
    for (const o of f.operators.filter((x) => !LAYERS.includes(x.op) && x.op !== 'QUANTIZE' && x.op !== 'DEQUANTIZE')) {
      for (const i of [...o.inputs, ...o.outputs]) assert.notEqual(f.tensors[i].type, 'INT8', `${o.op} reads or writes ${f.tensors[i].name} in int8`);
    }
    assert.ok(f.operators.filter((o) => o.op === 'QUANTIZE').every((o) => f.tensors[o.inputs[0]].type === 'FLOAT32' && f.tensors[o.outputs[0]].type === 'INT8'));
    const meta = JSON.parse(new TextDecoder().decode(f.metadata[METADATA_NAME]));
    assert.equal(meta.quantization.mode, 'int8');
    assert.match(meta.quantization.activations, /^int8 /);
  });
});

describe('convnext convert/quantize --format tflite (CLI)', () => {
  const pth = fixturePath('v1/torchvision.pth');

  it('writes a .tflite file that LiteRT runs', async () => {
    const out = join(dir, 'cli.tflite');
    const r = runCli('convert', pth, '-o', out, '--format', 'tflite', '--weights', 'float16', '--image-size', '64', '-q');
    assert.equal(r.code, 0, r.stderr);
    const m = manifest.models.find((x) => x.name === 'v1_torchvision')!;
    const { input, output } = golden(m);
    const one = tensor('float32', [1, 3, 64, 64], (input.data as Float32Array).subarray(0, 3 * 64 * 64));
    const y = await runTfliteFile(out, one);
    assertClose(y.data, float32([1, 10], (output.data as Float32Array).subarray(0, 10)), 'cli fp16', 1e-3);
  });

  it('refuses, with one line and exit 2, what it cannot write', () => {
    const out = join(dir, 'refused.tflite');
    const cases: [string[], RegExp][] = [
      [['convert', pth, '-o', out, '--format', 'tflite', '--weights', 'uint8'], /--format tflite takes --weights float32, float16, int8, int8-hybrid, not 'uint8'/],
      [['convert', pth, '-o', out, '--format', 'tflite', '--dynamic-size'], /fixed image size/],
      [['convert', pth, '-o', join(dir, 'refused-tfjs'), '--format', 'tfjs', '--weights', 'int8-hybrid'], /--format tfjs takes --weights float32, float16, uint16, uint8, int8, not 'int8-hybrid'/],
      [['convert', pth, '-o', out, '--batch', '2'], /--batch applies to --format tflite/],
      [['quantize', pth, '-o', out, '--format', 'tflite', '--to', 'int8'], /int8 needs calibration images: give --calib DIR/],
      [['quantize', pth, '-o', out, '--format', 'tflite', '--to', 'int8', '--calib', fixturePath('fashion/calib'), '--op-types', 'Conv'], /full-integer int8 TFLite does not take --op-types yet/],
      [['quantize', pth, '-o', out, '--format', 'tflite', '--to', 'int8', '--calib', fixturePath('fashion/calib'), '--exclude', '*'], /--exclude '\*' names every layer/],
      [['quantize', pth, '-o', out, '--format', 'tflite', '--to', 'fp16', '--io', 'uint8'], /--io applies to full-integer int8 TFLite/],
      [['quantize', pth, '-o', out, '--format', 'tflite', '--to', 'fp16', '--min-agreement', '99', '--data', fixturePath('fashion/val')], /--max-drop\/--min-agreement apply to int8 \(ONNX, TFLite\); for TFLite fp16/],
      [['quantize', pth, '-o', out, '--format', 'tflite', '--to', 'int8', '--calib', fixturePath('fashion/calib'), '--io', 'int8'], /Allowed choices are float, uint8/],
      [['convert', pth, '-o', pth, '--format', 'tflite'], /would overwrite the input/],
    ];
    for (const [args, pattern] of cases) assertCliRefused(runCli(...args), pattern, dir, args[2] === out ? out : undefined);
  });
});

describe('convnext validate MODEL.tflite (LiteRT.js in Node)', () => {
  const F = fixturePath('fashion');

  it('measures accuracy against the fp32 ONNX model and speed, by the usual gates', () => {
    const tfl = join(dir, 'validate-fashion.tflite');
    const onnx = join(dir, 'validate-fashion.onnx');
    const common = ['--image-size', '32', '--crop-pct', '1', '--labels', join(F, 'classes.txt'), '-q'];
    assert.equal(runCli('convert', join(F, 'convnext_fashion.pth'), '-o', tfl, '--format', 'tflite', '--batch', '4', ...common).code, 0);
    assert.equal(runCli('convert', join(F, 'convnext_fashion.pth'), '-o', onnx, ...common).code, 0);
    const json = join(dir, 'validate-tflite.json');
    // 50 images: batches of 32 run as 8 pieces of the file's batch 4, the last one padded
    const r = runCli('validate', tfl, '--reference', onnx, '--data', join(F, 'val'), '--limit', '50', '--batch', '1,4', '--min-agreement', '100', '--min-cosine', '0.99999', '--json', json, '-q');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'LiteRT says nothing on stderr under -q');
    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.model.provider, 'litert-wasm');
    assert.equal(report.model.kind, 'tflite');
    assert.equal(report.data.images, 50);
    assert.ok(report.accuracy.model.top1 > 80, `top-1 ${report.accuracy.model.top1}`);
    assert.ok(report.agreement.maxAbsError < 1e-4, `max |error| ${report.agreement.maxAbsError}`);
    assert.deepEqual(report.speed.model.map((s: { batch: number }) => s.batch), [1, 4]);
  });

  it('refuses a broken .tflite file with one line and exit 2', () => {
    const good = readFileSync(join(dir, 'validate-fashion.tflite'));
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, 64), /not a readable \.tflite file|no subgraph|no input tensor/],
      [Buffer.concat([good.subarray(0, 4), Buffer.from('TFL3'), Buffer.alloc(56, 0xff)]), /not a readable \.tflite file/],
    ];
    cases.forEach(([bytes, pattern], i) => {
      const path = join(dir, `broken-${i}.tflite`);
      writeFileSync(path, bytes);
      const r = runCli('validate', path, '--data', join(F, 'val'), '--limit', '4', '--batch', 'none');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
    // files whose damage only LiteRT itself finds (tensor sizes, operator indices): its own ERROR
    // lines go into the one refusal line, not above it (cases a mutation run found; re-picked when
    // the file's layout changes: mutant 38 took 44's place when shared vectors moved the tables)
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const mutants = new Map<number, Buffer>();
    for (let k = 0; k <= 71; k++) {
      const b = Buffer.from(good);
      let m: Buffer;
      if (k % 3 === 0) {
        const n = 1 + Math.floor(random() * 20);
        for (let i = 0; i < n; i++) b[Math.floor(random() * 4096)] = Math.floor(random() * 256);
        m = b;
      } else if (k % 3 === 1) m = b.subarray(0, Math.floor(random() * b.length));
      else {
        const n = 1 + Math.floor(random() * 50);
        for (let i = 0; i < n; i++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
        m = b;
      }
      if ([38, 54, 59, 71].includes(k)) mutants.set(k, m);
    }
    let litertSaid = 0;
    for (const [k, bytes] of mutants) {
      const path = join(dir, `mutant-${k}.tflite`);
      writeFileSync(path, bytes);
      const m = runCli('validate', path, '--data', join(F, 'val'), '--limit', '4', '--batch', 'none');
      assert.equal(m.code, 2, `mutant ${k}: ${m.stderr}`);
      assert.equal(m.stderr.trim().split('\n').length, 1, `mutant ${k}: ${m.stderr}`);
      if (/LiteRT cannot load the model/.test(m.stderr)) litertSaid++;
    }
    assert.ok(litertSaid > 0, 'at least one mutant reaches LiteRT');
    const r = runCli('inspect', join(dir, 'validate-fashion.tflite'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /LiteRT \(\.tflite\) model, not a checkpoint/);
  });
});

describe('Android metadata (TFLITE_METADATA, labels.txt packed in)', () => {
  it('names the normalisation on the pixel scale and the labels file; the labels are a zip appended to the model; LiteRT still runs it', async () => {
    const F = fixturePath('fashion');
    const out = join(dir, 'android.tflite');
    const r = runCli('convert', join(F, 'convnext_fashion.pth'), '-o', out, '--format', 'tflite', '--image-size', '32', '--crop-pct', '1', '--labels', join(F, 'classes.txt'), '-q');
    assert.equal(r.code, 0, r.stderr);
    const bytes = readFileSync(out);
    const entry = readTflite(bytes).metadata.TFLITE_METADATA;
    assert.ok(entry, 'a TFLITE_METADATA entry');
    // read with the slot numbers of tflite-support's metadata_schema.fbs, independent of the writer
    const bb = new ByteBuffer(entry);
    assert.equal(new TextDecoder().decode(entry.subarray(4, 8)), 'M001');
    const field = (t: number, slot: number) => bb.__offset(t, 4 + 2 * slot);
    const tables = (t: number, slot: number) => {
      const o = field(t, slot);
      return o ? Array.from({ length: bb.__vector_len(t + o) }, (_, i) => bb.__indirect(bb.__vector(t + o) + 4 * i)) : [];
    };
    const floats = (t: number, slot: number) => {
      const o = field(t, slot);
      return Array.from({ length: bb.__vector_len(t + o) }, (_, i) => bb.readFloat32(bb.__vector(t + o) + 4 * i));
    };
    const str = (t: number, slot: number) => bb.__string(t + field(t, slot)) as string;
    const sub = (t: number, slot: number) => bb.__indirect(t + field(t, slot));
    const root = bb.readInt32(0);
    const [graph] = tables(root, 3);
    const [input] = tables(graph, 2);
    const [output] = tables(graph, 3);
    const content = sub(input, 3);
    assert.equal(bb.readInt8(content + field(content, 0)), 2, 'input content: ImageProperties');
    const [unit] = tables(input, 4);
    assert.equal(bb.readInt8(unit + field(unit, 0)), 1, 'a NormalizationOptions unit');
    const norm = sub(unit, 1);
    const mean = floats(norm, 0);
    const std = floats(norm, 1);
    [0.485, 0.456, 0.406].forEach((m, i) => assert.ok(Math.abs(mean[i] - 255 * m) < 1e-3, `mean ${mean}`));
    [0.229, 0.224, 0.225].forEach((s, i) => assert.ok(Math.abs(std[i] - 255 * s) < 1e-3, `std ${std}`));
    const [file] = tables(output, 6);
    assert.equal(str(file, 0), 'labels.txt');
    assert.equal(bb.readInt8(file + field(file, 2)), 2, 'TENSOR_AXIS_LABELS');

    const zip = openZip(bytes, out);
    assert.deepEqual(zip.read('labels.txt', true).toString('utf8').trim().split('\n'), readFileSync(join(F, 'classes.txt'), 'utf8').trim().split('\n'));
    const y = await runTfliteFile(out, float32([1, 3, 32, 32]));
    assert.equal(y.dims.join(), '1,10');
  });
});
