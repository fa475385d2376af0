// Full-integer int8 by TFLite's quantization spec: real = scale·(q − zero_point). Activations are
// per-tensor asymmetric int8 over a calibrated range widened to hold 0 (so zero padding is exact);
// weights per output channel, symmetric (zero point 0, |q| ≤ 127); a bias is int32 at scale
// input_scale·weight_scale[c], so the kernel adds it to the int32 accumulator without a rescale.

import type { Range } from '../../passes/quantize-int8.js';
import type { QuantizationSpec } from './schema.js';

export type { Range } from '../../passes/quantize-int8.js';

export function activationQuantization(r: Range): QuantizationSpec {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  // a value that is always 0 still needs a positive scale to be a valid tensor
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zero = Math.max(-128, Math.min(127, Math.round(-128 - lo / scale)));
  return { scale: Float32Array.of(scale), zeroPoint: [zero], quantizedDimension: 0 };
}

/** The int32 bias for an int8 layer, and its quantization (per output channel, zero point 0). */
export function quantizeBias(values: Float32Array, inputScale: number, weightScales: Float32Array): { data: Int32Array; quantization: QuantizationSpec } {
  const scale = weightScales.map((s) => inputScale * s);
  const data = Int32Array.from(values, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / scale[c]))));
  return { data, quantization: { scale, zeroPoint: Array.from(scale, () => 0), quantizedDimension: 0 } };
}
