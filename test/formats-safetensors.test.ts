import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InputError, UnsupportedError } from '../src/errors.js';
import { readSafetensors, readSafetensorsFromBuffer, writeSafetensors } from '../src/formats/safetensors.js';
import { sniffFile } from '../src/formats/sniff.js';
import type { StateDict } from '../src/formats/state-dict.js';
import { tensor, type Tensor } from '../src/graph/tensor.js';
import { throwsUser } from './helpers/assert-errors.js';

const values = (t: Tensor): (number | bigint)[] => Array.from(t.data as ArrayLike<number | bigint>);
const read = (bytes: Uint8Array) => readSafetensorsFromBuffer(bytes, 'w.safetensors');

/** A safetensors file from a literal header object and raw data, without any padding. */
function raw(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}


test('writes the exact reference layout: padded header, data in order', () => {
  const bytes = writeSafetensors(new Map([['w', tensor('float32', [1], new Float32Array([1]))]]), { format: 'pt' });
  const buf = Buffer.from(bytes);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
  assert.equal(buf.toString('utf8', 8, 8 + n).trimEnd(), '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
  assert.deepEqual([...buf.subarray(8 + n)], [0, 0, 0x80, 0x3f]);
  assert.equal(buf.length, 8 + n + 4);
});

test('round-trips every dtype exactly, in file order, as views of the file where aligned', () => {
  const tensors: StateDict = new Map<string, Tensor>([
    ['b', tensor('float32', [2, 2], new Float32Array([1.5, -2, 3.25, 1e-30]))],
    ['10', tensor('float16', [3], new Uint16Array([0x3c00, 0x7c00, 0x8001]))],
    ['2', tensor('bfloat16', [1], new Uint16Array([0x3f80]))],
    ['__proto__', tensor('int64', [2], new BigInt64Array([-1n, 2n ** 62n]))],
    ['i32', tensor('int32', [2], new Int32Array([-(2 ** 31), 7]))],
    ['i8', tensor('int8', [2], new Int8Array([-128, 127]))],
    ['u8', tensor('uint8', [1, 2], new Uint8Array([0, 255]))],
    ['flag', tensor('bool', [2], new Uint8Array([1, 0]))],
    ['scalar', tensor('float32', [], new Float32Array([42]))],
    ['empty', tensor('float32', [0, 4], new Float32Array(0))],
  ]);
  const file = writeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
  const { tensors: got, metadata } = read(file);
  assert.deepEqual({ ...metadata }, { format: 'pt', note: 'ünïcode' });
  assert.deepEqual([...got.keys()], [...tensors.keys()], 'file order, not JSON object order');
  for (const [k, want] of tensors) {
    const t = got.get(k)!;
    assert.equal(t.dtype, want.dtype, k);
    assert.deepEqual(t.shape, want.shape, k);
    assert.deepEqual(values(t), values(want), k);
  }
  // The writer keeps map order without per-tensor padding: 'b' (offset 0) is a view of the file,
  // 'scalar' (data offset 54, not a multiple of 4) had to be copied.
  assert.equal(got.get('b')!.data.buffer, file.buffer);
  assert.equal(got.get('__proto__')!.data.buffer, file.buffer);
  assert.notEqual(got.get('scalar')!.data.buffer, file.buffer);
});

test('F64 narrows to float32, I16/U16 widen to int32', () => {
  const data = Buffer.concat([Buffer.from(new Float64Array([0.1, -1e300]).buffer), Buffer.from(new Int16Array([-5, 9]).buffer), Buffer.from(new Uint16Array([65535]).buffer)]);
  const { tensors } = read(raw({
    d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
    s: { dtype: 'I16', shape: [2], data_offsets: [16, 20] },
    u: { dtype: 'U16', shape: [1], data_offsets: [20, 22] },
  }, data));
  assert.deepEqual([tensors.get('d')!.dtype, values(tensors.get('d')!)], ['float32', [Math.fround(0.1), -Infinity]]);
  assert.deepEqual([tensors.get('s')!.dtype, values(tensors.get('s')!)], ['int32', [-5, 9]]);
  assert.deepEqual([tensors.get('u')!.dtype, values(tensors.get('u')!)], ['int32', [65535]]);
});

test('misaligned tensors are copied, aligned ones stay views', () => {
  // Header of odd length: the data section starts at an odd offset.
  const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [1], data_offsets: [8, 9] } };
  let json = JSON.stringify(header);
  if ((8 + json.length) % 2 === 0) json += ' ';
  const file = raw(json, new Uint8Array([...new Uint8Array(new Float32Array([3.5, -1]).buffer), 77]));
  const { tensors } = read(file);
  assert.deepEqual(values(tensors.get('a')!), [3.5, -1]);
  assert.notEqual(tensors.get('a')!.data.buffer, file.buffer);
  assert.deepEqual(values(tensors.get('b')!), [77]);
  assert.equal(tensors.get('b')!.data.buffer, file.buffer);
});

test('invalid files are InputErrors that name the tensor', () => {
  const f4 = new Uint8Array(8);
  const cases: [string, Uint8Array, string | RegExp][] = [
    ['too short', new Uint8Array(5), 'w.safetensors: invalid safetensors file (5 bytes is too short for the header length)'],
    ['header past the end', (() => { const b = Buffer.alloc(12); b.writeBigUInt64LE(5n); return new Uint8Array(b); })(),
      'w.safetensors: invalid safetensors file (header length 5 exceeds the 12-byte file)'],
    ['huge header length', (() => { const b = Buffer.alloc(12); b.writeBigUInt64LE(2n ** 64n - 1n); return new Uint8Array(b); })(), /header length 18446744073709551615 exceeds/],
    ['bad JSON', raw('{"a": '), /^w\.safetensors: invalid safetensors file \(header is not valid JSON: /],
    ['bad UTF-8', raw(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')), /header is not valid JSON/],
    ['array header', raw([]), 'w.safetensors: invalid safetensors file (header is not a JSON object)'],
    ['entry not an object', raw({ w: 3 }), "w.safetensors: invalid safetensors file (tensor 'w': entry is not an object)"],
    ['no dtype', raw({ w: { shape: [1], data_offsets: [0, 4] } }, f4), "w.safetensors: invalid safetensors file (tensor 'w': dtype is not a string)"],
    ['bad shape', raw({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f4), "w.safetensors: invalid safetensors file (tensor 'w': shape is not a list of non-negative integers)"],
    ['float shape', raw({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f4), /tensor 'w': shape is not a list/],
    ['bad offsets', raw({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f4), "w.safetensors: invalid safetensors file (tensor 'w': data_offsets is not [begin, end])"],
    ['offsets past the data', raw({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f4),
      "w.safetensors: invalid safetensors file (tensor 'w': data_offsets [0, 16] lie outside the 8-byte data section)"],
    ['reversed offsets', raw({ w: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f4), /tensor 'w': data_offsets \[4, 0\] lie outside/],
    ['size mismatch', raw({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f4),
      "w.safetensors: invalid safetensors file (tensor 'w': data_offsets span 8 bytes but shape [3] × F32 needs 12)"],
    ['metadata not strings', raw({ __metadata__: { epoch: 3 } }), "w.safetensors: invalid safetensors file (metadata 'epoch' is not a string)"],
  ];
  for (const [what, bytes, msg] of cases) {
    throwsUser(() => read(bytes), InputError, msg);
    assert.ok(what);
  }
  throwsUser(() => read(raw({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, f4)), UnsupportedError,
    "w.safetensors: tensor 'w' has dtype F8_E4M3, which is not supported");
});

test('truncating a valid file is always an InputError', () => {
  const file = writeSafetensors(new Map([['a', tensor('float32', [2], new Float32Array([1, 2]))], ['b', tensor('int64', [1], new BigInt64Array([3n]))]]));
  for (let n = 0; n < file.length; n++) {
    assert.throws(() => read(file.subarray(0, n)), (e: unknown) => e instanceof InputError, `prefix ${n}`);
  }
});

test('readSafetensors reads from disk; sniffFile recognises it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-test-'));
  try {
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, writeSafetensors(new Map([['x', tensor('float16', [1], new Uint16Array([0x3c00]))]])));
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepEqual(values(tensors.get('x')!), [0x3c00]);
    assert.deepEqual({ ...metadata }, {});
    assert.equal(await sniffFile(path), 'safetensors');
    await assert.rejects(readSafetensors(join(dir, 'nope.safetensors')), (e: unknown) =>
      e instanceof InputError && e.message === `${join(dir, 'nope.safetensors')}: no such file`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

test('fixtures: safetensors written by the reference writer read back through our writer unchanged', async (t) => {
  if (!existsSync(join(FIXTURES, 'manifest.json'))) return t.skip('fixtures/manifest.json is absent');
  for (const rel of ['v1/timm.safetensors', 'v1/timm_fp16.safetensors', 'v2/timm_bf16.safetensors', 'edge/int64_small.safetensors']) {
    const { tensors, metadata } = await readSafetensors(join(FIXTURES, rel));
    assert.deepEqual({ ...metadata }, { format: 'pt' }, rel);
    const again = read(writeSafetensors(tensors, metadata));
    assert.deepEqual([...again.tensors.keys()], [...tensors.keys()], rel);
    for (const [k, v] of tensors) {
      assert.equal(again.tensors.get(k)!.dtype, v.dtype);
      assert.deepEqual(values(again.tensors.get(k)!), values(v), `${rel} ${k}`);
    }
  }
});
