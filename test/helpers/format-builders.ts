// Builders for the format tests: pickle opcodes by hand, a tiny zip writer (stored or deflated,
// optionally zip64), and torch.save-shaped checkpoints made from both. They write what the real
// producers write, byte for byte where it matters (torch's protocol-2 opcodes, 64-byte alignment).

import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/formats/zip.js';

// --------------------------------------------------------------------------------------------
// Pickle

export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88,
  NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, BINBYTES: 0x42, SHORT_BINBYTES: 0x43, SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90, FROZENSET: 0x91, NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96, NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
} as const;

type Chunk = number | readonly number[] | Uint8Array | string;

/** Concatenates opcodes (numbers), byte arrays and latin-1 text into pickle bytes. */
export function pk(...chunks: Chunk[]): Uint8Array {
  const parts: Buffer[] = chunks.map((c) =>
    typeof c === 'number' ? Buffer.from([c]) : typeof c === 'string' ? Buffer.from(c, 'latin1') : Buffer.from(c as Uint8Array));
  return new Uint8Array(Buffer.concat(parts));
}

const le32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const le64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

export const P = {
  proto: (v: number) => pk(OP.PROTO, v),
  frame: (n: number) => pk(OP.FRAME, le64(n)),
  binint: (n: number) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return pk(OP.BININT, b); },
  binint1: (n: number) => pk(OP.BININT1, n),
  binint2: (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return pk(OP.BININT2, b); },
  /** An integer as pickle writes it: BININT when it fits in 32 bits, else LONG1. */
  int: (n: number | bigint): Uint8Array => (typeof n === 'number' && n >= -(2 ** 31) && n < 2 ** 31 ? P.binint(n) : P.long1(BigInt(n))),
  /** LONG1 of a two's-complement little-endian integer, minimal length as pickle writes it. */
  long1: (v: bigint) => { const b = twos(v); return pk(OP.LONG1, b.length, b); },
  long4: (v: bigint) => { const b = twos(v); return pk(OP.LONG4, le32(b.length), b); },
  binfloat: (x: number) => { const b = Buffer.alloc(8); b.writeDoubleBE(x); return pk(OP.BINFLOAT, b); },
  binunicode: (s: string) => { const b = Buffer.from(s, 'utf8'); return pk(OP.BINUNICODE, le32(b.length), b); },
  shortBinunicode: (s: string) => { const b = Buffer.from(s, 'utf8'); return pk(OP.SHORT_BINUNICODE, b.length, b); },
  binunicode8: (s: string) => { const b = Buffer.from(s, 'utf8'); return pk(OP.BINUNICODE8, le64(b.length), b); },
  binbytes: (b: readonly number[]) => pk(OP.BINBYTES, le32(b.length), b),
  shortBinbytes: (b: readonly number[]) => pk(OP.SHORT_BINBYTES, b.length, b),
  binbytes8: (b: readonly number[]) => pk(OP.BINBYTES8, le64(b.length), b),
  bytearray8: (b: readonly number[]) => pk(OP.BYTEARRAY8, le64(b.length), b),
  global: (module: string, name: string) => pk(OP.GLOBAL, `${module}\n${name}\n`),
  stackGlobal: (module: string, name: string) => pk(P.shortBinunicode(module), P.shortBinunicode(name), OP.STACK_GLOBAL),
  binput: (i: number) => pk(OP.BINPUT, i),
  longBinput: (i: number) => pk(OP.LONG_BINPUT, le32(i)),
  binget: (i: number) => pk(OP.BINGET, i),
  longBinget: (i: number) => pk(OP.LONG_BINGET, le32(i)),
};

function twos(v: bigint): Buffer {
  if (v === 0n) return Buffer.alloc(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const sign = out[out.length - 1] & 0x80;
    if ((x === 0n && !sign) || (x === -1n && sign)) break;
  }
  return Buffer.from(out);
}

export interface FakeTensor {
  /** torch storage class name, e.g. 'FloatStorage'. */
  storageType: string;
  key: string;
  storageNumel: number;
  offset: number;
  size: number[];
  stride: number[];
}

/** A torch._utils._rebuild_tensor_v2 call as torch.save (protocol 2) writes it. */
export function tensorPickle(t: FakeTensor): Uint8Array {
  return pk(
    P.global('torch._utils', '_rebuild_tensor_v2'),
    OP.MARK,
    OP.MARK, P.binunicode('storage'), P.global('torch', t.storageType), P.binunicode(t.key), P.binunicode('cpu'),
    P.int(t.storageNumel), OP.TUPLE, OP.BINPERSID,
    P.int(t.offset),
    OP.MARK, ...t.size.map((d) => P.int(d)), OP.TUPLE,
    OP.MARK, ...t.stride.map((d) => P.int(d)), OP.TUPLE,
    OP.NEWFALSE,
    P.global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE,
    OP.TUPLE, OP.REDUCE,
  );
}

/** An OrderedDict state dict {name: tensor} pickled the way torch.save writes it. */
export function stateDictPickle(entries: [string, FakeTensor | Uint8Array][]): Uint8Array {
  return pk(
    P.proto(2), P.global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE,
    OP.MARK, ...entries.flatMap(([k, v]) => [P.binunicode(k), v instanceof Uint8Array ? v : tensorPickle(v)]), OP.SETITEMS,
    OP.STOP,
  );
}

// --------------------------------------------------------------------------------------------
// Zip

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflate. */
  method?: 0 | 8;
}

export interface ZipOptions {
  /** Pad local headers so member data starts at a multiple of this (torch uses 64). */
  align?: number;
  /** Write zip64 records (EOCD fields 0xffff…, zip64 EOCD + locator, zip64 extra fields). */
  zip64?: boolean;
  comment?: string;
}

/** Writes a zip the way torch's writer does: local headers (padded for alignment), central directory, EOCD. */
export function buildZip(files: ZipInput[], opts: ZipOptions = {}): Uint8Array {
  const align = opts.align ?? 64;
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const method = f.method ?? 0;
    const body = method === 8 ? deflateRawSync(f.data) : Buffer.from(f.data);
    const crc = crc32(f.data);
    // Padding extra field (id 0x4246 'FB', as torch writes) to align the data.
    let extra = Buffer.alloc(0);
    const base = offset + 30 + name.length;
    if (align > 1 && base % align !== 0) {
      let pad = align - ((base + 4) % align);
      if (pad === align) pad = 0;
      extra = Buffer.alloc(4 + pad);
      extra.writeUInt16LE(0x4246, 0);
      extra.writeUInt16LE(pad, 2);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    parts.push(local, name, extra, body);

    const z64 = opts.zip64 ? Buffer.alloc(28) : Buffer.alloc(0);
    if (opts.zip64) {
      z64.writeUInt16LE(1, 0);
      z64.writeUInt16LE(24, 2);
      z64.writeBigUInt64LE(BigInt(f.data.length), 4);
      z64.writeBigUInt64LE(BigInt(body.length), 12);
      z64.writeBigUInt64LE(BigInt(offset), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(opts.zip64 ? 45 : 20, 4);
    c.writeUInt16LE(opts.zip64 ? 45 : 20, 6);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(opts.zip64 ? 0xffffffff : body.length, 20);
    c.writeUInt32LE(opts.zip64 ? 0xffffffff : f.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(z64.length, 30);
    c.writeUInt32LE(opts.zip64 ? 0xffffffff : offset, 42);
    central.push(c, name, z64);
    offset += local.length + name.length + extra.length + body.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = offset;
  const tail: Buffer[] = [];
  if (opts.zip64) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(files.length), 24);
    z.writeBigUInt64LE(BigInt(files.length), 32);
    z.writeBigUInt64LE(BigInt(cd.length), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(z, loc);
  }
  const comment = Buffer.from(opts.comment ?? '', 'utf8');
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : files.length, 8);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : files.length, 10);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cdOffset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return new Uint8Array(Buffer.concat([...parts, cd, ...tail, eocd, comment]));
}

/** A torch.save-shaped archive: `<dir>/data.pkl`, `<dir>/data/<key>`, byteorder and version records. */
export function buildCheckpoint(pickle: Uint8Array, storages: Record<string, Uint8Array>, opts: { dir?: string; byteorder?: string; align?: number } = {}): Uint8Array {
  const dir = opts.dir ?? 'archive';
  const files: ZipInput[] = [{ name: `${dir}/data.pkl`, data: pickle }];
  if (opts.byteorder !== '') files.push({ name: `${dir}/byteorder`, data: Buffer.from(opts.byteorder ?? 'little') });
  for (const [key, data] of Object.entries(storages)) files.push({ name: `${dir}/data/${key}`, data });
  files.push({ name: `${dir}/version`, data: Buffer.from('3\n') });
  return buildZip(files, { align: opts.align });
}

/** Little-endian bytes of a typed array. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}
