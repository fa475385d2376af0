// What validate needs from a .tflite file before LiteRT compiles it: the first input's shape and our
// metadata entry. A flatbuffer reader over untrusted bytes: every offset and vector length is
// checked against the file before it is followed, so a broken file is one clear error, never a read
// of garbage or an allocation sized by it.

import { InputError } from '../../errors.js';
import { METADATA_NAME } from './index.js';

/** A tensor's element type (schema.fbs TensorType code) and, when quantized, its per-tensor parameters. */
export interface TfliteEnd {
  readonly type: number;
  readonly quantization?: { readonly scale: number; readonly zeroPoint: number };
}

export interface TfliteSummary {
  /** The first subgraph input's shape (NHWC). */
  readonly inputShape: readonly number[];
  readonly input: TfliteEnd;
  readonly output: TfliteEnd;
  readonly metadata: Record<string, string>;
}

// slots of schema.fbs's tables
const MODEL_SUBGRAPHS = 2;
const MODEL_BUFFERS = 4;
const MODEL_METADATA = 6;
const SUBGRAPH_TENSORS = 0;
const SUBGRAPH_INPUTS = 1;
const SUBGRAPH_OUTPUTS = 2;
const TENSOR_SHAPE = 0;
const TENSOR_TYPE = 1;
const TENSOR_QUANTIZATION = 4;
const QUANTIZATION_SCALE = 2;
const QUANTIZATION_ZERO_POINT = 3;
const METADATA_NAME_SLOT = 0;
const METADATA_BUFFER = 1;
const BUFFER_DATA = 0;

class Flatbuffer {
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array, private readonly where: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private at(offset: number, size: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.bytes.length) throw new InputError('not a readable .tflite file (an offset leaves the file)', this.where);
    return offset;
  }

  u32 = (offset: number) => this.view.getUint32(this.at(offset, 4), true);
  i32 = (offset: number) => this.view.getInt32(this.at(offset, 4), true);

  root(): number {
    return this.u32(0);
  }

  /** Where field `slot` of the table at `table` is, or 0 when absent. */
  field(table: number, slot: number): number {
    const vtable = table - this.i32(table);
    const size = this.view.getUint16(this.at(vtable, 2), true);
    const entry = 4 + 2 * slot;
    if (entry >= size) return 0;
    const rel = this.view.getUint16(this.at(vtable + entry, 2), true);
    return rel ? table + rel : 0;
  }

  /** A vector's element offsets (`width` bytes each), its length checked against the file. */
  private vector(table: number, slot: number, width: number): number[] {
    const f = this.field(table, slot);
    if (!f) return [];
    const start = f + this.u32(f);
    const length = this.u32(start);
    this.at(start + 4, length * width);
    return Array.from({ length }, (_, i) => start + 4 + i * width);
  }

  i8 = (table: number, slot: number) => {
    const f = this.field(table, slot);
    return f ? this.view.getInt8(this.at(f, 1)) : 0;
  };
  table = (table: number, slot: number) => {
    const f = this.field(table, slot);
    return f ? f + this.u32(f) : 0;
  };
  floats = (table: number, slot: number) => this.vector(table, slot, 4).map((p) => this.view.getFloat32(p, true));
  // a zero point is an int64; TFLite's are 8-bit, so the low word holds it
  int64s = (table: number, slot: number) => this.vector(table, slot, 8).map((p) => this.i32(p));
  tables = (table: number, slot: number) => this.vector(table, slot, 4).map((p) => p + this.u32(p));
  ints = (table: number, slot: number) => this.vector(table, slot, 4).map((p) => this.i32(p));
  bytesOf = (table: number, slot: number) => {
    const v = this.vector(table, slot, 1);
    return v.length ? this.bytes.subarray(v[0], v[0] + v.length) : new Uint8Array(0);
  };
  text = (table: number, slot: number) => new TextDecoder().decode(this.bytesOf(table, slot));
}

export function readTfliteSummary(bytes: Uint8Array, where: string): TfliteSummary {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'TFL3') throw new InputError('not a .tflite file (no TFL3 identifier)', where);
  const fb = new Flatbuffer(bytes, where);
  const root = fb.root();
  const graph = fb.tables(root, MODEL_SUBGRAPHS)[0];
  if (graph === undefined) throw new InputError('the .tflite file has no subgraph', where);
  const tensors = fb.tables(graph, SUBGRAPH_TENSORS);
  const input = tensors[fb.ints(graph, SUBGRAPH_INPUTS)[0]];
  if (input === undefined) throw new InputError('the .tflite model has no input tensor', where);
  const output = tensors[fb.ints(graph, SUBGRAPH_OUTPUTS)[0]];
  if (output === undefined) throw new InputError('the .tflite model has no output tensor', where);
  const metadata: Record<string, string> = {};
  const buffers = fb.tables(root, MODEL_BUFFERS);
  for (const m of fb.tables(root, MODEL_METADATA)) {
    if (fb.text(m, METADATA_NAME_SLOT) !== METADATA_NAME) continue;
    const slot = fb.field(m, METADATA_BUFFER);
    const buffer = slot ? buffers[fb.u32(slot)] : undefined;
    if (buffer === undefined) throw new InputError(`the .tflite metadata entry ${METADATA_NAME} names no buffer`, where);
    let values: unknown;
    try {
      values = JSON.parse(new TextDecoder().decode(fb.bytesOf(buffer, BUFFER_DATA)));
    } catch {
      throw new InputError(`the .tflite metadata entry ${METADATA_NAME} is not JSON`, where);
    }
    if (values && typeof values === 'object' && !Array.isArray(values)) {
      for (const [k, v] of Object.entries(values)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
  }
  return { inputShape: fb.ints(input, TENSOR_SHAPE), input: end(fb, input), output: end(fb, output), metadata };
}

function end(fb: Flatbuffer, tensor: number): TfliteEnd {
  const type = fb.i8(tensor, TENSOR_TYPE);
  const q = fb.table(tensor, TENSOR_QUANTIZATION);
  const [scale] = q ? fb.floats(q, QUANTIZATION_SCALE) : [];
  if (scale === undefined) return { type };
  return { type, quantization: { scale, zeroPoint: fb.int64s(q, QUANTIZATION_ZERO_POINT)[0] ?? 0 } };
}
