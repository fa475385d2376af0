// Mutations of input files, as plain data (so that a failing case prints as a reproducer and can be
// applied again): byte edits at offsets that matter to the format (zip records, the pickle, the
// safetensors header, protobuf tags), JSON edits at any path of a parsed document, and line edits
// of labels files. fast-check draws them; apply() turns one into bytes.

import { crc32 } from 'node:zlib';
import fc from 'fast-check';

/** Which bytes a byte edit lands on: one the format cares about, or any. */
export interface Position {
  readonly pick: 'interesting' | 'uniform';
  readonly index: number;
}

export type ByteEdit =
  | { readonly op: 'flip'; readonly at: Position; readonly xor: number }
  | { readonly op: 'set'; readonly at: Position; readonly value: number }
  | { readonly op: 'u32'; readonly at: Position; readonly value: number }
  | { readonly op: 'truncate'; readonly at: Position }
  | { readonly op: 'insert'; readonly at: Position; readonly bytes: readonly number[] }
  | { readonly op: 'delete'; readonly at: Position; readonly length: number }
  | { readonly op: 'duplicate'; readonly at: Position; readonly length: number };

export type JsonEdit = {
  readonly op: 'json';
  /** Index into the document's paths (every object key and array element, depth first). */
  readonly path: number;
  readonly action: 'delete' | 'replace' | 'negate' | 'scale' | 'stringify' | 'wrap';
  readonly value: number;
};

export type LineEdit = {
  readonly op: 'lines';
  readonly action: 'drop' | 'duplicate' | 'label' | 'file' | 'crlf' | 'bom' | 'long' | 'empty' | 'swap' | 'blank';
  readonly index: number;
  readonly value: number;
};

/** Recomputes every stored zip member's CRC, so that an edit inside the pickle reaches the unpickler. */
export type FixCrc = { readonly op: 'fix-crc' };

export type Edit = ByteEdit | JsonEdit | LineEdit | FixCrc;

/** What a file is, for where its interesting bytes are and which edits make sense. */
export type FileKind = 'zip' | 'pickle' | 'safetensors' | 'onnx' | 'npy' | 'png' | 'json' | 'text' | 'bin';

const SPECIAL_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x2e, 0x71, 0x58, 0x7b, 0x7d, 0x22];
const SPECIAL_U32 = [0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 1 << 24];
/** Values a JSON edit puts in place of a field: wrong types, edges, and the hostile strings. */
export const NASTY_JSON: readonly unknown[] = [
  null, true, false, 0, -1, 1, 0.5, -0.5, 2 ** 31, 2 ** 53, 1e308, -1e308, 1e-308, '', 'x', '-1', '1e9', 'NaN',
  '../../../etc/passwd', '/dev/zero', '/etc/passwd', 'a/../../b', [], [null], [1, 2, 3], [-1, -1], {}, { a: 1 }, 'x'.repeat(5000),
  Array.from({ length: 5 }, () => ({})), [2 ** 40, 2 ** 40], 'float64', 'int8', 'uint8', 'string', 'graph-model', 'layers-model', '__proto__',
];

const position: fc.Arbitrary<Position> = fc.record({
  pick: fc.constantFrom('interesting' as const, 'interesting' as const, 'uniform' as const),
  index: fc.nat(),
});

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: position, xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('set' as const), at: position, value: fc.constantFrom(...SPECIAL_BYTES) }),
  fc.record({ op: fc.constant('u32' as const), at: position, value: fc.constantFrom(...SPECIAL_U32) }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 256 }) }),
);

export const jsonEdit: fc.Arbitrary<JsonEdit> = fc.record({
  op: fc.constant('json' as const),
  path: fc.nat(),
  action: fc.constantFrom('delete' as const, 'replace' as const, 'replace' as const, 'negate' as const, 'scale' as const, 'stringify' as const, 'wrap' as const),
  value: fc.nat(),
});

export const lineEdit: fc.Arbitrary<LineEdit> = fc.record({
  op: fc.constant('lines' as const),
  action: fc.constantFrom('drop' as const, 'duplicate' as const, 'label' as const, 'file' as const, 'crlf' as const, 'bom' as const, 'long' as const, 'empty' as const, 'swap' as const, 'blank' as const),
  index: fc.nat(),
  value: fc.nat(),
});

/** One to three edits fitting a file of `kind`. */
export function editsFor(kind: FileKind): fc.Arbitrary<Edit[]> {
  const one: fc.Arbitrary<Edit> = kind === 'json' ? fc.oneof({ weight: 4, arbitrary: jsonEdit }, { weight: 1, arbitrary: byteEdit })
    : kind === 'text' ? fc.oneof({ weight: 4, arbitrary: lineEdit }, { weight: 1, arbitrary: byteEdit })
    : kind === 'safetensors' ? fc.oneof({ weight: 3, arbitrary: byteEdit }, { weight: 1, arbitrary: jsonEdit })
    : byteEdit;
  const edits = fc.array(one, { minLength: 1, maxLength: 3 });
  if (kind !== 'zip') return edits;
  return fc.tuple(edits, fc.boolean()).map(([e, fix]) => (fix ? [...e, { op: 'fix-crc' as const }] : e));
}

export function apply(data: Uint8Array, kind: FileKind, edits: readonly Edit[]): Uint8Array {
  let out = data;
  for (const e of edits) {
    if (e.op === 'json') out = kind === 'safetensors' ? editSafetensorsHeader(out, e) : editJsonText(out, e);
    else if (e.op === 'lines') out = editLines(out, e);
    else if (e.op === 'fix-crc') out = fixZipCrcs(out);
    else out = editBytes(out, kind, e);
  }
  return out;
}

function editBytes(data: Uint8Array, kind: FileKind, e: ByteEdit): Uint8Array {
  if (data.length === 0) return e.op === 'insert' ? Uint8Array.from(e.bytes) : data;
  const offsets = e.at.pick === 'interesting' ? interestingOffsets(data, kind) : [];
  const at = offsets.length ? Math.min(offsets[e.at.index % offsets.length], data.length - 1) : e.at.index % data.length;
  const out = Buffer.from(data);
  switch (e.op) {
    case 'flip':
      out[at] ^= e.xor;
      return out;
    case 'set':
      out[at] = e.value;
      return out;
    case 'u32':
      if (at + 4 <= out.length) out.writeUInt32LE(e.value >>> 0, at);
      return out;
    case 'truncate':
      return out.subarray(0, at);
    case 'insert':
      return Buffer.concat([out.subarray(0, at), Uint8Array.from(e.bytes), out.subarray(at)]);
    case 'delete':
      return Buffer.concat([out.subarray(0, at), out.subarray(at + e.length)]);
    case 'duplicate':
      return Buffer.concat([out.subarray(0, at + e.length), out.subarray(at, at + e.length), out.subarray(at + e.length)]);
  }
}

/** Offsets where an edit is most likely to reach a reader's checks rather than a weight's value. */
export function interestingOffsets(b: Uint8Array, kind: FileKind): number[] {
  switch (kind) {
    case 'zip':
      return zipOffsets(b);
    case 'pickle':
      return range(0, Math.min(b.length, 4096));
    case 'safetensors': {
      const n = b.length >= 8 ? Number(Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64LE(0)) : 0;
      return range(0, Math.min(b.length, 8 + Math.min(n, 1 << 16)));
    }
    case 'onnx':
      return protobufOffsets(b, 0, b.length, 0, []);
    case 'npy':
      return range(0, Math.min(b.length, 160));
    case 'png':
      return pngOffsets(b);
    default:
      return range(0, Math.min(b.length, 4096));
  }
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** Every zip record's fields and the whole of each small member's data (the pickle is stored, not deflated). */
function zipOffsets(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] !== 0x50 || b[i + 1] !== 0x4b) continue;
    const sig = b[i + 2] * 256 + b[i + 3];
    const recordLength = sig === 0x0304 ? 30 : sig === 0x0102 ? 46 : sig === 0x0506 ? 22 : sig === 0x0606 ? 56 : sig === 0x0607 ? 20 : 0;
    if (!recordLength) continue;
    out.push(...range(i, Math.min(b.length, i + recordLength)));
    if (sig === 0x0304 && i + 30 <= b.length) {
      // a member's name and, for a small member such as data.pkl, all of its bytes
      const view = Buffer.from(b.buffer, b.byteOffset, b.length);
      const size = view.readUInt32LE(i + 18);
      const start = i + 30 + view.readUInt16LE(i + 26) + view.readUInt16LE(i + 28);
      out.push(...range(i + 30, Math.min(b.length, start + (size <= 8192 ? size : 16))));
    }
  }
  return out.length ? out : range(0, Math.min(b.length, 4096));
}

/** Tag and length offsets of a protobuf message, three levels deep (where the graph's structure is). */
function protobufOffsets(b: Uint8Array, start: number, end: number, depth: number, out: number[]): number[] {
  let pos = start;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= end) return undefined;
      const byte = b[pos++];
      v += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return v;
    }
    return undefined;
  };
  while (pos < end && out.length < 20000) {
    out.push(pos);
    const key = varint();
    if (key === undefined) break;
    const wire = key & 7;
    if (wire === 0) {
      out.push(pos);
      if (varint() === undefined) break;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      out.push(pos);
      const len = varint();
      if (len === undefined || pos + len > end) break;
      // raw tensor bytes are long and deep; a field under 4 KiB is likely structure
      if (depth < 3 && len < 4096) protobufOffsets(b, pos, pos + len, depth + 1, out);
      pos += len;
    } else break;
  }
  return out;
}

function pngOffsets(b: Uint8Array): number[] {
  const out = range(0, Math.min(b.length, 33));
  const view = Buffer.from(b.buffer, b.byteOffset, b.length);
  for (let i = 8; i + 8 <= b.length; ) {
    out.push(...range(i, i + 8));
    const len = view.readUInt32BE(i);
    i += 12 + len;
  }
  return out;
}

function editJsonText(data: Uint8Array, e: JsonEdit): Uint8Array {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return data; // already broken by an earlier byte edit
  }
  return Buffer.from(JSON.stringify(editJson(doc, e)));
}

/** A safetensors file whose header JSON is edited, with its length prefix made to fit. */
function editSafetensorsHeader(data: Uint8Array, e: JsonEdit): Uint8Array {
  if (data.length < 8) return data;
  const view = Buffer.from(data.buffer, data.byteOffset, data.length);
  const n = Number(view.readBigUInt64LE(0));
  if (8 + n > data.length) return data;
  let header: unknown;
  try {
    header = JSON.parse(view.subarray(8, 8 + n).toString('utf8'));
  } catch {
    return data;
  }
  const text = Buffer.from(JSON.stringify(editJson(header, e)));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([prefix, text, view.subarray(8 + n)]);
}

type Path = (string | number)[];

function paths(doc: unknown, limit = 5000): Path[] {
  const out: Path[] = [];
  const walk = (v: unknown, p: Path) => {
    if (out.length >= limit) return;
    if (Array.isArray(v)) v.forEach((x, i) => (out.push([...p, i]), walk(x, [...p, i])));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (out.push([...p, k]), walk(x, [...p, k]));
  };
  walk(doc, []);
  return out;
}

export function editJson(doc: unknown, e: JsonEdit): unknown {
  const all = paths(doc);
  const nasty = NASTY_JSON[e.value % NASTY_JSON.length];
  if (all.length === 0) return nasty;
  const path = all[e.path % all.length];
  const root = structuredClone(doc) as Record<string | number, unknown>;
  let parent = root;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const key = path[path.length - 1];
  const old = parent[key];
  switch (e.action) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case 'replace':
      parent[key] = structuredClone(nasty);
      break;
    case 'negate':
      parent[key] = typeof old === 'number' ? -old - 1 : typeof old === 'string' && /^\d+$/.test(old) ? `-${old}` : nasty;
      break;
    case 'scale':
      parent[key] = typeof old === 'number' ? old * 65537 + 0.5 : typeof old === 'string' && /^\d+$/.test(old) ? `${old}999999` : nasty;
      break;
    case 'stringify':
      parent[key] = typeof old === 'string' ? Number(old) : JSON.stringify(old);
      break;
    case 'wrap':
      parent[key] = [old];
      break;
  }
  return root;
}

function editLines(data: Uint8Array, e: LineEdit): Uint8Array {
  const lines = Buffer.from(data).toString('utf8').split('\n');
  const i = e.index % Math.max(1, lines.length);
  const fields = (lines[i] ?? '').split(/(\s+|,)/);
  switch (e.action) {
    case 'drop':
      lines.splice(i, 1);
      break;
    case 'duplicate':
      lines.splice(i, 0, lines[i] ?? '');
      break;
    case 'label': {
      const labels = ['-1', '10', '999999999999', '1.5', 'NaN', 'Sneaker', 'no such class', '', '0x3'];
      fields[fields.length - 1] = labels[e.value % labels.length];
      lines[i] = fields.join('');
      break;
    }
    case 'file': {
      const files = ['../../../etc/passwd', '/etc/passwd', 'missing.png', 'labels.txt', '.', '', 'a b.png', 'test_00000.png'];
      fields[0] = files[e.value % files.length];
      lines[i] = fields.join('');
      break;
    }
    case 'crlf':
      return Buffer.from(lines.join('\r\n'));
    case 'bom':
      return Buffer.from('\ufeff' + lines.join('\n'));
    case 'long':
      lines[i] = (lines[i] ?? '') + ' '.repeat(1 + (e.value % 100000)) + 'x';
      break;
    case 'empty':
      return new Uint8Array(0);
    case 'swap':
      lines[i] = fields.reverse().join('');
      break;
    case 'blank':
      lines.splice(i, 0, '', '   ', '\t');
      break;
  }
  return Buffer.from(lines.join('\n'));
}

/** Stored members' CRCs rewritten in their local and central headers; a zip too broken to walk is left as it is. */
function fixZipCrcs(data: Uint8Array): Uint8Array {
  const out = Buffer.from(data);
  const eocd = out.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0 || eocd + 22 > out.length) return out;
  let entry = out.readUInt32LE(eocd + 16);
  for (let n = out.readUInt16LE(eocd + 10); n > 0; n--) {
    if (entry + 46 > out.length || out.readUInt32LE(entry) !== 0x02014b50) break;
    const local = out.readUInt32LE(entry + 42);
    const size = out.readUInt32LE(entry + 20);
    if (out.readUInt16LE(entry + 10) === 0 && local + 30 <= out.length && out.readUInt32LE(local) === 0x04034b50) {
      const start = local + 30 + out.readUInt16LE(local + 26) + out.readUInt16LE(local + 28);
      if (start + size <= out.length) {
        const crc = crc32(out.subarray(start, start + size));
        out.writeUInt32LE(crc, local + 14);
        out.writeUInt32LE(crc, entry + 16);
      }
    }
    entry += 46 + out.readUInt16LE(entry + 28) + out.readUInt16LE(entry + 30) + out.readUInt16LE(entry + 32);
  }
  return out;
}
