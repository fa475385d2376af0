import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, UnsupportedError } from '../src/errors.js';
import { crc32, looksLikeZip, openZip } from '../src/formats/zip.js';
import { buildZip } from './helpers/format-builders.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const sample = () => buildZip([
  { name: 'archive/data.pkl', data: enc('pickle bytes') },
  { name: 'archive/data/0', data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
  { name: 'archive/version', data: enc('3\n') },
]);

/** Asserts that fn throws an InputError whose message starts with `prefix`. */
function throwsInput(fn: () => unknown, prefix: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
    if (typeof prefix === 'string') assert.ok(e.message.startsWith(prefix), e.message);
    else assert.match(e.message, prefix);
    return true;
  });
}

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(enc('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('lists stored entries with aligned, zero-copy data', () => {
  const buf = sample();
  assert.equal(looksLikeZip(buf), true);
  const zip = openZip(buf, 'ck.pth');
  assert.deepEqual(zip.entries.map((e) => [e.name, e.method, e.compressedSize, e.uncompressedSize]), [
    ['archive/data.pkl', 0, 12, 12],
    ['archive/data/0', 0, 8, 8],
    ['archive/version', 0, 2, 2],
  ]);
  for (const e of zip.entries) assert.equal(e.dataOffset % 64, 0, `${e.name} at ${e.dataOffset}`);
  const data = zip.read('archive/data/0');
  assert.deepEqual([...data], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(data.buffer, buf.buffer, 'stored data is a view of the input');
  assert.equal(zip.read('archive/data.pkl', true).toString(), 'pickle bytes');
  assert.equal(zip.get('archive/nope'), undefined);
  throwsInput(() => zip.read('archive/nope'), "ck.pth: zip has no entry 'archive/nope'");
});

test('inflates deflated entries and checks their CRC', () => {
  const text = 'hello '.repeat(200);
  const buf = buildZip([{ name: 'a.txt', data: enc(text), method: 8 }]);
  const zip = openZip(buf, 'd.zip');
  assert.equal(zip.entries[0].method, 8);
  assert.ok(zip.entries[0].compressedSize < 100);
  assert.equal(zip.read('a.txt').toString(), text);

  // A flipped bit in the compressed stream: either inflate fails or the CRC does.
  const bad = buf.slice();
  bad[zip.entries[0].dataOffset + 3] ^= 0x10;
  throwsInput(() => openZip(bad, 'd.zip').read('a.txt'), 'd.zip: truncated or corrupt zip (');
});

test('reads zip64 records', () => {
  const buf = buildZip([{ name: 'x/data.pkl', data: enc('abc') }, { name: 'x/data/0', data: enc('defg'), method: 8 }], { zip64: true });
  const zip = openZip(buf, 'z64.pth');
  assert.deepEqual(zip.entries.map((e) => [e.name, e.compressedSize > 0, e.uncompressedSize]), [['x/data.pkl', true, 3], ['x/data/0', true, 4]]);
  assert.equal(zip.read('x/data.pkl').toString(), 'abc');
  assert.equal(zip.read('x/data/0').toString(), 'defg');
});

test('finds the end record behind a comment, and reads an empty archive', () => {
  const zip = openZip(buildZip([{ name: 'a', data: enc('A') }], { comment: 'PK\x05\x06 not a record' }), 'c.zip');
  assert.equal(zip.read('a').toString(), 'A');
  const empty = buildZip([]);
  assert.equal(empty.length, 22);
  assert.equal(looksLikeZip(empty), true);
  assert.deepEqual(openZip(empty, 'e.zip').entries, []);
});

test('truncation at every length is an InputError naming the file', () => {
  const buf = sample();
  for (let n = 0; n < buf.length; n++) {
    throwsInput(() => {
      const zip = openZip(buf.subarray(0, n), 'cut.pth');
      for (const e of zip.entries) zip.read(e, true);
    }, 'cut.pth: truncated or corrupt zip (');
  }
});

test('a corrupted central directory is an InputError', () => {
  const buf = sample();
  const eocd = buf.length - 22;
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const cd = view.readUInt32LE(eocd + 16);
  const corrupt = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(buf);
    edit(b);
    return b;
  };
  const cases: [string, Buffer, RegExp][] = [
    ['central signature', corrupt((b) => b.writeUInt32LE(0x12345678, cd)), /bad central directory record 0/],
    ['entry count too high', corrupt((b) => { b.writeUInt16LE(9, eocd + 8); b.writeUInt16LE(9, eocd + 10); }), /cannot hold 9 entries|bad central directory record/],
    ['directory offset past the end', corrupt((b) => b.writeUInt32LE(0x7fffffff, eocd + 16)), /central directory at offset/],
    ['directory size past the end', corrupt((b) => b.writeUInt32LE(0x7fffff, eocd + 12)), /central directory at offset/],
    ['local header offset past the end', corrupt((b) => b.writeUInt32LE(0x7ffffff0, cd + 42)), /local header of 'archive\/data.pkl'/],
    ['local header offset at the wrong place', corrupt((b) => b.writeUInt32LE(1, cd + 42)), /no local header for 'archive\/data.pkl'/],
    ['compressed size past the end', corrupt((b) => { b.writeUInt32LE(0x0fffffff, cd + 20); b.writeUInt32LE(0x0fffffff, cd + 24); }), /data of 'archive\/data.pkl'/],
    ['name runs past the directory', corrupt((b) => b.writeUInt16LE(0xfff0, cd + 28)), /runs past the directory/],
    ['zip64 sizes without locator', corrupt((b) => b.writeUInt32LE(0xffffffff, eocd + 16)), /zip64 sizes without a zip64 locator/],
    ['end record signature', corrupt((b) => b.writeUInt32LE(0, eocd)), /no end-of-central-directory record/],
  ];
  for (const [what, b, re] of cases) {
    assert.throws(() => openZip(b, 'bad.pth'), (e: unknown) => {
      assert.ok(e instanceof InputError, `${what}: ${String(e)}`);
      assert.ok(e.message.startsWith('bad.pth: truncated or corrupt zip ('), `${what}: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
});

test('random corruption never escapes as anything but a user error', () => {
  const buf = sample();
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const cdStart = Buffer.from(buf).readUInt32LE(buf.length - 22 + 16);
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(buf);
    // Mostly hit the directory and end record, where the offsets live.
    for (let k = 0; k < 1 + rand(3); k++) b[cdStart + rand(b.length - cdStart)] = rand(256);
    try {
      const zip = openZip(b, 'fuzz.zip');
      for (const e of zip.entries) zip.read(e, true);
    } catch (e) {
      assert.ok(e instanceof InputError || e instanceof UnsupportedError, `iteration ${i}: ${String((e as Error).stack)}`);
      failures++;
    }
  }
  assert.ok(failures > 100, `only ${failures} corruptions were detected`);
});

test('duplicate names, encryption and unknown methods are refused', () => {
  throwsInput(() => openZip(buildZip([{ name: 'a', data: enc('1') }, { name: 'a', data: enc('2') }]), 'dup.zip'),
    "dup.zip: truncated or corrupt zip (duplicate entry 'a')");

  const encrypted = Buffer.from(sample());
  const cd = encrypted.readUInt32LE(encrypted.length - 22 + 16);
  encrypted.writeUInt16LE(1, cd + 8);
  assert.throws(() => openZip(encrypted, 'enc.zip'), (e: unknown) =>
    e instanceof UnsupportedError && e.message === "enc.zip: zip entry 'archive/data.pkl' is encrypted");

  const bzip = Buffer.from(sample());
  bzip.writeUInt16LE(12, cd + 10);
  const zip = openZip(bzip, 'bz.zip');
  assert.throws(() => zip.read('archive/data.pkl'), (e: unknown) =>
    e instanceof UnsupportedError && e.message === "bz.zip: zip entry 'archive/data.pkl' uses compression method 12 (only stored and deflate are supported)");
});

test('a stored entry whose two sizes disagree is corrupt', () => {
  const b = Buffer.from(sample());
  const cd = b.readUInt32LE(b.length - 22 + 16);
  b.writeUInt32LE(5, cd + 24);
  throwsInput(() => openZip(b, 's.zip').read('archive/data.pkl'), "s.zip: truncated or corrupt zip (stored entry 'archive/data.pkl' has mismatched sizes)");
});

test('a STORED CRC mismatch is found when asked for', () => {
  const b = Buffer.from(sample());
  const zip = openZip(b, 'crc.zip');
  b[zip.entries[0].dataOffset] ^= 1;
  assert.equal(zip.read('archive/data.pkl').length, 12, 'unchecked read still works');
  throwsInput(() => zip.read('archive/data.pkl', true), "crc.zip: truncated or corrupt zip (CRC mismatch in 'archive/data.pkl')");
});
