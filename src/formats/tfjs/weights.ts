// Weights of a TF.js graph model: how each constant is stored in the binary shards and described in
// model.json's weightsManifest, including TF.js's quantized storage. TF.js decodes every weight to
// float32 (or int32) at load time, so quantization only shrinks the download; the one exception is
// int8, whose per-channel scale the manifest cannot express and the graph applies (see below).

import { floatToHalf, type Tensor } from '../../graph/tensor.js';

/** How conv/matmul weights are stored; every other constant stays float32 (or int32). */
export type WeightFormat = 'float32' | 'float16' | 'uint16' | 'uint8' | 'int8';

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['float32', 'float16', 'uint16', 'uint8', 'int8'];

/** One entry of weightsManifest[].weights, as tf.io reads it. */
export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
  readonly quantization?: {
    readonly dtype: 'uint8' | 'uint16' | 'float16';
    readonly scale?: number;
    readonly min?: number;
  };
}

export interface EncodedWeight {
  readonly spec: WeightSpec;
  readonly bytes: Uint8Array;
}

const bytesOf = (a: Float32Array | Int32Array | Uint16Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Unquantized storage: float32 for float values, int32 for integer ones (TF.js has no int64). */
export function encodePlain(name: string, values: Float32Array | Int32Array, shape: readonly number[]): EncodedWeight {
  const dtype = values instanceof Int32Array ? 'int32' : 'float32';
  return { spec: { name, shape: [...shape], dtype }, bytes: bytesOf(values) };
}

/** IEEE half precision; TF.js widens it back to float32 at load. */
export function encodeFloat16(name: string, values: Float32Array, shape: readonly number[]): EncodedWeight {
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) half[i] = floatToHalf(values[i]);
  return { spec: { name, shape: [...shape], dtype: 'float32', quantization: { dtype: 'float16' } }, bytes: bytesOf(half) };
}

/**
 * Per-tensor affine quantization, as tensorflowjs_converter does it: value ≈ q·scale + min over the
 * data's range, with `min` nudged, when the range contains 0, so that 0 is exactly representable
 * (a zero weight stays zero).
 */
export function encodeAffine(name: string, values: Float32Array, shape: readonly number[], dtype: 'uint8' | 'uint16'): EncodedWeight {
  const qmax = dtype === 'uint8' ? 255 : 65535;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const q = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  let scale = 1;
  let min = lo === Infinity ? 0 : lo;
  if (hi > lo) {
    scale = (hi - lo) / qmax;
    if (lo <= 0 && hi >= 0) min = -Math.round(-lo / scale) * scale;
    const max = min + qmax * scale;
    for (let i = 0; i < values.length; i++) {
      const v = Math.min(Math.max(values[i], min), max);
      q[i] = Math.round((v - min) / scale);
    }
  }
  return { spec: { name, shape: [...shape], dtype: 'float32', quantization: { dtype, scale, min } }, bytes: bytesOf(q) };
}

export interface Int8Weight {
  /** The integers q ∈ [−127, 127], stored as uint8 q+128 with {scale: 1, min: −128}: TF.js decodes q exactly. */
  readonly weight: EncodedWeight;
  /** Per-channel scales, one per output channel (the trailing `channelDims` axes, flattened). */
  readonly scales: Float32Array;
}

/**
 * Symmetric per-output-channel int8. TF.js manifests have no int8 dtype and only per-tensor affine
 * parameters, so the integers travel as uint8 with a fixed offset (decoding gives q as float32,
 * exactly) and the graph multiplies the op's output by the per-channel scale. Output channels are
 * the trailing `channelDims` axes of the weight as TF.js uses it (1 for HWIO filters and [K, N]
 * matrices, 2 for depthwise [kh, kw, C, multiplier] filters, whose output channel is c·m + j).
 */
export function encodeInt8PerChannel(name: string, values: Float32Array, shape: readonly number[], channelDims: number): Int8Weight {
  const channels = shape.slice(shape.length - channelDims).reduce((a, b) => a * b, 1);
  const absMax = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    const a = Math.abs(values[i]);
    if (a > absMax[c]) absMax[c] = a;
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = absMax[c] > 0 ? absMax[c] / 127 : 1;
  const q = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.round(values[i] / scales[i % channels]) + 128;
  const weight: EncodedWeight = {
    spec: { name, shape: [...shape], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: -128 } },
    bytes: q,
  };
  return { weight, scales };
}

/** Encodes a float weight in the requested format (int8 goes through encodeInt8PerChannel). */
export function encodeWeight(name: string, t: Tensor, values: Float32Array, format: Exclude<WeightFormat, 'int8'>): EncodedWeight {
  switch (format) {
    case 'float32':
      return encodePlain(name, values, t.shape);
    case 'float16':
      return encodeFloat16(name, values, t.shape);
    default:
      return encodeAffine(name, values, t.shape, format);
  }
}

export interface WeightGroup {
  /** weightsManifest: one group whose bytes are split across the shard files in order. */
  readonly manifest: { paths: string[]; weights: WeightSpec[] }[];
  readonly shards: Uint8Array[];
}

/**
 * Concatenates the weights and cuts the bytes into shards of `shardSize` (TF.js joins a group's
 * shards before decoding, so a weight may span two files). Names follow the converter's
 * group1-shard{K}of{N}.bin.
 */
export function shardWeights(weights: readonly EncodedWeight[], shardSize: number): WeightGroup {
  if (!(shardSize >= 1)) throw new Error(`shard size must be at least 1 byte, got ${shardSize}`);
  const total = weights.reduce((n, w) => n + w.bytes.byteLength, 0);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const w of weights) {
    all.set(w.bytes, offset);
    offset += w.bytes.byteLength;
  }
  const count = Math.max(1, Math.ceil(total / shardSize));
  const shards: Uint8Array[] = [];
  for (let k = 0; k < count; k++) shards.push(all.subarray(k * shardSize, Math.min(total, (k + 1) * shardSize)));
  const paths = shards.map((_, k) => `group1-shard${k + 1}of${count}.bin`);
  return { manifest: [{ paths, weights: weights.map((w) => w.spec) }], shards };
}

/** Matches the shard files this writer (or tensorflowjs_converter) produces. */
export const SHARD_FILE = /^group\d+-shard\d+of\d+\.bin$/;
