import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importConvNext, matchArchitecture } from '../src/convnext/import.js';
import { VARIANTS, variantName } from '../src/convnext/spec.js';
import { InputError, Warnings } from '../src/errors.js';
import { float32, type Tensor } from '../src/graph/tensor.js';
import { hfKeys, officialKeys, timmKeys, torchvisionKeys, type KeySpec } from './helpers/convnext-keys.js';

const layouts = { official: officialKeys, timm: timmKeys, torchvision: torchvisionKeys, hf: hfKeys } as const;
const opts = { source: 'test.pth' };

function withData(shapes: Map<string, number[]>): Map<string, Tensor> {
  return new Map([...shapes].map(([k, s]) => [k, float32(s)]));
}

describe('matchArchitecture reads every published variant in every layout', () => {
  for (const v of VARIANTS) {
    for (const [layout, keys] of Object.entries(layouts)) {
      if (layout === 'torchvision' && (v.version === 'v2' || v.widths[0] < 96)) continue; // torchvision has V1 T/S/B/L only
      const spec: KeySpec = { version: v.version, depths: [...v.depths], widths: [...v.widths], numClasses: 1000, convMlp: layout === 'timm' && v.widths[0] < 96 };
      it(`${v.name} (${layout}${spec.convMlp ? ', conv_mlp' : ''})`, () => {
        const m = matchArchitecture(keys(spec), opts);
        assert.equal(m.layout, layout);
        assert.equal(m.spec.version, v.version);
        assert.deepEqual(m.spec.depths, v.depths);
        assert.deepEqual(m.spec.widths, v.widths);
        assert.equal(m.spec.numClasses, 1000);
        assert.equal(m.spec.layerScale, v.version === 'v1');
        assert.equal(variantName(m.spec), v.name);
        assert.equal(m.spec.headEps, layout === 'hf' ? 1e-12 : 1e-6);
      });
    }
  }
});

const tiny: KeySpec = { version: 'v1', depths: [1, 1, 2, 1], widths: [8, 16, 24, 32], numClasses: 10 };

describe('importConvNext', () => {
  it('unwraps model / model_ema / module and honours --state-dict-key', () => {
    const inner = officialKeys(tiny);
    const wrapped = new Map<string, Tensor>();
    for (const [k, s] of inner) {
      wrapped.set(`model.${k}`, float32(s));
      wrapped.set(`model_ema.${k}`, float32(s, new Array(s.reduce((a, b) => a * b, 1)).fill(2)));
    }
    wrapped.set('optimizer.state.0.exp_avg', float32([3]));
    const plain = importConvNext(wrapped, opts);
    assert.equal(plain.stateDictKey, 'model');
    assert.equal(plain.model.params.get('stem.conv.bias')!.data[0], 0);
    const ema = importConvNext(wrapped, { ...opts, stateDictKey: 'model_ema' });
    assert.equal(ema.stateDictKey, 'model_ema');
    assert.equal(ema.model.params.get('stem.conv.bias')!.data[0], 2);
    const ddp = new Map([...inner].map(([k, s]) => [`module.${k}`, float32(s)]));
    assert.equal(importConvNext(ddp, opts).stateDictKey, 'module');
    assert.throws(() => importConvNext(wrapped, { ...opts, stateDictKey: 'nope' }), /no entry 'nope'.*model, model_ema, optimizer/);
  });

  it('squeezes torchvision (C,1,1), official (1,1,1,4C) and conv_mlp (4C,C,1,1) shapes', () => {
    const tv = importConvNext(withData(torchvisionKeys(tiny)), opts);
    assert.deepEqual(tv.model.params.get('stages.0.blocks.0.layer_scale')!.shape, [8]);
    const v2 = importConvNext(withData(officialKeys({ ...tiny, version: 'v2' })), opts);
    assert.deepEqual(v2.model.params.get('stages.1.blocks.0.grn.gamma')!.shape, [64]);
    const cm = importConvNext(withData(timmKeys({ ...tiny, convMlp: true })), opts);
    assert.deepEqual(cm.model.params.get('stages.3.blocks.0.fc1.weight')!.shape, [128, 32]);
  });

  it('a checkpoint without a head is a feature extractor', () => {
    const m = matchArchitecture(timmKeys({ ...tiny, numClasses: 0 }), opts);
    assert.equal(m.spec.numClasses, 0);
  });

  it('lists missing, unexpected and misshapen keys in one error', () => {
    const keys = timmKeys(tiny);
    keys.delete('stages.2.blocks.1.norm.bias');
    keys.set('stages.2.blocks.1.gamma', [99]);
    keys.set('stages.1.blocks.0.extra.weight', [3]);
    assert.throws(
      () => matchArchitecture(keys, opts),
      (e: unknown) => {
        assert.ok(e instanceof InputError);
        assert.match(e.message, /^test\.pth: timm layout/);
        assert.match(e.message, /stages\.2\.blocks\.1\.gamma is \[99\], expected \[24\]/);
        assert.match(e.message, /missing keys \(canonical names\): stages\.2\.blocks\.1\.norm\.bias/);
        assert.match(e.message, /unexpected keys: stages\.1\.blocks\.0\.extra\.weight/);
        return true;
      },
    );
  });

  it('refuses a ResNet with "not a ConvNeXt checkpoint"', () => {
    const resnet = new Map<string, number[]>([
      ['conv1.weight', [64, 3, 7, 7]],
      ['bn1.weight', [64]],
      ['layer1.0.conv1.weight', [64, 64, 3, 3]],
      ['fc.weight', [1000, 512]],
    ]);
    assert.throws(() => matchArchitecture(resnet, opts), /not a ConvNeXt checkpoint.*conv1\.weight/);
  });

  it('warns about NaN and Inf weights, naming the source key', () => {
    const sd = withData(officialKeys(tiny));
    (sd.get('stages.2.1.pwconv1.weight')!.data as Float32Array)[5] = NaN;
    (sd.get('head.bias')!.data as Float32Array)[0] = Infinity;
    const warnings = new Warnings();
    importConvNext(sd, { ...opts, warnings });
    assert.deepEqual(warnings.items, ['stages.2.1.pwconv1.weight has 1 NaN/Inf value', 'head.bias has 1 NaN/Inf value']);
  });
});
