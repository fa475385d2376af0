// Typed tensors shared by every stage. Data is kept in the narrowest typed array that holds the
// dtype exactly (float16 and bfloat16 as raw 16-bit words), so a reader can hand over a view of the
// file it mapped without converting, and converts only when a consumer asks for float32.

import { BYTES_PER_ELEMENT, type DType, type TensorData } from './dtypes.js';

export { BYTES_PER_ELEMENT, type DType, type TensorData } from './dtypes.js';

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Row-major (C order), contiguous. float16/bfloat16: Uint16Array of raw bits. */
  readonly data: TensorData;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(dtype: DType, shape: readonly number[], data: TensorData): Tensor {
  const n = numel(shape);
  if (data.length !== n) {
    throw new Error(`tensor data has ${data.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  }
  return { dtype, shape: [...shape], data };
}

export function float32(shape: readonly number[], data?: ArrayLike<number>): Tensor {
  const out = new Float32Array(numel(shape));
  if (data) out.set(data);
  return tensor('float32', shape, out);
}

export function int64(values: readonly number[]): Tensor {
  return tensor('int64', [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16';
}

// IEEE 754 half precision → single. Subnormals, infinities and NaN are kept.
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

// Single → half with round-to-nearest-even; values beyond the half range become ±Infinity.
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** The tensor's values as float32 (a view when it already is float32). */
export function toFloat32(t: Tensor): Float32Array {
  const { data } = t;
  switch (t.dtype) {
    case 'float32':
      return data as Float32Array;
    case 'float16': {
      const src = data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    case 'bfloat16': {
      const src = data as Uint16Array;
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'int64':
      return Float32Array.from(data as BigInt64Array, (v) => Number(v));
    default:
      return Float32Array.from(data as ArrayLike<number>);
  }
}

export function asFloat32(t: Tensor): Tensor {
  return t.dtype === 'float32' ? t : tensor('float32', t.shape, toFloat32(t));
}

/** Same data, new shape (element counts must agree). */
export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  return tensor(t.dtype, shape, t.data);
}

/** How many bytes the tensor's values take. */
export function byteSize(t: Tensor): number {
  return numel(t.shape) * BYTES_PER_ELEMENT[t.dtype];
}

/** Bytes of the data in little-endian order, as stored in ONNX raw_data and safetensors. */
export function tensorBytes(t: Tensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Transpose a 2-D float tensor: (rows, cols) → (cols, rows), into `out` when given (not t's own array). */
export function transpose2d(t: Tensor, out?: Float32Array): Tensor {
  const [rows, cols] = t.shape;
  const src = toFloat32(t);
  if (out && (out.length !== rows * cols || out.buffer === src.buffer)) throw new Error(`transpose2d: the output must be a separate array of ${rows * cols} values`);
  out ??= new Float32Array(rows * cols);
  // In 16×16 tiles, writing each output row sequentially: both sides stay in cache (2× faster than
  // the plain double loop on ConvNeXt-T's 3072×768 pointwise weights).
  const TILE = 16;
  for (let c0 = 0; c0 < cols; c0 += TILE) {
    const c1 = Math.min(c0 + TILE, cols);
    for (let r0 = 0; r0 < rows; r0 += TILE) {
      const r1 = Math.min(r0 + TILE, rows);
      for (let c = c0; c < c1; c++) {
        for (let r = r0, o = c * rows + r0, i = r0 * cols + c; r < r1; r++, o++, i += cols) out[o] = src[i];
      }
    }
  }
  return tensor('float32', [cols, rows], out);
}

export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function shapeString(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}
