// Reads back what the tests check in a .tflite file, with flatbuffers' ByteBuffer and the slot
// numbers of schema.fbs (independent of the writer's builders): op names per builtin code, tensor
// types, shapes and quantization parameters, each operator's tensors, the input and output tensors,
// metadata entries and the signature.

import { ByteBuffer } from 'flatbuffers';
import { Op, TensorType } from '../../src/formats/tflite/schema.js';

export interface TfliteTensor {
  name: string;
  type: string;
  shape: number[];
  quantization?: { scale: number[]; zeroPoint: number[]; dimension: number };
  /** The constant's bytes; empty for an activation. */
  data: Uint8Array;
  /** Its index in the model's buffers (0: none). */
  buffer: number;
  /** Where its shape, scale and zero point vectors are in the file (0: absent): equal offsets are one shared vector. */
  at: { shape: number; scale: number; zeroPoint: number };
}

export interface TfliteSummary {
  readonly identifier: string;
  readonly version: number;
  readonly ops: Record<string, number>;
  readonly tensors: TfliteTensor[];
  /** Operators in order: builtin name and tensor indices. */
  readonly operators: { op: string; inputs: number[]; outputs: number[] }[];
  readonly inputs: number[];
  readonly outputs: number[];
  readonly metadata: Record<string, Uint8Array>;
  readonly signature: { key: string; inputs: string[]; outputs: string[] };
}

const OP_NAMES = new Map(Object.entries(Op).map(([k, v]) => [v as number, k]));
const TYPE_NAMES = new Map(Object.entries(TensorType).map(([k, v]) => [v as number, k]));

export function readTflite(bytes: Uint8Array): TfliteSummary {
  const bb = new ByteBuffer(bytes);
  const root = bb.readInt32(0);
  const field = (table: number, slot: number) => bb.__offset(table, 4 + 2 * slot);
  const u32 = (table: number, slot: number, d = 0) => (field(table, slot) ? bb.readUint32(table + field(table, slot)) : d);
  const tables = (table: number, slot: number): number[] => {
    const o = field(table, slot);
    if (!o) return [];
    const start = bb.__vector(table + o);
    return Array.from({ length: bb.__vector_len(table + o) }, (_, i) => bb.__indirect(start + 4 * i));
  };
  const ints = (table: number, slot: number): number[] => {
    const o = field(table, slot);
    if (!o) return [];
    const start = bb.__vector(table + o);
    return Array.from({ length: bb.__vector_len(table + o) }, (_, i) => bb.readInt32(start + 4 * i));
  };
  const str = (table: number, slot: number) => (field(table, slot) ? (bb.__string(table + field(table, slot)) as string) : '');
  const bytesAt = (table: number, slot: number) => {
    const o = field(table, slot);
    return o ? bytes.subarray(bb.__vector(table + o), bb.__vector(table + o) + bb.__vector_len(table + o)) : new Uint8Array(0);
  };

  const codes = tables(root, 1).map((c) => u32(c, 3));
  const graph = tables(root, 2)[0];
  const ops: Record<string, number> = {};
  const operators = tables(graph, 3).map((o) => {
    const name = OP_NAMES.get(codes[u32(o, 0)]) ?? `builtin ${codes[u32(o, 0)]}`;
    ops[name] = (ops[name] ?? 0) + 1;
    return { op: name, inputs: ints(o, 1), outputs: ints(o, 2) };
  });
  const vector = (table: number, slot: number, width: number, read: (at: number) => number): number[] => {
    const o = field(table, slot);
    if (!o) return [];
    const start = bb.__vector(table + o);
    return Array.from({ length: bb.__vector_len(table + o) }, (_, i) => read(start + width * i));
  };
  const quantization = (t: number): TfliteTensor['quantization'] => {
    const o = field(t, 4);
    if (!o) return undefined;
    const q = bb.__indirect(t + o);
    return {
      scale: vector(q, 2, 4, (at) => bb.readFloat32(at)),
      zeroPoint: vector(q, 3, 8, (at) => Number(bb.readInt64(at))),
      dimension: field(q, 6) ? bb.readInt32(q + field(q, 6)) : 0,
    };
  };
  const vectorAt = (table: number, slot: number) => (table && field(table, slot) ? bb.__vector(table + field(table, slot)) : 0);
  const quantizationAt = (t: number) => (field(t, 4) ? bb.__indirect(t + field(t, 4)) : 0);
  const buffers = tables(root, 4);
  const tensors = tables(graph, 0).map((t) => ({
    name: str(t, 3),
    type: TYPE_NAMES.get(field(t, 1) ? bb.readInt8(t + field(t, 1)) : 0) ?? '?',
    shape: ints(t, 0),
    quantization: quantization(t),
    data: bytesAt(buffers[u32(t, 2)], 0),
    buffer: u32(t, 2),
    at: { shape: vectorAt(t, 0), scale: vectorAt(quantizationAt(t), 2), zeroPoint: vectorAt(quantizationAt(t), 3) },
  }));
  const metadata: Record<string, Uint8Array> = {};
  for (const m of tables(root, 6)) metadata[str(m, 0)] = bytesAt(buffers[u32(m, 1)], 0);
  const sig = tables(root, 7)[0];
  return {
    identifier: new TextDecoder().decode(bytes.subarray(4, 8)),
    version: u32(root, 0),
    ops,
    tensors,
    operators,
    inputs: ints(graph, 1),
    outputs: ints(graph, 2),
    metadata,
    signature: { key: str(sig, 2), inputs: tables(sig, 0).map((t) => str(t, 0)), outputs: tables(sig, 1).map((t) => str(t, 0)) },
  };
}
