// Hostile and broken input: each case is built here at test time (no large fixtures) and must be
// refused quickly, as a user error naming the file, without allocating what the file asks for.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { InputError } from '../src/errors.js';
import { readPytorchCheckpointFromBuffer } from '../src/formats/pytorch.js';
import { crc32, crc32Table, openZip } from '../src/formats/zip.js';
import { throwsUser } from './helpers/assert-errors.js';
import { buildCheckpoint, buildZip, bytesOf, stateDictPickle } from './helpers/format-builders.js';

/** Runs fn, asserting it takes under `ms` milliseconds. */
function quickly<T>(ms: number, fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const took = performance.now() - start;
    assert.ok(took < ms, `took ${took.toFixed(0)} ms (limit ${ms})`);
  }
}

const f32 = (...v: number[]) => bytesOf(new Float32Array(v));
const oneTensor = (key = '0', numel = 1) =>
  stateDictPickle([['w', { storageType: 'FloatStorage', key, storageNumel: numel, offset: 0, size: [numel], stride: [1] }]]);

/** Offsets of a zip's central directory and end record. */
function directory(zip: Uint8Array): { buf: Buffer; cd: number; eocd: number } {
  const buf = Buffer.from(zip);
  const eocd = buf.length - 22;
  return { buf, cd: buf.readUInt32LE(eocd + 16), eocd };
}

describe('hostile zip archives', () => {
  it('refuses an overlapping-member bomb: 1000 entries sharing one 64 MiB deflate stream in a small file', () => {
    const { buf, cd, eocd } = directory(buildZip([{ name: 'archive/data/0', data: new Uint8Array(64 << 20), method: 8 }], { align: 1 }));
    const record = buf.subarray(cd, eocd);
    const copies = Array.from({ length: 1000 }, (_, i) => {
      const r = Buffer.from(record);
      r.write(`m${String(i).padStart(13, '0')}`, 46, 'latin1'); // distinct names, same length
      return r;
    });
    const end = Buffer.from(buf.subarray(eocd));
    end.writeUInt16LE(copies.length, 8);
    end.writeUInt16LE(copies.length, 10);
    end.writeUInt32LE(copies.length * record.length, 12);
    const bomb = Buffer.concat([buf.subarray(0, cd), ...copies, end]);
    assert.ok(bomb.length < 1 << 20, `bomb is ${bomb.length} bytes`);
    quickly(500, () => throwsUser(() => openZip(bomb, 'bomb.pth'), InputError,
      "bomb.pth: truncated or corrupt zip (entries 'm0000000000000' and 'm0000000000001' overlap at offset 0)"));
  });

  it('refuses deflated members that declare more than 100× their compressed size', () => {
    const zeros = buildZip([{ name: 'archive/data/0', data: new Uint8Array(64 << 20), method: 8 }]);
    quickly(500, () => throwsUser(() => openZip(zeros, 'zeros.pth'), InputError,
      /^zeros\.pth: deflated entries declare 67108864 bytes from \d+ compressed \(over 100:1\); refusing a likely zip bomb$/));
    // Real weights deflate poorly, and small members may compress as well as they like.
    const weights = randomBytes(20 << 20);
    weights.fill(0, 0, 4 << 20);
    const zip = openZip(buildZip([{ name: 'w', data: weights, method: 8 }, { name: 'z', data: new Uint8Array(1 << 20), method: 8 }]), 'ok.zip');
    assert.equal(zip.read('w').length, 20 << 20);
    assert.equal(zip.read('z').length, 1 << 20);
  });

  it('never inflates more than a member declares', () => {
    const { buf, cd } = directory(buildZip([{ name: 'a', data: new Uint8Array(1 << 20), method: 8 }]));
    const short = Buffer.from(buf);
    short.writeUInt32LE(1000, cd + 24);
    throwsUser(() => openZip(short, 'short.zip').read('a'), InputError,
      "short.zip: truncated or corrupt zip (entry 'a' inflates to more than its declared 1000 bytes)");
    const long = Buffer.from(buf);
    long.writeUInt32LE(2 << 20, cd + 24);
    throwsUser(() => openZip(long, 'long.zip').read('a'), InputError,
      "long.zip: truncated or corrupt zip (entry 'a' inflates to 1048576 bytes, expected 2097152)");
  });

  it('checks the CRC of every member a checkpoint reads, stored ones included', () => {
    const file = buildCheckpoint(oneTensor('0', 4), { 0: f32(1, 2, 3, 4) });
    assert.deepEqual([...readPytorchCheckpointFromBuffer(file, 'ok.pth').get('w')!.data as Float32Array], [1, 2, 3, 4]);
    for (const member of ['archive/data/0', 'archive/byteorder']) {
      const bad = Buffer.from(file);
      bad[openZip(bad, 'x').get(member)!.dataOffset] ^= 0x01;
      throwsUser(() => readPytorchCheckpointFromBuffer(bad, 'bad.pth'), InputError, `bad.pth: truncated or corrupt zip (CRC mismatch in '${member}')`);
    }
  });

  it('the table CRC-32 (for Node.js without zlib.crc32) agrees with the one in use', () => {
    const data = randomBytes(1 << 20);
    assert.equal(crc32Table(data), crc32(data));
    assert.equal(crc32Table(Buffer.from('123456789')), 0xcbf43926);
  });
});
