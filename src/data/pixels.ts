// Decoded pixels → the model's input: the shorter side resized, the centre crop, scaled to [0, 1]
// and normalised, as torchvision and PIL do it. Plain code with no imports, so that the demo page
// runs this very module in the browser and its input is the one validate measured.

import type { Preprocessing } from './preprocessing.js';

/** 8-bit pixels (`channels` per pixel, interleaved, row by row) as [3, crop, crop] float32. */
export function preprocessPixels(data: ArrayLike<number>, w: number, h: number, channels: number, p: Preprocessing): Float32Array {
  // shorter side to `resize` (as torchvision's Resize(int) does), then the centre crop
  const scale = p.resize / Math.min(w, h);
  // the long side is truncated and the crop offset rounded half to even, as torchvision does
  const rw = w <= h ? p.resize : Math.max(p.crop, Math.trunc(w * scale));
  const rh = h <= w ? p.resize : Math.max(p.crop, Math.trunc(h * scale));
  const resized = resize(data, w, h, channels, rw, rh, p.interpolation);
  const left = roundHalfEven((rw - p.crop) / 2);
  const top = roundHalfEven((rh - p.crop) / 2);
  const plane = p.crop * p.crop;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = p.mean[c];
    const sd = p.std[c];
    const from = Math.min(c, channels - 1);
    for (let y = 0; y < p.crop; y++) {
      for (let x = 0; x < p.crop; x++) {
        out[c * plane + y * p.crop + x] = (resized[((top + y) * rw + left + x) * channels + from] / 255 - m) / sd;
      }
    }
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Resampling as PIL and torch do it: pixel centres at +0.5, a separable filter whose support
// widens by the scale factor when shrinking (antialiasing), weights normalised per output pixel.
// Float throughout, as torch.nn.functional.interpolate on a float tensor. Bilinear is the triangle
// filter; bicubic is PIL's (a = -0.5); nearest picks the pixel under the centre.
const FILTERS: Record<string, { support: number; weight: (x: number) => number }> = {
  bilinear: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

function resize(src: ArrayLike<number>, w: number, h: number, ch: number, tw: number, th: number, interpolation: string): Float32Array {
  if (interpolation === 'nearest') {
    const out = new Float32Array(tw * th * ch);
    for (let y = 0; y < th; y++) {
      const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / th));
      for (let x = 0; x < tw; x++) {
        const sx = Math.min(w - 1, Math.floor(((x + 0.5) * w) / tw));
        for (let c = 0; c < ch; c++) out[(y * tw + x) * ch + c] = src[(sy * w + sx) * ch + c];
      }
    }
    return out;
  }
  const filter = FILTERS[interpolation] ?? FILTERS.bicubic;
  const horizontal = new Float32Array(tw * h * ch);
  pass(src, horizontal, w, tw, h, ch, filter, true);
  const out = new Float32Array(tw * th * ch);
  pass(horizontal, out, h, th, tw, ch, filter, false);
  return out;
}

// One separable pass: along x (rows of length `from`) or along y (columns).
function pass(src: ArrayLike<number>, dst: Float32Array, from: number, to: number, across: number, ch: number, filter: (typeof FILTERS)[string], alongX: boolean): void {
  const scale = from / to;
  const stretch = Math.max(scale, 1);
  const support = filter.support * stretch;
  for (let i = 0; i < to; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support + 0.5));
    const hi = Math.min(from, Math.floor(centre + support + 0.5));
    const weights: number[] = [];
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const wgt = filter.weight((j - centre + 0.5) / stretch);
      weights.push(wgt);
      total += wgt;
    }
    for (let k = 0; k < weights.length; k++) weights[k] /= total || 1;
    for (let a = 0; a < across; a++) {
      for (let c = 0; c < ch; c++) {
        let acc = 0;
        for (let k = 0; k < weights.length; k++) {
          const j = lo + k;
          acc += weights[k] * src[(alongX ? a * from + j : j * across + a) * ch + c];
        }
        dst[(alongX ? a * to + i : i * across + a) * ch + c] = acc;
      }
    }
  }
}

