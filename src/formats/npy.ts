// NumPy .npy files (format versions 1–3): "\x93NUMPY", major, minor, a little-endian header length
// (2 bytes in v1, 4 in v2/v3), a Python dict literal {'descr', 'fortran_order', 'shape'} padded with
// spaces and a newline, then the raw data in C order. Used for reference inputs and outputs.

import { InputError, UnsupportedError } from '../errors.js';
import { numel, tensor, tensorBytes, toFloat32, type DType, type Tensor, type TensorData } from '../graph/tensor.js';
import { readInputFileSync } from './sniff.js';

const MAGIC = Buffer.from('\x93NUMPY', 'latin1');

// descr (byte order stripped) → how to view it and the dtype handed out; f8 narrows, i2/u2 widen.
const DESCRS: Record<string, { size: number; view: new (b: ArrayBuffer, o: number, n: number) => ArrayLike<unknown>; out: DType; convert?: true }> = {
  f4: { size: 4, view: Float32Array, out: 'float32' },
  f2: { size: 2, view: Uint16Array, out: 'float16' },
  i8: { size: 8, view: BigInt64Array, out: 'int64' },
  i4: { size: 4, view: Int32Array, out: 'int32' },
  u1: { size: 1, view: Uint8Array, out: 'uint8' },
  i1: { size: 1, view: Int8Array, out: 'int8' },
  b1: { size: 1, view: Uint8Array, out: 'bool' },
  f8: { size: 8, view: Float64Array, out: 'float32', convert: true },
  i2: { size: 2, view: Int16Array, out: 'int32', convert: true },
  u2: { size: 2, view: Uint16Array, out: 'int32', convert: true },
};

const WRITE_DESCRS: Record<DType, string> = {
  float32: '<f4', float16: '<f2', bfloat16: '<f4', int64: '<i8', int32: '<i4', uint8: '|u1', int8: '|i1', bool: '|b1',
};

/** Reads a .npy file (by path) or .npy bytes. `where` names bytes in errors (defaults to the path). */
export function readNpy(input: string | Uint8Array, where?: string): Tensor {
  const name = where ?? (typeof input === 'string' ? input : '<buffer>');
  const data = typeof input === 'string' ? readInputFileSync(input) : input;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const bad: (why: string) => never = (why) => {
    throw new InputError(`invalid .npy file (${why})`, name);
  };
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) bad('no \\x93NUMPY magic');
  const major = buf[6];
  if (major < 1 || major > 3) throw new UnsupportedError(`.npy format version ${major}.${buf[7]} is not supported`, name, 'file-format');
  const lenBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenBytes) bad('truncated header length');
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > buf.length) bad(`header of ${headerLen} bytes runs past the ${buf.length}-byte file`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', 8 + lenBytes, dataStart).trim();

  const descr = /^\{.*['"]descr['"]\s*:\s*['"]([^'"]*)['"]/s.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) bad(`unreadable header ${JSON.stringify(header.slice(0, 120))}`);
  if (fortran === 'True') throw new UnsupportedError('Fortran-order .npy arrays are not supported (save with np.ascontiguousarray)', name, 'file-format');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    if (!/^\d+L?$/.test(s)) bad(`bad shape entry '${s}'`);
    return Number.parseInt(s, 10);
  });
  if (!shape.every(Number.isSafeInteger)) bad('shape too large');

  const order = descr[0];
  const key = descr.slice(1);
  const kind = Object.hasOwn(DESCRS, key) ? DESCRS[key] : undefined;
  if (!kind || !'<|='.includes(order) || (order === '|' && kind.size !== 1)) {
    const why = order === '>' && kind && kind.size > 1 ? 'big-endian data' : descr === '|O' ? 'pickled Python objects' : 'this dtype';
    throw new UnsupportedError(`.npy dtype '${descr}' is not supported (${why})`, name, 'file-format');
  }

  const count = numel(shape);
  const bytes = count * kind.size;
  // Trailing bytes are allowed, as np.load allows them (several arrays saved to one stream).
  if (buf.length - dataStart < bytes) bad(`data has ${buf.length - dataStart} bytes, shape [${shape.join(', ')}] of ${descr} needs ${bytes}`);
  const abs = buf.byteOffset + dataStart;
  const src = abs % kind.size === 0
    ? new kind.view(buf.buffer as ArrayBuffer, abs, count)
    : new kind.view(buf.buffer.slice(abs, abs + bytes) as ArrayBuffer, 0, count);
  if (!kind.convert) return tensor(kind.out, shape, src as TensorData);
  const out = kind.out === 'float32' ? new Float32Array(count) : new Int32Array(count);
  out.set(src as ArrayLike<number>);
  return tensor(kind.out, shape, out);
}

/** Serializes a tensor as .npy (v1, or v2 when the header needs it). bfloat16 is written as float32. */
export function writeNpy(t: Tensor): Uint8Array {
  const descr = WRITE_DESCRS[t.dtype];
  const data = t.dtype === 'bfloat16' ? tensorBytes(tensor('float32', t.shape, toFloat32(t))) : tensorBytes(t);
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // numpy pads the header with spaces and a final newline so the data starts 64-byte aligned.
  let lenBytes = 2;
  let total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  if (total - 10 > 0xffff) {
    lenBytes = 4;
    total = Math.ceil((12 + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - 8 - lenBytes;
  const out = Buffer.alloc(total + data.byteLength);
  MAGIC.copy(out, 0);
  out[6] = lenBytes === 2 ? 1 : 2;
  out[7] = 0;
  if (lenBytes === 2) out.writeUInt16LE(headerLen, 8);
  else out.writeUInt32LE(headerLen, 8);
  out.write(dict.padEnd(headerLen - 1, ' ') + '\n', 8 + lenBytes, 'latin1');
  out.set(data, total);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
