// safetensors: an 8-byte little-endian header length, a JSON header
// {"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}}, then the data,
// offsets relative to its start. The file is read once; tensors are views of it where aligned.

import { InputError, UnsupportedError } from '../errors.js';
import { parseErrorMessage } from './json-values.js';
import { numel, tensor, tensorBytes, type DType, type Tensor, type TensorData } from '../graph/tensor.js';
import { DTYPES } from '../graph/dtypes.js';
import { SAFETENSORS_MAX_HEADER, readInputFile } from './sniff.js';
import type { StateDict } from './state-dict.js';

export interface Safetensors {
  tensors: StateDict;
  metadata: Record<string, string>;
}

// File dtype → (bytes per element, array to view it as, dtype we hand out). F64 narrows to float32
// and I16/U16 widen to int32; everything else is handed out as stored.
interface FileDType {
  size: number;
  view: new (b: ArrayBuffer, o: number, n: number) => ArrayLike<unknown>;
  out: DType;
  /** Values must be copied into the `out` array type (F64, I16, U16). */
  convert?: true;
}
const FILE_DTYPES: Record<string, FileDType> = {
  F32: { size: 4, view: Float32Array, out: 'float32' },
  F16: { size: 2, view: Uint16Array, out: 'float16' },
  BF16: { size: 2, view: Uint16Array, out: 'bfloat16' },
  I64: { size: 8, view: BigInt64Array, out: 'int64' },
  I32: { size: 4, view: Int32Array, out: 'int32' },
  I8: { size: 1, view: Int8Array, out: 'int8' },
  U8: { size: 1, view: Uint8Array, out: 'uint8' },
  BOOL: { size: 1, view: Uint8Array, out: 'bool' },
  F64: { size: 8, view: Float64Array, out: 'float32', convert: true },
  I16: { size: 2, view: Int16Array, out: 'int32', convert: true },
  U16: { size: 2, view: Uint16Array, out: 'int32', convert: true },
};

const WRITE_DTYPES: Record<DType, string> = {
  float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

export async function readSafetensors(path: string): Promise<Safetensors> {
  return readSafetensorsFromBuffer(await readInputFile(path), path);
}

/** As readSafetensors, for bytes in memory; `where` names them in errors. */
export function readSafetensorsFromBuffer(data: Uint8Array, where = '<buffer>'): Safetensors {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const bad: (why: string) => never = (why) => {
    throw new InputError(`invalid safetensors file (${why})`, where);
  };
  if (buf.length < 8) bad(`${buf.length} bytes is too short for the header length`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(buf.length - 8)) bad(`header length ${n} exceeds the ${buf.length}-byte file`);
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) bad(`header length ${n} exceeds ${SAFETENSORS_MAX_HEADER} bytes`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    bad(`header is not valid JSON: ${parseErrorMessage(e)}`);
  }
  if (!isObject(header)) bad('header is not a JSON object');

  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const found: { name: string; begin: number; end: number; dims: number[]; count: number; kind: FileDType }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(info)) bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') bad(`metadata '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const badTensor: (why: string) => never = (why) => bad(`tensor '${name}': ${why}`);
    if (!isObject(info)) badTensor('entry is not an object');
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') badTensor('dtype is not a string');
    const kind = Object.hasOwn(FILE_DTYPES, dtype as string) ? FILE_DTYPES[dtype as string] : undefined;
    if (!kind) throw new UnsupportedError(`tensor '${name}' has dtype ${String(dtype)}, which is not supported`, where, 'dtype');
    if (!Array.isArray(shape) || !shape.every(isCount)) badTensor('shape is not a list of non-negative integers');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) badTensor('data_offsets is not [begin, end]');
    const [begin, end] = offsets as number[];
    const dims = shape as number[];
    if (begin > end || end > dataLen) badTensor(`data_offsets [${begin}, ${end}] lie outside the ${dataLen}-byte data section`);
    const count = numel(dims);
    if (end - begin !== count * kind.size) {
      badTensor(`data_offsets span ${end - begin} bytes but shape [${dims.join(', ')}] × ${dtype} needs ${count * kind.size}`);
    }
    found.push({ name, begin, end, dims, count, kind });
  }
  // File order, not JSON object order (which puts integer-like names first).
  found.sort((a, b) => a.begin - b.begin);
  // Tensors own their bytes, as the reference reader requires: otherwise a small file could list
  // one range many times over, each listing another copy when it is converted or misaligned.
  let owner = { name: '', end: 0 };
  for (const f of found) {
    if (f.end === f.begin) continue;
    if (f.begin < owner.end) bad(`tensors '${owner.name}' and '${f.name}' share bytes`);
    owner = f;
  }
  return { tensors: new Map(found.map((f) => [f.name, makeTensor(buf, dataStart + f.begin, f.count, f.dims, f.kind)])), metadata };
}

function makeTensor(buf: Buffer, offset: number, count: number, shape: number[], kind: FileDType): Tensor {
  const abs = buf.byteOffset + offset;
  // A view when aligned; otherwise copy just this tensor's bytes into fresh (aligned) memory.
  const src = abs % kind.size === 0
    ? new kind.view(buf.buffer as ArrayBuffer, abs, count)
    : new kind.view(buf.buffer.slice(abs, abs + count * kind.size) as ArrayBuffer, 0, count);
  if (!kind.convert) return tensor(kind.out, shape, src as TensorData);
  // F64 → float32 (rounded), I16/U16 → int32 (exact).
  const out = new DTYPES[kind.out].array(count) as Float32Array | Int32Array;
  out.set(src as ArrayLike<number>);
  return tensor(kind.out, shape, out);
}

/** Serializes tensors (in map order) and optional string metadata to safetensors bytes. */
export function writeSafetensors(tensors: StateDict, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new InputError("a tensor cannot be named '__metadata__' in safetensors");
    const bytes = t.data.byteLength;
    Object.defineProperty(header, name, {
      value: { dtype: WRITE_DTYPES[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes] },
      enumerable: true,
    });
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  Buffer.from(out.buffer).writeBigUInt64LE(BigInt(json.length), 0);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    out.set(tensorBytes(t), at);
    at += t.data.byteLength;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
