// Running statistics of one activation for calibration: observe(batch) many times, then finalize().
// A fixed number of bins over a range that widens when a batch exceeds it (old counts are moved into
// the wider bins), so memory is constant however many images are seen — the opposite of keeping
// every activation, which is what makes onnxruntime's calibrators need ~100 MB per ConvNeXt-T image.

import type { Range } from '../passes/quantize-int8.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export type { Range } from '../passes/quantize-int8.js';

const BINS = 2048;

export class HistogramObserver {
  private counts = new Float64Array(BINS);
  /** The histogram covers [-limit, limit]. */
  private limit = 0;
  private lo = Infinity;
  private hi = -Infinity;
  private total = 0;

  observe(values: Float32Array): void {
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return;
    this.lo = lo;
    this.hi = hi;
    const need = Math.max(Math.abs(lo), Math.abs(hi));
    if (need > this.limit) this.widen(need);
    const scale = BINS / (2 * this.limit);
    const counts = this.counts;
    const last = BINS - 1;
    for (let i = 0; i < values.length; i++) {
      const b = Math.floor((values[i] + this.limit) * scale);
      counts[b < 0 ? 0 : b > last ? last : b]++;
    }
    this.total += values.length;
  }

  // Re-bin into a range at least 1.5× as wide (so a slowly growing maximum re-bins rarely), spreading each old bin's count over the
  // new bins it overlaps (uniform within a bin, the assumption a histogram makes anyway).
  private widen(need: number): void {
    const next = this.limit === 0 ? need : Math.max(need, this.limit * 1.5);
    if (this.total > 0) {
      const old = this.counts;
      const counts = new Float64Array(BINS);
      const oldWidth = (2 * this.limit) / BINS;
      const newWidth = (2 * next) / BINS;
      for (let b = 0; b < BINS; b++) {
        if (!old[b]) continue;
        const start = -this.limit + b * oldWidth;
        const end = start + oldWidth;
        let at = start;
        while (at < end - 1e-12 * newWidth) {
          const nb = Math.min(BINS - 1, Math.floor((at + next) / newWidth));
          const binEnd = Math.min(end, -next + (nb + 1) * newWidth);
          counts[nb] += (old[b] * (binEnd - at)) / oldWidth;
          if (binEnd <= at) break;
          at = binEnd;
        }
      }
      this.counts = counts;
    }
    this.limit = next;
  }

  get seen(): number {
    return this.total;
  }

  finalize(method: CalibrationMethod, percentile = 99.99): Range {
    if (this.total === 0) return { min: 0, max: 0 };
    if (method === 'minmax') return { min: this.lo, max: this.hi };
    if (method === 'percentile') {
      const tail = ((100 - percentile) / 100) * this.total;
      return { min: this.valueAtCount(tail), max: this.valueAtCount(this.total - tail) };
    }
    const t = this.entropyThreshold();
    return { min: Math.max(this.lo, -t), max: Math.min(this.hi, t) };
  }

  // The value below which `count` observations lie (linear within a bin).
  private valueAtCount(count: number): number {
    const width = (2 * this.limit) / BINS;
    let acc = 0;
    for (let b = 0; b < BINS; b++) {
      if (acc + this.counts[b] >= count) {
        const frac = this.counts[b] ? (count - acc) / this.counts[b] : 0;
        return Math.min(this.hi, Math.max(this.lo, -this.limit + (b + frac) * width));
      }
      acc += this.counts[b];
    }
    return this.hi;
  }

  // TensorRT's entropy calibration on |x|: the clipping threshold whose quantised distribution loses
  // the least information (KL divergence) against the observed one. A symmetric range has 128 levels
  // for |x|; a nearly one-sided one (after GELU: min ≈ −0.17) gets all 255 of an asymmetric uint8.
  private entropyThreshold(): number {
    const oneSided = this.lo >= -0.1 * this.hi || this.hi <= -0.1 * this.lo;
    const half = BINS / 2;
    const abs = new Float64Array(half);
    for (let b = 0; b < BINS; b++) abs[b < half ? half - 1 - b : b - half] += this.counts[b];
    const levels = oneSided ? 255 : 128;
    const width = this.limit / half;
    let best = { kl: Infinity, bins: half };
    for (let i = levels; i <= half; i += 8) {
      const p = abs.slice(0, i);
      let outliers = 0;
      for (let b = i; b < half; b++) outliers += abs[b];
      p[i - 1] += outliers;
      const q = new Float64Array(i);
      const merge = i / levels;
      for (let l = 0; l < levels; l++) {
        const s = Math.floor(l * merge);
        const e = l === levels - 1 ? i : Math.floor((l + 1) * merge);
        let sum = 0;
        let nonzero = 0;
        for (let b = s; b < e; b++) {
          sum += abs[b];
          if (abs[b]) nonzero++;
        }
        for (let b = s; b < e; b++) if (abs[b]) q[b] = sum / nonzero;
      }
      const kl = klDivergence(p, q);
      if (kl < best.kl) best = { kl, bins: i };
    }
    return best.bins * width;
  }
}

function klDivergence(p: Float64Array, q: Float64Array): number {
  let ps = 0;
  let qs = 0;
  for (let i = 0; i < p.length; i++) {
    ps += p[i];
    qs += q[i];
  }
  if (!ps || !qs) return Infinity;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (!p[i]) continue;
    const pi = p[i] / ps;
    const qi = q[i] / qs;
    kl += qi ? pi * Math.log(pi / qi) : pi * 20; // an empty quantised bin where data exists: heavy penalty
  }
  return kl;
}
