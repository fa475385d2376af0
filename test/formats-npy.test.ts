import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InputError, UnsupportedError } from '../src/errors.js';
import { readNpy, writeNpy } from '../src/formats/npy.js';
import { sniffFile } from '../src/formats/sniff.js';
import { tensor, type Tensor } from '../src/graph/tensor.js';
import { throwsUser } from './helpers/assert-errors.js';

const values = (t: Tensor): (number | bigint)[] => Array.from(t.data as ArrayLike<number | bigint>);
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

// np.save output of numpy 2.4: np.arange(6, dtype='<f4').reshape(2, 3), np.array(3.25), np.array([1, -2], dtype='<i8').
const padTo128 = (dict: string) => Buffer.from(dict.padEnd(117, ' ') + '\n', 'latin1').toString('hex');
const NUMPY_F4 = '934e554d50590100' + '7600' + padTo128("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") +
  '000000000000803f0000004000004040000080400000a040';
const NUMPY_F8_SCALAR = '934e554d50590100' + '7600' + padTo128("{'descr': '<f8', 'fortran_order': False, 'shape': (), }") + '0000000000000a40';
const NUMPY_I8 = '934e554d50590100' + '7600' + padTo128("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }") +
  '0100000000000000feffffffffffffff';

/** A .npy file with a given version and header text, header padded so the data is 16-byte aligned. */
function npy(major: number, dict: string, data: Uint8Array): Uint8Array {
  const lenBytes = major === 1 ? 2 : 4;
  const prefix = 8 + lenBytes;
  const body = Buffer.from(dict, major === 3 ? 'utf8' : 'latin1');
  const headerLen = Math.ceil((prefix + body.length + 1) / 16) * 16 - prefix;
  const header = Buffer.concat([body, Buffer.alloc(headerLen - body.length - 1, 0x20), Buffer.from('\n')]);
  const len = Buffer.alloc(lenBytes);
  if (major === 1) len.writeUInt16LE(headerLen);
  else len.writeUInt32LE(headerLen);
  return new Uint8Array(Buffer.concat([Buffer.from('\x93NUMPY', 'latin1'), Buffer.from([major, 0]), len, header, data]));
}


test('writes byte-for-byte what np.save writes', () => {
  assert.equal(Buffer.from(writeNpy(tensor('float32', [2, 3], new Float32Array([0, 1, 2, 3, 4, 5])))).toString('hex'), NUMPY_F4);
  assert.equal(Buffer.from(writeNpy(tensor('int64', [2], new BigInt64Array([1n, -2n])))).toString('hex'), NUMPY_I8);
});

test('reads np.save output', () => {
  const a = readNpy(hex(NUMPY_F4));
  assert.deepEqual([a.dtype, a.shape, values(a)], ['float32', [2, 3], [0, 1, 2, 3, 4, 5]]);
  const s = readNpy(hex(NUMPY_F8_SCALAR));
  assert.deepEqual([s.dtype, s.shape, values(s)], ['float32', [], [3.25]]);
  const i = readNpy(hex(NUMPY_I8));
  assert.deepEqual([i.dtype, i.shape, values(i)], ['int64', [2], [1n, -2n]]);
});

test('round-trips every dtype; bfloat16 is written as float32', () => {
  const cases: Tensor[] = [
    tensor('float32', [1, 2, 2], new Float32Array([1.5, -0, Infinity, -3e-38])),
    tensor('float16', [2], new Uint16Array([0x3c00, 0xfbff])),
    tensor('int64', [], new BigInt64Array([-(2n ** 63n)])),
    tensor('int32', [3], new Int32Array([1, -1, 2 ** 31 - 1])),
    tensor('uint8', [2], new Uint8Array([0, 255])),
    tensor('int8', [2], new Int8Array([-128, 127])),
    tensor('bool', [2], new Uint8Array([0, 1])),
    tensor('float32', [0, 3], new Float32Array(0)),
  ];
  for (const t of cases) {
    const back = readNpy(writeNpy(t));
    assert.deepEqual([back.dtype, back.shape, values(back)], [t.dtype, t.shape, values(t)], `${t.dtype} ${t.shape}`);
  }
  const bf = readNpy(writeNpy(tensor('bfloat16', [2], new Uint16Array([0x3f80, 0xc040]))));
  assert.deepEqual([bf.dtype, values(bf)], ['float32', [1, -3]]);
  const big = writeNpy(tensor('float32', [1], new Float32Array([1])));
  assert.equal(Buffer.from(big).readUInt16LE(8) + 10, 128, 'header padded to 64 bytes');
});

test('reads format versions 2 and 3, i2/u2/f8, and a view when aligned', () => {
  const data = new Uint8Array(new Float32Array([1, 2]).buffer);
  const v2 = npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data);
  const t2 = readNpy(v2);
  assert.deepEqual(values(t2), [1, 2]);
  assert.equal(t2.data.buffer, v2.buffer, 'aligned data is a view');
  const v3 = npy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'note': 'ü', }", data);
  assert.deepEqual(values(readNpy(v3)), [1, 2]);
  const i2 = readNpy(npy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(new Int16Array([-3, 4]).buffer)));
  assert.deepEqual([i2.dtype, values(i2)], ['int32', [-3, 4]]);
  const u2 = readNpy(npy(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(new Uint16Array([65535]).buffer)));
  assert.deepEqual([u2.dtype, values(u2)], ['int32', [65535]]);
  const f8 = readNpy(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }", new Uint8Array(new Float64Array([0.1]).buffer)));
  assert.deepEqual([f8.dtype, f8.shape, values(f8)], ['float32', [1, 1], [Math.fround(0.1)]]);
  const u1 = readNpy(npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([1, 2, 3])));
  assert.deepEqual([u1.dtype, values(u1)], ['uint8', [1, 2, 3]]);
});

test('misaligned input is copied; trailing bytes are ignored as np.load does', () => {
  const file = hex(NUMPY_F4);
  const shifted = new Uint8Array(file.length + 1);
  shifted.set(file, 1);
  const t = readNpy(shifted.subarray(1));
  assert.deepEqual(values(t), [0, 1, 2, 3, 4, 5]);
  const extra = new Uint8Array([...file, 9, 9, 9]);
  assert.deepEqual(values(readNpy(extra)), [0, 1, 2, 3, 4, 5]);
});

test('unsupported layouts and dtypes are UnsupportedErrors', () => {
  const f4 = new Uint8Array(8);
  throwsUser(() => readNpy(npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f4), 'x.npy'), UnsupportedError,
    'x.npy: Fortran-order .npy arrays are not supported (save with np.ascontiguousarray)');
  throwsUser(() => readNpy(npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f4), 'x.npy'), UnsupportedError,
    "x.npy: .npy dtype '>f4' is not supported (big-endian data)");
  throwsUser(() => readNpy(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", f4), 'x.npy'), UnsupportedError,
    "x.npy: .npy dtype '|O' is not supported (pickled Python objects)");
  throwsUser(() => readNpy(npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f4), 'x.npy'), UnsupportedError,
    "x.npy: .npy dtype '<c8' is not supported (this dtype)");
  throwsUser(() => readNpy(npy(4, '{}', f4), 'x.npy'), UnsupportedError, 'x.npy: .npy format version 4.0 is not supported');
});

test('malformed files are InputErrors', () => {
  throwsUser(() => readNpy(new Uint8Array(Buffer.from('not an npy file')), 'x.npy'), InputError, 'x.npy: invalid .npy file (no \\x93NUMPY magic)');
  throwsUser(() => readNpy(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(8)), 'x.npy'), InputError,
    "x.npy: invalid .npy file (data has 8 bytes, shape [3] of <f4 needs 12)");
  throwsUser(() => readNpy(npy(1, "{'descr': '<f4', 'shape': (3,), }", new Uint8Array(12)), 'x.npy'), InputError,
    /^x\.npy: invalid \.npy file \(unreadable header /);
  throwsUser(() => readNpy(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", new Uint8Array(12)), 'x.npy'), InputError,
    "x.npy: invalid .npy file (bad shape entry '-3')");
  const file = hex(NUMPY_F4);
  for (let n = 0; n < file.length; n++) {
    assert.throws(() => readNpy(file.subarray(0, n), 'cut.npy'), (e: unknown) => e instanceof InputError, `prefix ${n}`);
  }
});

test('readNpy reads from disk; sniffFile recognises it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'npy-test-'));
  try {
    const path = join(dir, 'a.npy');
    writeFileSync(path, hex(NUMPY_I8));
    assert.deepEqual(values(readNpy(path)), [1n, -2n]);
    assert.equal(await sniffFile(path), 'npy');
    throwsUser(() => readNpy(join(dir, 'b.npy')), InputError, `${join(dir, 'b.npy')}: no such file`);
    throwsUser(() => readNpy(dir), InputError, `${dir}: is a directory, not a file`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

test('fixtures: golden inputs and outputs have the shapes the manifest gives', async (t) => {
  const manifestPath = join(FIXTURES, 'manifest.json');
  if (!existsSync(manifestPath)) return t.skip('fixtures/manifest.json is absent');
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    input: { path: string; shape: number[]; dtype: string };
    models: { name: string; output: string; num_classes: number; widths: number[] }[];
  };
  const input = readNpy(join(FIXTURES, m.input.path));
  assert.equal(m.input.dtype, '<f4');
  assert.deepEqual([input.dtype, input.shape], ['float32', m.input.shape]);
  assert.ok((input.data as Float32Array).every(Number.isFinite));
  for (const model of m.models) {
    const out = readNpy(join(FIXTURES, model.output));
    const cols = model.num_classes || model.widths[model.widths.length - 1];
    assert.deepEqual([out.dtype, out.shape], ['float32', [m.input.shape[0], cols]], model.name);
    assert.equal(await sniffFile(join(FIXTURES, model.output)), 'npy');
  }
});
