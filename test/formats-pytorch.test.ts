import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InputError, UnsupportedError } from '../src/errors.js';
import { readPytorchCheckpoint, readPytorchCheckpointFromBuffer } from '../src/formats/pytorch.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { sniffBytes, sniffFile } from '../src/formats/sniff.js';
import type { StateDict } from '../src/formats/state-dict.js';
import { halfToFloat, type Tensor } from '../src/graph/tensor.js';
import { OP, P, buildCheckpoint, buildZip, bytesOf, pk, stateDictPickle, tensorPickle, type FakeTensor } from './helpers/format-builders.js';
import { throwsUser } from './helpers/assert-errors.js';

const read = (bytes: Uint8Array) => readPytorchCheckpointFromBuffer(bytes, 'ck.pth');
const f32 = (...v: number[]) => bytesOf(new Float32Array(v));
const values = (t: Tensor): (number | bigint)[] => Array.from(t.data as ArrayLike<number | bigint>);
const T = (storageType: string, key: string, storageNumel: number, offset: number, size: number[], stride: number[]): FakeTensor =>
  ({ storageType, key, storageNumel, offset, size, stride });


test('reads a torch.save state dict with zero-copy float32 views', () => {
  const file = buildCheckpoint(stateDictPickle([
    ['stem.0.weight', T('FloatStorage', '0', 6, 0, [2, 3], [3, 1])],
    ['stem.0.bias', T('FloatStorage', '1', 2, 0, [2], [1])],
  ]), { 0: f32(1, 2, 3, 4, 5, 6), 1: f32(-0.5, 0.25) });
  const sd = read(file);
  assert.deepEqual([...sd.keys()], ['stem.0.weight', 'stem.0.bias']);
  const w = sd.get('stem.0.weight')!;
  assert.equal(w.dtype, 'float32');
  assert.deepEqual(w.shape, [2, 3]);
  assert.deepEqual(values(w), [1, 2, 3, 4, 5, 6]);
  assert.equal(w.data.buffer, file.buffer, 'a view of the file, not a copy');
  assert.deepEqual(values(sd.get('stem.0.bias')!), [-0.5, 0.25]);
});

test('every storage type becomes the right dtype', () => {
  const half = new Uint16Array([0x3c00, 0xc000]); // 1, -2
  const file = buildCheckpoint(stateDictPickle([
    ['h', T('HalfStorage', 'h', 2, 0, [2], [1])],
    ['bf', T('BFloat16Storage', 'bf', 2, 0, [2], [1])],
    ['d', T('DoubleStorage', 'd', 3, 0, [3], [1])],
    ['l', T('LongStorage', 'l', 2, 0, [2], [1])],
    ['i', T('IntStorage', 'i', 2, 0, [2], [1])],
    ['s', T('ShortStorage', 's', 2, 0, [2], [1])],
    ['c', T('CharStorage', 'c', 2, 0, [2], [1])],
    ['u', T('ByteStorage', 'u', 2, 0, [2], [1])],
    ['b', T('BoolStorage', 'b', 2, 0, [2], [1])],
  ]), {
    h: bytesOf(half), bf: bytesOf(new Uint16Array([0x3f80, 0x4049])), d: bytesOf(new Float64Array([0.1, -3, 1e300])),
    l: bytesOf(new BigInt64Array([-1n, 2n ** 62n])), i: bytesOf(new Int32Array([-7, 2 ** 31 - 1])),
    s: bytesOf(new Int16Array([-32768, 5])), c: bytesOf(new Int8Array([-128, 127])), u: new Uint8Array([0, 255]), b: new Uint8Array([1, 0]),
  });
  const sd = read(file);
  const got = Object.fromEntries([...sd].map(([k, t]) => [k, [t.dtype, values(t)]]));
  assert.deepEqual(got, {
    h: ['float16', [0x3c00, 0xc000]],
    bf: ['bfloat16', [0x3f80, 0x4049]],
    d: ['float32', [Math.fround(0.1), -3, Infinity]],
    l: ['int64', [-1n, 2n ** 62n]],
    i: ['int32', [-7, 2 ** 31 - 1]],
    s: ['int32', [-32768, 5]],
    c: ['int8', [-128, 127]],
    u: ['uint8', [0, 255]],
    b: ['bool', [1, 0]],
  });
  assert.equal(halfToFloat((sd.get('h')!.data as Uint16Array)[1]), -2);
});

test('non-contiguous views are gathered; shared storages and offsets work', () => {
  const storage = f32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
  const file = buildCheckpoint(stateDictPickle([
    ['plain', T('FloatStorage', '0', 12, 0, [3, 4], [4, 1])],
    ['transposed', T('FloatStorage', '0', 12, 0, [4, 3], [1, 4])],
    ['every_other', T('FloatStorage', '0', 12, 1, [5], [2])],
    ['expanded', T('FloatStorage', '0', 12, 2, [2, 3], [0, 1])],
    ['channels_last', T('FloatStorage', '0', 12, 0, [1, 2, 3, 2], [12, 1, 4, 2])],
    ['tail', T('FloatStorage', '0', 12, 8, [2, 2], [2, 1])],
    ['scalar', T('FloatStorage', '0', 12, 11, [], [])],
    ['empty', T('FloatStorage', '0', 12, 0, [0, 3], [3, 1])],
    ['unit_dims', T('FloatStorage', '0', 12, 4, [1, 4, 1], [99, 1, 7])],
  ]), { 0: storage });
  const sd = read(file);
  assert.deepEqual(values(sd.get('plain')!), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(values(sd.get('transposed')!), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  assert.deepEqual(values(sd.get('every_other')!), [1, 3, 5, 7, 9]);
  assert.deepEqual(values(sd.get('expanded')!), [2, 3, 4, 2, 3, 4]);
  assert.deepEqual(values(sd.get('channels_last')!), [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]);
  assert.deepEqual(values(sd.get('tail')!), [8, 9, 10, 11]);
  assert.deepEqual([sd.get('scalar')!.shape, values(sd.get('scalar')!)], [[], [11]]);
  assert.deepEqual([sd.get('empty')!.shape, values(sd.get('empty')!)], [[0, 3], []]);
  assert.deepEqual(values(sd.get('unit_dims')!), [4, 5, 6, 7]);
  // Contiguous ones share the one storage in the file; gathered ones are copies.
  for (const k of ['plain', 'tail', 'scalar', 'unit_dims']) assert.equal(sd.get(k)!.data.buffer, file.buffer, k);
  assert.notEqual(sd.get('transposed')!.data.buffer, file.buffer);
});

test('misaligned and deflated members are copied correctly', () => {
  const pickle = stateDictPickle([['w', T('FloatStorage', '0', 3, 1, [2], [1])], ['n', T('LongStorage', '1', 1, 0, [], [])]]);
  const storages = { 0: f32(7, 8, 9), 1: bytesOf(new BigInt64Array([-5n])) };
  for (const file of [
    buildCheckpoint(pickle, storages, { align: 1 }),
    buildZip([
      { name: 'a/data.pkl', data: pickle, method: 8 },
      { name: 'a/data/0', data: storages[0], method: 8 },
      { name: 'a/data/1', data: storages[1], method: 8 },
    ], { align: 1 }),
  ]) {
    const sd = read(file);
    assert.deepEqual(values(sd.get('w')!), [8, 9]);
    assert.deepEqual(values(sd.get('n')!), [-5n]);
  }
});

test('nested dicts flatten into dotted keys; other values are ignored', () => {
  const w = tensorPickle(T('FloatStorage', '0', 2, 0, [2], [1]));
  const ema = tensorPickle(T('FloatStorage', '1', 1, 0, [1], [1]));
  const pickle = pk(P.proto(2), OP.EMPTY_DICT,
    OP.MARK,
    P.binunicode('model'), P.global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE,
    P.binunicode('stem.0.weight'), w, OP.BINPUT, 50, OP.SETITEM,
    OP.EMPTY_DICT, P.binunicode('_metadata'), OP.EMPTY_DICT, OP.SETITEM, OP.BUILD,
    P.binunicode('model_ema'), OP.EMPTY_DICT, P.binunicode('head'), OP.EMPTY_DICT, P.binunicode('bias'), ema, OP.SETITEM, OP.SETITEM,
    P.binunicode('epoch'), P.binint(299),
    P.binunicode('optimizer'), OP.EMPTY_DICT, P.binunicode('param_groups'), OP.EMPTY_LIST, P.binget(50), OP.APPEND, OP.SETITEM,
    P.binunicode('args'), P.global('argparse', 'Namespace'), OP.EMPTY_TUPLE, OP.NEWOBJ, OP.EMPTY_DICT, P.binunicode('lr'), P.binfloat(4e-3), OP.SETITEM, OP.BUILD,
    P.binunicode('name'), P.binunicode('convnext_tiny'),
    P.binint1(7), w, // integer keys become strings
    OP.SETITEMS, OP.STOP);
  const sd = read(buildCheckpoint(pickle, { 0: f32(1, 2), 1: f32(3) }));
  assert.deepEqual([...sd.keys()], ['model.stem.0.weight', 'model_ema.head.bias', '7']);
  assert.deepEqual(values(sd.get('model_ema.head.bias')!), [3]);
});

test('the archive directory name may vary; byteorder may be missing', () => {
  const pickle = stateDictPickle([['w', T('FloatStorage', '0', 1, 0, [1], [1])]]);
  assert.deepEqual(values(read(buildCheckpoint(pickle, { 0: f32(42) }, { dir: 'convnext_tiny_1k_224_ema', byteorder: '' })).get('w')!), [42]);
});

test('refuses files that are not torch >= 1.6 state dicts, in one line each', () => {
  throwsUser(() => read(new Uint8Array(0)), InputError, 'ck.pth: empty file, not a PyTorch checkpoint');
  const legacy = pk(P.proto(2), P.long1(0x1950a86a20f9469cfc6cn), OP.STOP);
  const legacy4 = pk(P.proto(4), P.frame(13), P.long1(0x1950a86a20f9469cfc6cn), OP.STOP); // torch.save(..., pickle_protocol=4)
  for (const bytes of [legacy, legacy4]) {
    throwsUser(() => read(bytes), InputError,
      "ck.pth: legacy PyTorch serialization (torch < 1.6); re-save it with torch >= 1.6: torch.save(torch.load(f), 'new.pth')");
  }
  throwsUser(() => read(pk(P.proto(4), OP.EMPTY_DICT, OP.STOP)), InputError,
    'ck.pth: a plain pickle file, not a torch.save zip archive (save the state dict with torch.save)');
  throwsUser(() => read(new Uint8Array(Buffer.from('hello world, not a checkpoint'))), InputError,
    'ck.pth: not a PyTorch checkpoint: neither a zip archive nor a pickle (starts with 68 65 6c 6c 6f 20 77 6f)');
  throwsUser(() => read(new Uint8Array(Buffer.from('\x93NUMPY\x01\x00', 'latin1'))), InputError, 'ck.pth: not a PyTorch checkpoint: looks like a npy file');
  const script = buildZip([
    { name: 'model/data.pkl', data: pk(P.proto(2), OP.NONE, OP.STOP) },
    { name: 'model/code/__torch__/convnext.py', data: new Uint8Array(1) },
    { name: 'model/constants.pkl', data: pk(P.proto(2), OP.EMPTY_TUPLE, OP.STOP) },
  ]);
  throwsUser(() => read(script), InputError, /^ck\.pth: TorchScript archive, not a state dict/);
  throwsUser(() => read(buildZip([{ name: 'readme.txt', data: new Uint8Array(1) }])), InputError,
    'ck.pth: zip archive without <dir>/data.pkl: not a torch.save checkpoint');
  const pickle = stateDictPickle([['w', T('FloatStorage', '0', 1, 0, [1], [1])]]);
  throwsUser(() => read(buildCheckpoint(pickle, { 0: f32(1) }, { byteorder: 'big' })), UnsupportedError,
    'ck.pth: checkpoint was saved on a big-endian machine');
  throwsUser(() => read(buildCheckpoint(pk(P.proto(2), tensorPickle(T('FloatStorage', '0', 1, 0, [1], [1])), OP.STOP), { 0: f32(1) })), InputError,
    'ck.pth: holds a single tensor, not a state dict');
  throwsUser(() => read(buildCheckpoint(pk(P.proto(2), OP.EMPTY_LIST, OP.STOP), {})), InputError,
    'ck.pth: holds a list, not a state dict (a dict of tensors)');
});

test('inconsistent storages and views are InputErrors', () => {
  const one = (t: FakeTensor, storages: Record<string, Uint8Array>) => read(buildCheckpoint(stateDictPickle([['w', t]]), storages));
  throwsUser(() => one(T('FloatStorage', '9', 1, 0, [1], [1]), { 0: f32(1) }), InputError,
    "ck.pth: archive lacks the data of storage '9' (archive/data/9)");
  throwsUser(() => one(T('FloatStorage', '0', 4, 0, [4], [1]), { 0: f32(1, 2, 3) }), InputError,
    "ck.pth: storage '0' has 12 bytes, its 4 float32 elements need 16");
  throwsUser(() => one(T('FloatStorage', '0', 3, 1, [3], [1]), { 0: f32(1, 2, 3) }), InputError,
    "ck.pth: tensor 'w' (shape [3], offset 1) reaches element 3 of a 3-element storage");
  throwsUser(() => one(T('FloatStorage', '0', 4, 0, [2, 2], [1, 3]), { 0: f32(1, 2, 3, 4) }), InputError,
    /reaches element 4 of a 4-element storage/);
  const badPid = pk(P.proto(2), OP.EMPTY_DICT, P.binunicode('w'), P.global('torch._utils', '_rebuild_tensor_v2'),
    OP.MARK, P.binunicode('not a pid'), OP.BINPERSID, P.binint1(0), OP.EMPTY_TUPLE, OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE, OP.SETITEM, OP.STOP);
  throwsUser(() => read(buildCheckpoint(badPid, {})), InputError, /^ck\.pth: corrupt pickle \(unexpected persistent id string\)/);
  const fakeStorage = pk(P.proto(2), OP.EMPTY_DICT, P.binunicode('w'), P.global('torch._utils', '_rebuild_tensor_v2'),
    OP.MARK, OP.EMPTY_DICT, P.binint1(0), OP.EMPTY_TUPLE, OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE, OP.SETITEM, OP.STOP);
  throwsUser(() => read(buildCheckpoint(fakeStorage, {})), InputError, "ck.pth: corrupt pickle (tensor 'w' has no storage)");
  // The same name twice after flattening.
  const dup = pk(P.proto(2), OP.EMPTY_DICT, OP.MARK,
    P.binunicode('a.b'), tensorPickle(T('FloatStorage', '0', 1, 0, [1], [1])),
    P.binunicode('a'), OP.EMPTY_DICT, P.binunicode('b'), tensorPickle(T('FloatStorage', '0', 1, 0, [1], [1])), OP.SETITEM,
    OP.SETITEMS, OP.STOP);
  throwsUser(() => read(buildCheckpoint(dup, { 0: f32(1) })), InputError, "ck.pth: tensor name 'a.b' occurs twice after flattening nested dicts");
  // A dict nested deeper than any checkpoint: an error, not a stack overflow.
  const deep = pk(P.proto(2), ...Array.from({ length: 5000 }, () => pk(OP.EMPTY_DICT, P.binunicode('k'))), OP.EMPTY_DICT,
    ...Array.from({ length: 5000 }, () => OP.SETITEM), OP.STOP);
  throwsUser(() => read(buildCheckpoint(deep, {})), InputError, /^ck\.pth: dicts nested more than 64 deep/);
  // A dict that contains itself is walked once.
  const cyclic = pk(P.proto(2), OP.EMPTY_DICT, OP.BINPUT, 0, P.binunicode('self'), P.binget(0), OP.SETITEM, OP.STOP);
  assert.equal(read(buildCheckpoint(cyclic, {})).size, 0);
});

test('a forbidden global inside data.pkl names the file', () => {
  const evil = pk(P.proto(2), OP.EMPTY_DICT, P.binunicode('args'), P.global('posix', 'system'), P.binunicode('echo pwned'), OP.TUPLE1, OP.REDUCE, OP.SETITEM, OP.STOP);
  throwsUser(() => read(buildCheckpoint(evil, {})), UnsupportedError,
    "ck.pth: refusing to load global 'posix.system': not part of a state dict (nothing in a checkpoint is executed)");
});

test('a corrupted data.pkl is caught by its CRC; a truncated file is an InputError at every length', () => {
  const file = buildCheckpoint(stateDictPickle([['w', T('HalfStorage', '0', 2, 0, [2], [1])]]), { 0: bytesOf(new Uint16Array([1, 2])) });
  const zipStart = Buffer.from(file).indexOf('archive/data.pkl') + 'archive/data.pkl'.length;
  const bad = file.slice();
  bad[zipStart + 80] ^= 0x01; // inside the (aligned) pickle data
  throwsUser(() => read(bad), InputError, "ck.pth: truncated or corrupt zip (CRC mismatch in 'archive/data.pkl')");
  for (let n = 1; n < file.length; n++) {
    assert.throws(() => read(file.subarray(0, n)), (e: unknown) => e instanceof InputError, `prefix ${n}`);
  }
});

test('readPytorchCheckpoint reads from disk and reports a missing file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pth-test-'));
  try {
    const path = join(dir, 'w.pth');
    writeFileSync(path, buildCheckpoint(stateDictPickle([['w', T('FloatStorage', '0', 2, 0, [2], [1])]]), { 0: f32(1.5, 2.5) }));
    const sd = await readPytorchCheckpoint(path);
    assert.deepEqual(values(sd.get('w')!), [1.5, 2.5]);
    assert.equal(await sniffFile(path), 'zip');
    await assert.rejects(readPytorchCheckpoint(join(dir, 'missing.pth')), (e: unknown) =>
      e instanceof InputError && e.message === `${join(dir, 'missing.pth')}: no such file`);
    await assert.rejects(readPytorchCheckpoint(dir), (e: unknown) => e instanceof InputError && e.message === `${dir}: is a directory, not a file`);
    assert.equal(await sniffFile(dir), 'unknown');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sniffBytes recognises each format from its first bytes', () => {
  const st = Buffer.alloc(16);
  st.writeBigUInt64LE(2n, 0);
  st.write('{}', 8);
  assert.equal(sniffBytes(st.subarray(0, 10), 10), 'safetensors');
  assert.equal(sniffBytes(st.subarray(0, 10), 9), 'unknown', 'header longer than the file');
  assert.equal(sniffBytes(new Uint8Array([0x50, 0x4b, 3, 4]), 100), 'zip');
  assert.equal(sniffBytes(new Uint8Array([0x50, 0x4b, 5, 6]), 22), 'zip');
  assert.equal(sniffBytes(new Uint8Array([0x80, 2, 0x8a]), 100), 'legacy-pickle');
  assert.equal(sniffBytes(new Uint8Array(Buffer.from('\x93NUMPY\x01\x00', 'latin1')), 100), 'npy');
  assert.equal(sniffBytes(new Uint8Array([0x08, 0x07, 0x12, 0x07, 0x70]), 100), 'onnx');
  assert.equal(sniffBytes(new Uint8Array([0x08, 0x07, 0x00]), 100), 'unknown');
  assert.equal(sniffBytes(new Uint8Array(0), 0), 'unknown');
});

// ------------------------------------------------------------------------------------------------
// The committed PyTorch fixtures (fixtures/manifest.json, made by fixtures/make_fixtures.py).

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');
const MANIFEST = join(FIXTURES, 'manifest.json');

interface EdgeTensor { dtype: string; shape: number[]; stride: number[]; storage_offset: number; values: number[] }
interface Manifest {
  models: { name: string; path: string; format: string; dtype: string; state_dict_key: string | null; weights_file?: string }[];
  bad: { name: string; path: string; expect: string }[];
  edge: { name: string; path: string; format: string; tensors: Record<string, EdgeTensor> }[];
}
const manifest = (): Manifest => JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
const fx = (rel: string) => join(FIXTURES, rel);
const readAny = async (path: string): Promise<StateDict> =>
  path.endsWith('.safetensors') ? (await readSafetensors(path)).tensors : readPytorchCheckpoint(path);

/** Multiset of tensor contents (dtype + bytes), independent of names and shapes. */
function contents(sd: StateDict, keep: (k: string) => boolean = () => true): string[] {
  return [...sd].filter(([k]) => keep(k))
    .map(([, t]) => `${t.dtype}:${createHash('sha256').update(bytesOf(t.data)).digest('hex')}`).sort();
}

test('fixtures: edge cases (non-contiguous, shared storage, int64) read exactly', async (t) => {
  if (!existsSync(MANIFEST)) return t.skip('fixtures/manifest.json is absent');
  const m = manifest();
  assert.ok(m.edge.length >= 3);
  for (const e of m.edge) {
    const sd = await readAny(fx(e.path));
    assert.deepEqual([...sd.keys()].sort(), Object.keys(e.tensors).sort(), e.name);
    for (const [k, want] of Object.entries(e.tensors)) {
      const got = sd.get(k)!;
      assert.equal(got.dtype, want.dtype, `${e.name} ${k}`);
      assert.deepEqual(got.shape, want.shape, `${e.name} ${k}`);
      const expected = want.dtype === 'int64' ? want.values.map((v) => BigInt(v)) : want.values;
      assert.deepEqual(values(got), expected, `${e.name} ${k}`);
    }
  }
});

test('fixtures: the same weights read alike through different layouts and formats', async (t) => {
  if (!existsSync(MANIFEST)) return t.skip('fixtures/manifest.json is absent');
  // Same torchvision state dict saved non-contiguously and as views of one storage.
  const nc = await readPytorchCheckpoint(fx('edge/v1_noncontiguous.pth'));
  const sh = await readPytorchCheckpoint(fx('edge/v1_shared_storage.pth'));
  assert.deepEqual([...nc.keys()], [...sh.keys()]);
  for (const [k, a] of nc) {
    assert.deepEqual(a.shape, sh.get(k)!.shape, k);
    assert.deepEqual(values(a), values(sh.get(k)!), k);
  }
  // The same V1 weights (v1a) in torchvision .pth, official .pth ({"model": …}) and timm .safetensors.
  const tv = contents(await readPytorchCheckpoint(fx('v1/torchvision.pth')));
  assert.deepEqual(contents(await readPytorchCheckpoint(fx('v1/official.pth'))), tv);
  assert.deepEqual(contents((await readSafetensors(fx('v1/timm.safetensors'))).tensors), tv);
  assert.deepEqual(contents((await readSafetensors(fx('v1/hf/model.safetensors'))).tensors), tv);
  // …and rounded to float16, as HalfStorage .pth and F16 safetensors.
  assert.deepEqual(contents((await readSafetensors(fx('v1/timm_fp16.safetensors'))).tensors),
    contents(await readPytorchCheckpoint(fx('v1/torchvision_fp16.pth'))));
  // V2 (v2a): official .pth, Hugging Face pytorch_model.bin, timm safetensors.
  const v2 = contents((await readSafetensors(fx('v2/timm.safetensors'))).tensors);
  assert.deepEqual(contents(await readPytorchCheckpoint(fx('v2/official.pth'))), v2);
  assert.deepEqual(contents(await readPytorchCheckpoint(fx('v2/hf/pytorch_model.bin'))), v2);
});

test('fixtures: every model checkpoint reads with its dtype and state-dict key', async (t) => {
  if (!existsSync(MANIFEST)) return t.skip('fixtures/manifest.json is absent');
  for (const model of manifest().models) {
    if (model.format === 'onnx') {
      assert.equal(await sniffFile(fx(model.path)), 'onnx', model.name);
      continue;
    }
    let path = fx(model.path);
    if (model.format === 'hf') path = join(path, model.weights_file ?? (existsSync(join(path, 'model.safetensors')) ? 'model.safetensors' : 'pytorch_model.bin'));
    assert.equal(await sniffFile(path), model.format === 'safetensors' || path.endsWith('.safetensors') ? 'safetensors' : 'zip', model.name);
    const sd = await readAny(path);
    const prefix = model.state_dict_key ? `${model.state_dict_key}.` : '';
    const weights = [...sd].filter(([k]) => k.startsWith(prefix));
    assert.ok(weights.length >= 20, `${model.name}: ${weights.length} tensors under '${prefix}'`);
    for (const [k, w] of weights) {
      if (k.endsWith('num_batches_tracked') || k.startsWith('optimizer.')) continue;
      assert.equal(w.dtype, model.dtype, `${model.name} ${k}`);
      if (w.dtype === 'float32') assert.ok((w.data as Float32Array).every(Number.isFinite), `${model.name} ${k} is finite`);
    }
  }
});

test('fixtures: bad checkpoints are refused (or read, for the ones the importer must reject)', async (t) => {
  if (!existsSync(MANIFEST)) return t.skip('fixtures/manifest.json is absent');
  const marker = '/tmp/convnext-pwned';
  const before = existsSync(marker) ? statSync(marker).mtimeMs : undefined;
  for (const bad of manifest().bad) {
    const path = fx(bad.path);
    switch (bad.expect) {
      case 'legacy':
        assert.equal(await sniffFile(path), 'legacy-pickle');
        await assert.rejects(readPytorchCheckpoint(path), (e: unknown) => e instanceof InputError &&
          e.message === `${path}: legacy PyTorch serialization (torch < 1.6); re-save it with torch >= 1.6: torch.save(torch.load(f), 'new.pth')`);
        break;
      case 'forbidden-global':
        await assert.rejects(readPytorchCheckpoint(path), (e: unknown) => e instanceof UnsupportedError &&
          e.message === `${path}: refusing to load global 'posix.system': not part of a state dict (nothing in a checkpoint is executed)`);
        break;
      case 'module':
        await assert.rejects(readPytorchCheckpoint(path), (e: unknown) => e instanceof UnsupportedError &&
          e.message.startsWith(`${path}: refusing to load global 'torchvision.models.convnext.ConvNeXt'`) &&
          e.message.endsWith('; this file holds a pickled model object; save model.state_dict() instead'));
        break;
      case 'not-convnext': {
        // A valid state dict; rejecting it is the importer's job.
        const sd = await readPytorchCheckpoint(path);
        assert.deepEqual(sd.get('conv1.weight')!.shape, [4, 3, 7, 7]);
        const nbt = sd.get('bn1.num_batches_tracked')!;
        assert.deepEqual([nbt.dtype, nbt.shape, values(nbt)], ['int64', [], [1000n]]);
        break;
      }
      case 'nan': {
        const sd = await readPytorchCheckpoint(path);
        const nan: string[] = [];
        for (const [k, w] of sd) {
          if (w.dtype !== 'float32') continue;
          const d = w.data as Float32Array;
          for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) nan.push(`${k}[${i}]`);
        }
        const cols = sd.get('features.1.0.block.3.weight')!.shape[1];
        assert.deepEqual(nan, [`features.1.0.block.3.weight[${5 * cols + 3}]`]);
        break;
      }
      default:
        assert.fail(`unknown bad fixture kind '${bad.expect}' (${bad.name})`);
    }
  }
  assert.equal(existsSync(marker) ? statSync(marker).mtimeMs : undefined, before, 'the payload did not run');
});
