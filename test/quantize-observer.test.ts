import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HistogramObserver } from '../src/quantize/observer.js';

// a deterministic heavy-tailed sample: mostly |x| < 1, a few large outliers
function sample(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    out[i] = u < 0.001 ? (u - 0.0005) * 20000 : Math.tan((u - 0.5) * 2) * 0.3;
  }
  return out;
}

describe('HistogramObserver', () => {
  it('minmax is exact over all batches', () => {
    const o = new HistogramObserver();
    o.observe(Float32Array.from([0.5, -1, 2]));
    o.observe(Float32Array.from([7, -3]));
    assert.deepEqual(o.finalize('minmax'), { min: -3, max: 7 });
    assert.equal(o.seen, 5);
  });

  it('percentile matches the exact quantiles of the data, batches in any order', () => {
    const all = sample(200_000, 1);
    const sorted = Float64Array.from(all).sort();
    const exactHi = sorted[Math.floor(sorted.length * 0.999)];
    const exactLo = sorted[Math.floor(sorted.length * 0.001)];
    for (const order of [[0, 1, 2, 3], [3, 2, 1, 0]]) {
      const o = new HistogramObserver();
      for (const k of order) o.observe(all.subarray(k * 50_000, (k + 1) * 50_000));
      const r = o.finalize('percentile', 99.8);
      const width = (2 * 10) / 2048; // outliers reach ±10: one bin is this wide
      assert.ok(Math.abs(r.max - exactHi) < 4 * width, `max ${r.max} vs ${exactHi}`);
      assert.ok(Math.abs(r.min - exactLo) < 4 * width, `min ${r.min} vs ${exactLo}`);
    }
  });

  it('entropy clips the outliers but keeps the bulk', () => {
    const o = new HistogramObserver();
    o.observe(sample(100_000, 7));
    const r = o.finalize('entropy');
    const mm = o.finalize('minmax');
    assert.ok(r.max < mm.max && r.min > mm.min, 'outliers clipped');
    assert.ok(r.max > 0.4 && r.min < -0.4, `bulk kept: ${r.min}..${r.max}`);
  });

  it('memory does not grow with the data seen', () => {
    const o = new HistogramObserver();
    o.observe(sample(1000, 3));
    const size = JSON.stringify(Object.keys(o)).length;
    for (let i = 0; i < 50; i++) o.observe(sample(10_000, i));
    assert.equal(JSON.stringify(Object.keys(o)).length, size);
    assert.equal(o.seen, 501_000);
  });
});
