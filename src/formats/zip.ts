// A minimal zip reader over a Buffer that is already in memory. torch.save writes an uncompressed
// (STORED) zip whose members are 64-byte aligned, so a member's bytes can be handed out as a view of
// the file without copying. Everything read from the file is an untrusted number: each offset and
// length is checked against the buffer before use, and any inconsistency is an InputError.
//
// A hostile archive is bounded three ways: members may not share bytes (so one compressed stream
// cannot be listed a thousand times), deflated members together may not declare more than
// MAX_DEFLATE_RATIO times their compressed bytes, and inflating never yields more than a member
// declares. Every member read can have its CRC-32 checked.

import * as zlib from 'node:zlib';
import { InputError, UnsupportedError } from '../errors.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 = STORED, 8 = DEFLATE. */
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly crc32: number;
  /** Offset of the local file header. */
  readonly localHeaderOffset: number;
  /** Offset of the member's (compressed) data, just after its local header. */
  readonly dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

// torch.save stores members uncompressed, so deflate only appears in re-zipped archives, where
// tensors (mostly float mantissas) compress to 80–95 %. Deflate itself tops out near 1032:1 on
// runs of zeros; 100:1 across the whole archive is far beyond real weights and still caps what a
// small hostile file can make us allocate. Under DEFLATE_FREE_BYTES the ratio does not matter.
const MAX_DEFLATE_RATIO = 100;
const DEFLATE_FREE_BYTES = 16 << 20;

/** True when the buffer starts like a zip file (a local header, or the EOCD of an empty archive). */
export function looksLikeZip(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b &&
    ((buf[2] === 3 && buf[3] === 4) || (buf[2] === 5 && buf[3] === 6));
}

export class ZipArchive {
  readonly entries: readonly ZipEntry[];
  private readonly byName = new Map<string, ZipEntry>();
  private readonly buf: Buffer;

  /** `where` names the file in error messages. */
  constructor(data: Uint8Array, readonly where: string) {
    this.buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.entries = this.readCentralDirectory();
    for (const e of this.entries) {
      // Two members with one name would make "the" data.pkl ambiguous; torch never writes that.
      if (this.byName.has(e.name)) this.corrupt(`duplicate entry '${e.name}'`);
      this.byName.set(e.name, e);
    }
    this.checkNoOverlap();
    this.checkDeflateRatio();
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The entry's uncompressed bytes: a view of the archive for STORED members, a new buffer for
   * DEFLATE ones. `checkCrc` verifies the CRC-32 (always done for DEFLATE, where it is cheap
   * relative to inflating; the checkpoint reader asks for it on every member it reads).
   */
  read(entry: ZipEntry | string, checkCrc = false): Buffer {
    const e = typeof entry === 'string' ? this.byName.get(entry) : entry;
    if (!e) throw new InputError(`zip has no entry '${String(entry)}'`, this.where);
    const raw = this.buf.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
    let out: Buffer;
    if (e.method === 0) {
      if (e.compressedSize !== e.uncompressedSize) this.corrupt(`stored entry '${e.name}' has mismatched sizes`);
      out = raw;
    } else if (e.method === 8) {
      out = this.inflate(e, raw);
      checkCrc = true;
    } else {
      throw new UnsupportedError(`zip entry '${e.name}' uses compression method ${e.method} (only stored and deflate are supported)`, this.where);
    }
    if (checkCrc && crc32(out) !== e.crc32) this.corrupt(`CRC mismatch in '${e.name}'`);
    return out;
  }

  private inflate(e: ZipEntry, raw: Buffer): Buffer {
    let out: Buffer;
    try {
      // maxOutputLength makes zlib stop at the declared size instead of inflating whatever the
      // stream holds; one byte of slack lets a stream that is too long show itself.
      out = zlib.inflateRawSync(raw, { maxOutputLength: e.uncompressedSize + 1 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        this.corrupt(`entry '${e.name}' inflates to more than its declared ${e.uncompressedSize} bytes`);
      }
      this.corrupt(`cannot inflate '${e.name}': ${(err as Error).message}`);
    }
    if (out.length !== e.uncompressedSize) this.corrupt(`entry '${e.name}' inflates to ${out.length} bytes, expected ${e.uncompressedSize}`);
    return out;
  }

  /** Each member's local header and data must own their bytes; shared bytes are a zip-bomb trick. */
  private checkNoOverlap(): void {
    const byOffset = [...this.entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
    for (let i = 1; i < byOffset.length; i++) {
      const prev = byOffset[i - 1];
      const next = byOffset[i];
      if (prev.dataOffset + prev.compressedSize > next.localHeaderOffset) {
        this.corrupt(`entries '${prev.name}' and '${next.name}' overlap at offset ${next.localHeaderOffset}`);
      }
    }
  }

  private checkDeflateRatio(): void {
    let declared = 0;
    let compressed = 0;
    for (const e of this.entries) {
      if (e.method !== 8) continue;
      declared += e.uncompressedSize;
      compressed += e.compressedSize;
    }
    if (declared > DEFLATE_FREE_BYTES && declared > MAX_DEFLATE_RATIO * compressed) {
      throw new InputError(`deflated entries declare ${declared} bytes from ${compressed} compressed ` +
        `(over ${MAX_DEFLATE_RATIO}:1); refusing a likely zip bomb`, this.where);
    }
  }

  private corrupt(why: string): never {
    throw new InputError(`truncated or corrupt zip (${why})`, this.where);
  }

  /** Checks that [offset, offset + length) lies inside the buffer. */
  private need(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
        offset + length > this.buf.length) {
      this.corrupt(`${what} at offset ${offset} (+${length}) lies outside the ${this.buf.length}-byte file`);
    }
  }

  private u64(offset: number, what: string): number {
    const v = this.buf.readBigUInt64LE(offset);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.corrupt(`${what} is too large`);
    return Number(v);
  }

  private findEocd(): number {
    const buf = this.buf;
    if (buf.length < EOCD_SIZE) this.corrupt(`file of ${buf.length} bytes is too short for a zip`);
    // The EOCD sits at the end, followed only by a comment of at most 64 KiB; scan back for it.
    const stop = Math.max(0, buf.length - EOCD_SIZE - MAX_COMMENT);
    for (let p = buf.length - EOCD_SIZE; p >= stop; p--) {
      if (buf[p] === 0x50 && buf.readUInt32LE(p) === SIG_EOCD && p + EOCD_SIZE + buf.readUInt16LE(p + 20) === buf.length) {
        return p;
      }
    }
    this.corrupt('no end-of-central-directory record');
  }

  private readCentralDirectory(): ZipEntry[] {
    const buf = this.buf;
    const eocd = this.findEocd();
    let count = buf.readUInt16LE(eocd + 10);
    let cdSize = buf.readUInt32LE(eocd + 12);
    let cdOffset = buf.readUInt32LE(eocd + 16);
    if (buf.readUInt16LE(eocd + 4) !== 0 || buf.readUInt16LE(eocd + 6) !== 0) {
      throw new UnsupportedError('multi-disk (split) zip archives are not supported', this.where);
    }
    // Zip64: a locator just before the EOCD points at a zip64 EOCD with 64-bit counts and offsets.
    const loc = eocd - 20;
    if (loc >= 0 && buf.readUInt32LE(loc) === SIG_ZIP64_LOCATOR) {
      const z = this.u64(loc + 8, 'zip64 end-of-central-directory offset');
      this.need(z, 56, 'zip64 end-of-central-directory record');
      if (buf.readUInt32LE(z) !== SIG_ZIP64_EOCD) this.corrupt('zip64 locator does not point at a zip64 end-of-central-directory record');
      count = this.u64(z + 32, 'zip64 entry count');
      cdSize = this.u64(z + 40, 'zip64 central directory size');
      cdOffset = this.u64(z + 48, 'zip64 central directory offset');
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      this.corrupt('zip64 sizes without a zip64 locator');
    }
    this.need(cdOffset, cdSize, 'central directory');
    if (cdOffset + cdSize > eocd) this.corrupt('central directory overlaps the end record');
    // Each central record is at least 46 bytes, which bounds the loop by the file, not by `count`.
    if (count * 46 > cdSize) this.corrupt(`central directory of ${cdSize} bytes cannot hold ${count} entries`);

    const entries: ZipEntry[] = [];
    let p = cdOffset;
    const end = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      if (p + 46 > end || buf.readUInt32LE(p) !== SIG_CENTRAL) this.corrupt(`bad central directory record ${i} at offset ${p}`);
      const flags = buf.readUInt16LE(p + 8);
      const method = buf.readUInt16LE(p + 10);
      const crc = buf.readUInt32LE(p + 16);
      let compressedSize = buf.readUInt32LE(p + 20);
      let uncompressedSize = buf.readUInt32LE(p + 24);
      const nameLen = buf.readUInt16LE(p + 28);
      const extraLen = buf.readUInt16LE(p + 30);
      const commentLen = buf.readUInt16LE(p + 32);
      let localHeaderOffset = buf.readUInt32LE(p + 42);
      const recordEnd = p + 46 + nameLen + extraLen + commentLen;
      if (recordEnd > end) this.corrupt(`central directory record ${i} runs past the directory`);
      const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
      if (flags & 1) throw new UnsupportedError(`zip entry '${name}' is encrypted`, this.where);

      // The zip64 extra field holds, in this order, only the fields whose 32-bit value is 0xffffffff.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = buf.readUInt16LE(x);
        const size = buf.readUInt16LE(x + 2);
        if (x + 4 + size > xEnd) this.corrupt(`extra field of '${name}' runs past its record`);
        if (id === 0x0001) {
          let q = x + 4;
          const take = (what: string): number => {
            if (q + 8 > x + 4 + size) this.corrupt(`zip64 extra field of '${name}' is too short`);
            const v = this.u64(q, what);
            q += 8;
            return v;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = take('zip64 uncompressed size');
          if (compressedSize === 0xffffffff) compressedSize = take('zip64 compressed size');
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('zip64 local header offset');
        }
        x += 4 + size;
      }

      // The data starts after the *local* header, whose extra field may differ from the central one
      // (torch pads it so the data is 64-byte aligned).
      this.need(localHeaderOffset, 30, `local header of '${name}'`);
      if (buf.readUInt32LE(localHeaderOffset) !== SIG_LOCAL) this.corrupt(`no local header for '${name}' at offset ${localHeaderOffset}`);
      const dataOffset = localHeaderOffset + 30 + buf.readUInt16LE(localHeaderOffset + 26) + buf.readUInt16LE(localHeaderOffset + 28);
      this.need(dataOffset, compressedSize, `data of '${name}'`);
      if (dataOffset + compressedSize > cdOffset) this.corrupt(`data of '${name}' overlaps the central directory`);

      entries.push({ name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset, dataOffset });
      p = recordEnd;
    }
    return entries;
  }
}

/** Opens a zip held in memory; `where` names the file in errors. */
export function openZip(data: Uint8Array, where: string): ZipArchive {
  return new ZipArchive(data, where);
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE) with the classic byte table, for Node.js releases without zlib.crc32. */
export function crc32Table(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// zlib.crc32 arrived in Node.js 20.15; it is about ten times faster than the table (≈3.5 GB/s vs 350 MB/s).
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 (IEEE), as zip stores it. */
export function crc32(data: Uint8Array): number {
  return typeof nativeCrc32 === 'function' ? nativeCrc32(data) >>> 0 : crc32Table(data);
}
