// The real-data checks, on the committed Fashion-MNIST ConvNeXt (fixtures/fashion, trained by
// fixtures/make_fashion.py): conversion matches PyTorch, our image pipeline matches PyTorch's,
// and fp16 / int8 keep accuracy on the 1,000 validation images.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { readNpy } from '../src/formats/npy.js';
import { quantize } from '../src/quantize/index.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { validate } from '../src/validate/index.js';
import { agreement } from '../src/runtime/metrics.js';
import { assertClose, fixturePath } from './helpers/fixtures.js';

const F = (p: string) => fixturePath(join('fashion', p));
const meta = JSON.parse(readFileSync(F('meta.json'), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'convnext-fashion-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fp32 = join(dir, 'fp32.onnx');

before(async () => {
  await convert(F('convnext_fashion.pth'), fp32, { imageSize: 32, cropPct: 1 });
});

const input16 = readNpy(F('val_input.npy'));
const accuracyOf = async (model: string) =>
  validate(model, { reference: fp32, data: F('val'), batches: [], ep: 'cpu' });

describe('Fashion-MNIST ConvNeXt', () => {
  it('converts to PyTorch’s logits (16 preprocessed images)', async () => {
    const y = await runFloat(await createSession(fp32), readNpy(F('val_input.npy')));
    assertClose(y.data, readNpy(F('val16_logits.npy')), 'fashion fp32');
  });

  it('our image pipeline (PNG → bilinear 32 → normalise) gives PyTorch’s logits on all 1,000 val images', async () => {
    const r = await validate(fp32, { data: F('val'), batches: [], ep: 'cpu' });
    assert.equal(r.accuracy!.model.top1, 100 * meta.val_accuracy, 'fp32 top-1 equals PyTorch’s');
    // and logit by logit
    const { predict } = await import('../src/runtime/predict.js');
    const { openDataset } = await import('../src/data/images.js');
    const data = openDataset(F('val'), { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: meta.mean, std: meta.std } });
    const session = await createSession(fp32);
    const p = await predict([(input) => runFloat(session, input)], data);
    const torch = readNpy(F('val_logits.npy'));
    assert.equal(agreement(p.logits[0], torch.data as Float32Array, 10).top1Agreement, 100);
    assertClose(p.logits[0], torch, 'fashion val logits');
  });

  it('fp16 loses ≤ 0.05 points of top-1 and agrees with fp32 on ≥ 99.8 %', async () => {
    const out = join(dir, 'fp16.onnx');
    await quantize(fp32, out, { to: 'fp16' });
    const r = await accuracyOf(out);
    assert.ok(r.accuracy!.reference!.top1 - r.accuracy!.model.top1 <= 0.05, `drop ${r.accuracy!.reference!.top1 - r.accuracy!.model.top1}`);
    assert.ok(r.agreement!.top1Agreement >= 99.8, `agreement ${r.agreement!.top1Agreement}`);
  });

  it('int8 (defaults) loses ≤ 0.2 points and agrees on ≥ 99.5 %; the file is ≤ 0.28 × fp32', async () => {
    const out = join(dir, 'int8.onnx');
    const q = await quantize(fp32, out, { to: 'int8', calib: F('calib') });
    const r = await accuracyOf(out);
    const drop = r.accuracy!.reference!.top1 - r.accuracy!.model.top1;
    assert.ok(drop <= 0.2 + 1e-9, `drop ${drop}`);
    assert.ok(r.agreement!.top1Agreement >= 99.5, `agreement ${r.agreement!.top1Agreement}`);
    assert.ok(q.bytesWritten <= 0.28 * statSync(fp32).size, `${q.bytesWritten} vs ${statSync(fp32).size}`);
    // --keep-names: the same model with its long names, which are what the 0.28 needs gone
    const named = join(dir, 'int8-named.onnx');
    const n = await quantize(fp32, named, { to: 'int8', calib: F('calib'), compactNames: false });
    assert.ok(n.bytesWritten > 0.3 * statSync(fp32).size);
    assert.deepEqual(Array.from((await runFloat(await createSession(named), input16)).data), Array.from((await runFloat(await createSession(out), input16)).data));
  });

  it('int8 with --max-drop 0.1 ends within it, saying which layers stayed float', async () => {
    const out = join(dir, 'budget.onnx');
    const q = await quantize(fp32, out, { to: 'int8', calib: F('calib'), data: F('val'), maxDrop: 0.1 });
    assert.equal(q.budget!.met, true);
    assert.ok(q.budget!.drop! <= 0.1);
    const r = await accuracyOf(out);
    assert.ok(r.accuracy!.reference!.top1 - r.accuracy!.model.top1 <= 0.1 + 1e-9);
  });

  it('int8-weights is ≤ 0.28 × fp32 and keeps accuracy', async () => {
    const out = join(dir, 'w8.onnx');
    const q = await quantize(fp32, out, { to: 'int8-weights' });
    assert.ok(q.bytesWritten <= 0.28 * statSync(fp32).size, `${q.bytesWritten} vs ${statSync(fp32).size}`);
    const r = await accuracyOf(out);
    assert.ok(r.agreement!.top1Agreement >= 99.5, `agreement ${r.agreement!.top1Agreement}`);
  });
});
