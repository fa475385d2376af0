// Hostile and broken input: each case is built here at test time (no large fixtures) and must be
// refused quickly, as a user error naming the file, without allocating what the file asks for.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { InputError, UnsupportedError } from '../src/errors.js';
import { readHfFolder } from '../src/formats/huggingface.js';
import { openDataset, splitLabelLine } from '../src/data/images.js';
import { unpickle } from '../src/formats/pickle.js';
import { readSafetensorsFromBuffer } from '../src/formats/safetensors.js';
import { readPytorchCheckpointFromBuffer } from '../src/formats/pytorch.js';
import { crc32, crc32Table, openZip } from '../src/formats/zip.js';
import { throwsUser } from './helpers/assert-errors.js';
import { fixturePath, ROOT } from './helpers/fixtures.js';
import { OP, P, buildCheckpoint, buildZip, bytesOf, pk, stateDictPickle, tensorPickle, type FakeTensor } from './helpers/format-builders.js';

// Limits are on this process's CPU time, which other work on the machine does not inflate (the
// readers run on this one thread); wall time only has to stay clear of a hang.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};

/** Runs fn, asserting it takes under `ms` milliseconds of CPU. */
function quickly<T>(ms: number, fn: () => T): T {
  const start = process.cpuUsage();
  const wall = performance.now();
  try {
    return fn();
  } finally {
    const took = cpuMs(start);
    assert.ok(took < ms && performance.now() - wall < 20 * ms, `took ${took.toFixed(0)} ms of CPU (limit ${ms})`);
  }
}

async function quicklyRejects(ms: number, promise: () => Promise<unknown>, message: string | RegExp): Promise<void> {
  const start = process.cpuUsage();
  const wall = performance.now();
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${(e as Error)?.stack ?? String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
  const took = cpuMs(start);
  assert.ok(took < ms && performance.now() - wall < 20 * ms, `took ${took.toFixed(0)} ms of CPU (limit ${ms})`);
}

const dir = mkdtempSync(join(tmpdir(), 'convnext-hostile-'));
const writers: ChildProcess[] = [];
after(() => {
  for (const w of writers) w.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** A folder under the test's tmpdir. */
function folder(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/**
 * A FIFO at `path`, with a writer that connects to it and hangs up after 3 s: a reader that
 * opens it (the old behaviour) then takes 3 s and gets no data, instead of hanging the suite.
 */
function fifo(path: string): string {
  execFileSync('mkfifo', [path]);
  writers.push(spawn('sh', ['-c', 'exec sleep 3 > "$1"', 'sh', path], { stdio: 'ignore' }));
  return path;
}
const noFifos = process.platform === 'win32' ? 'no FIFOs on Windows' : false;

const f32 = (...v: number[]) => bytesOf(new Float32Array(v));
const T = (storageNumel: number, offset: number, size: number[], stride: number[]): FakeTensor =>
  ({ storageType: 'FloatStorage', key: '0', storageNumel, offset, size, stride });
const oneTensor = (key = '0', numel = 1) => stateDictPickle([['w', { ...T(numel, 0, [numel], [1]), key }]]);
const readCk = (bytes: Uint8Array) => readPytorchCheckpointFromBuffer(bytes, 'ck.pth');
const load = (...chunks: Parameters<typeof pk>) => unpickle(pk(P.proto(2), ...chunks, OP.STOP), { where: 'x.pkl' });

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

describe('hostile safetensors', () => {
  it('refuses a header that lists one data range many times', () => {
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) header[`w${i}`] = { dtype: 'F64', shape: [1 << 17], data_offsets: [0, 1 << 20] };
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const file = Buffer.concat([len, json, Buffer.alloc(1 << 20)]);
    quickly(500, () => throwsUser(() => readSafetensorsFromBuffer(file, 'x.safetensors'), InputError,
      "x.safetensors: invalid safetensors file (tensors 'w0' and 'w1' share bytes)"));
  });
});

describe('hostile pickles', () => {
  /** {'a': d, 'b': d} where d is the level below, `levels` deep, via the memo: 2^levels names. */
  function sharedTower(levels: number): Uint8Array {
    const parts: Uint8Array[] = [pk(OP.EMPTY_DICT, P.binunicode('w'), tensorPickle(T(1, 0, [1], [1])), OP.SETITEM, P.longBinput(0))];
    for (let i = 1; i <= levels; i++) {
      parts.push(pk(OP.POP, OP.EMPTY_DICT, OP.MARK, P.binunicode('a'), P.longBinget(i - 1), P.binunicode('b'), P.longBinget(i - 1), OP.SETITEMS, P.longBinput(i)));
    }
    return pk(P.proto(2), ...parts, OP.STOP);
  }

  it('a memo that shares one dict at every level does not make flattening exponential', () => {
    const pickle = sharedTower(40);
    assert.ok(pickle.length < 2000);
    quickly(1000, () => throwsUser(() => readCk(buildCheckpoint(pickle, { 0: f32(1) })), InputError,
      /^ck\.pth: nested dicts are shared so often that flattening them visits over \d+ entries$/));
    // Sharing a whole state dict once or twice (model and EMA alike) still reads.
    assert.deepEqual([...readCk(buildCheckpoint(sharedTower(2), { 0: f32(1) })).keys()], ['a.a.w', 'a.b.w', 'b.a.w', 'b.b.w']);
  });

  it('copying one shared container over and over is bounded by the pickle size', () => {
    const big = pk(OP.MARK, new Uint8Array(100_000).fill(OP.NONE), OP.LIST, P.binput(0));
    const text = pk(P.binunicode('x'.repeat(100_000)), P.binput(0));
    const cases: [string, Uint8Array, Uint8Array][] = [
      ['list()', big, pk(P.global('builtins', 'list'), P.binput(1), OP.POP)],
      ['dict()', pk(OP.EMPTY_DICT, OP.MARK, ...Array.from({ length: 40_000 }, (_, i) => pk(P.binint(i), OP.NONE)), OP.SETITEMS, P.binput(0)),
        pk(P.global('collections', 'OrderedDict'), P.binput(1), OP.POP)],
      ['_codecs.encode', text, pk(P.global('_codecs', 'encode'), P.binput(1), OP.POP, P.binunicode('latin1'), P.binput(2), OP.POP)],
    ];
    for (const [what, shared, fn] of cases) {
      const call = what === '_codecs.encode' ? pk(P.binget(1), P.binget(0), P.binget(2), OP.TUPLE2, OP.REDUCE, OP.POP) : pk(P.binget(1), P.binget(0), OP.TUPLE1, OP.REDUCE, OP.POP);
      const bytes = pk(P.proto(2), shared, OP.POP, fn, ...Array.from({ length: 20_000 }, () => call), OP.NONE, OP.STOP);
      quickly(1000, () => throwsUser(() => unpickle(bytes, { where: 'x.pkl' }), InputError,
        /^x\.pkl: corrupt pickle \(copies more than \d+ elements rebuilding shared objects, too many for a \d+-byte pickle\)$/));
      assert.ok(bytes.length < 400_000, what);
    }
  });

  it('huge integers are read in linear time, and past a limit refused', () => {
    const mib = new Uint8Array(1 << 20).fill(0x11);
    const le32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const v = quickly(500, () => load(OP.LONG4, le32(mib.length), mib));
    assert.equal(typeof v, 'bigint');
    throwsUser(() => load(OP.LONG4, le32(mib.length + 1), mib, 0), UnsupportedError, 'x.pkl: pickle holds a 1048577-byte integer (more than 1048576 bytes)');
    throwsUser(() => unpickle(pk(`I${'7'.repeat(5000)}\n`, OP.STOP), { where: 'x.pkl' }), UnsupportedError,
      'x.pkl: pickle holds a 5000-digit integer (more than 4300 digits)');
    assert.equal(unpickle(pk(`L${'9'.repeat(4300)}L\n`, OP.STOP), { where: 'x.pkl' }), 10n ** 4300n - 1n);
    // The text FLOAT pattern used to backtrack quadratically on a long run of digits.
    quickly(500, () => throwsUser(() => unpickle(pk(`F${'1'.repeat(200_000)}x\n`, OP.STOP), { where: 'x.pkl' }), InputError,
      /^x\.pkl: corrupt pickle \(bad FLOAT '1{40}…'\)$/));
  });

  it('storage sizes and offsets far beyond the file are refused before anything is allocated', () => {
    const one = (t: FakeTensor) => readCk(buildCheckpoint(stateDictPickle([['w', t]]), { 0: f32(1) }));
    quickly(200, () => {
      throwsUser(() => one(T(2 ** 52, 0, [1], [1])), InputError, "ck.pth: storage '0' has 4 bytes, its 4503599627370496 float32 elements need 18014398509481984");
      throwsUser(() => one(T(2 ** 60, 0, [1], [1])), InputError, 'ck.pth: corrupt pickle (bad storage key or size)');
      throwsUser(() => one(T(1, 2 ** 50, [1], [1])), InputError, "ck.pth: tensor 'w' (shape [1], offset 1125899906842624) reaches element 1125899906842624 of a 1-element storage");
      throwsUser(() => one(T(1, 0, [2 ** 40, 2 ** 40], [0, 0])), InputError, /^ck\.pth: tensor 'w' \(shape \[1099511627776, 1099511627776\], stride \[0, 0\]\) repeats/);
    });
  });

  it('a stride-0 view of 65536×65536 over one float is refused, not allocated', () => {
    quickly(200, () => throwsUser(() => readCk(buildCheckpoint(stateDictPickle([['w', T(1, 0, [65536, 65536], [0, 0])]]), { 0: f32(1) })), InputError,
      "ck.pth: tensor 'w' (shape [65536, 65536], stride [0, 0]) repeats the elements of a 1-element storage 4294967296 times over; " +
      'views larger than their storage are refused past 16777216 elements'));
    // A small expand() as real buffers have it still reads.
    const sd = readCk(buildCheckpoint(stateDictPickle([['w', T(1, 0, [3, 4], [0, 0])]]), { 0: f32(5) }));
    assert.deepEqual([...sd.get('w')!.data as Float32Array], new Array(12).fill(5));
  });

  it('copies of many large repeating views add up to a bounded total', () => {
    const views = Array.from({ length: 8 }, (_, i): [string, FakeTensor] => [`w${i}`, T(1, 0, [4096, 4096], [0, 0])]);
    quickly(3000, () => throwsUser(() => readCk(buildCheckpoint(stateDictPickle(views), { 0: f32(1) })), InputError,
      /^ck\.pth: tensor 'w4': the copied tensors \(gathered views, converted dtypes\) would take over \d+ bytes$/));
  });

  it('a deeply nested value where a persistent id belongs is described without recursion', () => {
    const nested = pk(OP.EMPTY_TUPLE, new Uint8Array(200_000).fill(OP.TUPLE1));
    const pickle = pk(P.proto(2), OP.EMPTY_DICT, P.binunicode('w'), P.global('torch._utils', '_rebuild_tensor_v2'),
      OP.MARK, nested, OP.TUPLE1, OP.BINPERSID, P.binint1(0), OP.EMPTY_TUPLE, OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE, OP.SETITEM, OP.STOP);
    throwsUser(() => readCk(buildCheckpoint(pickle, {})), InputError, 'ck.pth: corrupt pickle (unexpected persistent id a 1-tuple starting a tuple)');
  });
});

describe('small text inputs are read bounded: only regular files, at most 16 MiB of JSON', () => {
  const config = JSON.stringify({ model_type: 'convnext' });
  const hf = (name: string, files: Record<string, string | ((path: string) => void)>): string => {
    const d = folder(name);
    for (const [file, content] of Object.entries(files)) {
      if (typeof content === 'string') writeFileSync(join(d, file), content);
      else content(join(d, file));
    }
    return d;
  };
  const toZero = (path: string) => symlinkSync('/dev/zero', path);

  it('/dev/zero as config.json is refused at once', { skip: noFifos }, async () => {
    const d = hf('zero-config', { 'config.json': toZero });
    await quicklyRejects(2000, () => readHfFolder(d), `${d}/config.json: is not a regular file (a character device)`);
  });

  it('a FIFO as config.json, preprocessor_config.json, shard index or weights is refused without blocking', { skip: noFifos }, async () => {
    const cases: [string, Record<string, string | ((path: string) => void)>, string][] = [
      ['fifo-config', { 'config.json': fifo }, 'config.json'],
      ['fifo-preproc', { 'config.json': config, 'preprocessor_config.json': fifo }, 'preprocessor_config.json'],
      ['fifo-index', { 'config.json': config, 'model.safetensors.index.json': fifo }, 'model.safetensors.index.json'],
      ['fifo-weights', { 'config.json': config, 'model.safetensors': fifo }, 'model.safetensors'],
    ];
    for (const [name, files, culprit] of cases) {
      const d = hf(name, files);
      await quicklyRejects(2000, () => readHfFolder(d), `${d}/${culprit}: is not a regular file (a FIFO)`);
    }
  });

  it('the CLI refuses a FIFO config.json with exit 2 and one line', { skip: noFifos }, () => {
    const d = hf('fifo-cli', { 'config.json': fifo });
    const start = performance.now();
    const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bin', 'convnext.js'), 'inspect', d], { encoding: 'utf8', timeout: 20_000 });
    assert.ok(performance.now() - start < 5000, 'refused without waiting for the writer');
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `error: ${d}/config.json: is not a regular file (a FIFO)\n`);
  });

  it('a config over 16 MiB is refused without reading it', async () => {
    const d = hf('big-config', { 'config.json': (p) => { writeFileSync(p, ''); truncateSync(p, 17 << 20); } });
    await quicklyRejects(2000, () => readHfFolder(d), `${d}/config.json: is 17825792 bytes, over the 16777216-byte limit for a JSON config`);
  });

  const preprocessing = { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  it('/dev/zero or a FIFO as labels (given, or as the folder\'s labels.txt) is refused at once', { skip: noFifos }, () => {
    const data = folder('labels-data');
    copyFileSync(fixturePath('fashion/val/test_00000.png'), join(data, 'a.png'));
    quickly(2000, () => throwsUser(() => openDataset(data, { preprocessing, labelsFile: '/dev/zero' }), InputError,
      '/dev/zero: is not a regular file (a character device)'));
    const zeroLabels = folder('labels-zero');
    toZero(join(zeroLabels, 'labels.txt'));
    quickly(2000, () => throwsUser(() => openDataset(zeroLabels, { preprocessing }), InputError,
      `${zeroLabels}/labels.txt: is not a regular file (a character device)`));
    const fifoLabels = folder('labels-fifo');
    fifo(join(fifoLabels, 'labels.txt'));
    quickly(2000, () => throwsUser(() => openDataset(fifoLabels, { preprocessing }), InputError,
      `${fifoLabels}/labels.txt: is not a regular file (a FIFO)`));
  });
});

describe('images', () => {
  it('a FIFO or a device named like an image is refused, not handed to the decoder', { skip: noFifos }, async () => {
    const preprocessing = { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    for (const [name, make, kind] of [['fifo', fifo, 'a FIFO'], ['zero', (p: string) => symlinkSync('/dev/zero', p), 'a character device']] as const) {
      const data = folder(`image-${name}`);
      make(join(data, 'x.png'));
      const batches = openDataset(data, { preprocessing }).batches(1);
      await quicklyRejects(2000, async () => { for await (const _ of batches); }, `${data}/x.png: is not a regular file (${kind})`);
    }
  });
});

describe('labels files', () => {
  it('are split as the old pattern split them, in linear time', () => {
    const old = (t: string) => { const m = t.match(/^(.+?)\s*[,\s]\s*([^,]+)$/); return m ? [m[1], m[2].trim()] : undefined; };
    const alphabet = ['a', 'b', '.', ' ', '  ', '\t', ',', '\u00a0'];
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    for (let i = 0; i < 20_000; i++) {
      const line = Array.from({ length: 1 + rand(10) }, () => alphabet[rand(alphabet.length)]).join('').trim();
      if (line) assert.deepEqual(splitLabelLine(line), old(line), JSON.stringify(line));
    }
    for (const line of ['a.png 3', 'a.png,3', 'my file.png,3', 'a.png , tabby cat', 'a.png\ttabby cat', 'a,b,c', ',a b', 'a.png,', 'a.png']) {
      assert.deepEqual(splitLabelLine(line), old(line), line);
    }
    const spaces = ' '.repeat(100_000);
    quickly(100, () => {
      assert.deepEqual(splitLabelLine(`a.png${spaces}3`), ['a.png', '3']);
      assert.equal(splitLabelLine(`a${spaces}b,`), undefined);
      assert.deepEqual(splitLabelLine(`a${spaces},${spaces}b`), ['a', 'b']);
    });
  });

  it('a line of 100,000 spaces, or one that is long and unsplittable, is handled at once', () => {
    const preprocessing = { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    const data = folder('labels-spaces');
    copyFileSync(fixturePath('fashion/val/test_00000.png'), join(data, 'a.png'));
    writeFileSync(join(data, 'labels.txt'), `${' '.repeat(100_000)}\na.png${' '.repeat(100_000)}3\n`);
    assert.equal(quickly(200, () => openDataset(data, { preprocessing })).size, 1);
    writeFileSync(join(data, 'labels.txt'), `a.png${' '.repeat(100_000)}3,\n`);
    quickly(200, () => throwsUser(() => openDataset(data, { preprocessing }), InputError,
      `${data}/labels.txt: line 1: expected "FILE LABEL", got "a.png${' '.repeat(75)}…"`));
  });

  it('entries that leave the data folder, by .., an absolute path or a symbolic link, are refused by name', () => {
    const preprocessing = { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    const root = folder('escape');
    const data = folder('escape/data');
    const png = fixturePath('fashion/val/test_00000.png');
    copyFileSync(png, join(root, 'outside.png'));
    copyFileSync(png, join(data, 'a.png'));
    mkdirSync(join(data, 'sub'));
    symlinkSync(join(root, 'outside.png'), join(data, 'link.png'));
    symlinkSync(root, join(data, 'up'));
    const labels = join(data, 'labels.txt');
    const cases: [string, string][] = [
      ['../outside.png', "labels entry '../outside.png' points outside the data folder"],
      [join(root, 'outside.png'), "labels entry '../outside.png' points outside the data folder"],
      ['/etc/passwd', `labels entry '${relative(data, '/etc/passwd')}' points outside the data folder`],
      ['link.png', "labels entry 'link.png' points outside the data folder (through a symbolic link)"],
      ['up/outside.png', "labels entry 'up/outside.png' points outside the data folder (through a symbolic link)"],
      ['up/data/../outside.png', "labels entry 'up/data/../outside.png' points outside the data folder (through a symbolic link)"],
    ];
    for (const [entry, message] of cases) {
      writeFileSync(labels, `a.png 1\n${entry} 2\n`);
      throwsUser(() => openDataset(data, { preprocessing }), InputError, `${labels}: ${message}`);
    }
    writeFileSync(labels, `a.png 1\nsub/../a.png 2\n${join(data, 'a.png')} 3\n`);
    assert.equal(openDataset(data, { preprocessing }).size, 2);
  });
});

describe('Hugging Face configs are checked field by field', () => {
  const base = { model_type: 'convnext' };
  /** A folder with these files (objects are written as JSON), and what readHfFolder refuses it with. */
  async function refused(name: string, files: Record<string, unknown>, culprit: string, message: string): Promise<void> {
    const d = folder(`hf-${name}`);
    for (const [file, content] of Object.entries(files)) writeFileSync(join(d, file), typeof content === 'string' ? content : JSON.stringify(content));
    await quicklyRejects(2000, () => readHfFolder(d), `${d}/${culprit}: ${message}`);
  }

  it('config.json: an object, with eps in (0, 0.1), image_size a whole number up to 16384, and sane lists', async () => {
    let n = 0;
    const config = async (content: unknown, message: string) => refused(`config-${n++}`, { 'config.json': content }, 'config.json', message);
    await config('null', 'config is not a JSON object');
    await config('[]', 'config is not a JSON object');
    for (const eps of ['0', '-0.5', '0.1', '1', '1e999', '"1e-6"']) {
      const shownEps = eps === '1e999' ? 'Infinity' : eps;
      await config(`{"model_type": "convnext", "layer_norm_eps": ${eps}}`, `layer_norm_eps must be a number between 0 and 0.1 (exclusive), got ${shownEps}`);
    }
    for (const size of [0, -1, 1.5, 1e9, '224']) {
      await config({ ...base, image_size: size }, `image_size must be an integer from 1 to 16384, got ${JSON.stringify(size)}`);
    }
    await config({ ...base, depths: [3, 0, 9, 3] }, 'depths must be a list of integers from 1 to 1000, got [3,0,9,3]');
    await config({ ...base, hidden_sizes: 'wide' }, 'hidden_sizes must be a list of integers from 1 to 65536, got "wide"');
    await config({ ...base, num_labels: -3 }, 'num_labels must be an integer from 0 to 1000000, got -3');
    await config({ ...base, id2label: ['cat'] }, 'id2label must be an object of class names, got ["cat"]');
    await config({ ...base, id2label: { 0: 'cat', '00': 'dog' } }, 'id2label has a bad id "00"');
    await config({ ...base, id2label: { 0: { name: 'cat' } } }, 'id2label[0] must be a class name, got {"name":"cat"}');
  });

  it('preprocessor_config.json: mean and std three finite numbers (std > 0), crop_pct in (0, 1], sizes and resample whole numbers', async () => {
    let n = 0;
    const preproc = async (content: unknown, message: string) =>
      refused(`preproc-${n++}`, { 'config.json': base, 'preprocessor_config.json': content }, 'preprocessor_config.json', message);
    await preproc('null', 'preprocessor config is not a JSON object');
    await preproc({ image_mean: [0.5, 0.5] }, 'image_mean must be a list of three finite numbers, got [0.5,0.5]');
    await preproc({ image_mean: [0.5, 'x', 0.5] }, 'image_mean must be a list of three finite numbers, got [0.5,"x",0.5]');
    await preproc({ image_std: [0.5, 0, 0.5] }, 'image_std must be a list of three positive numbers, got [0.5,0,0.5]');
    for (const pct of [0, -0.5, 1.5]) await preproc({ crop_pct: pct }, `crop_pct must be a number in (0, 1], got ${pct}`);
    await preproc({ size: { shortest_edge: 0 } }, 'shortest_edge must be an integer from 1 to 16384, got 0');
    await preproc({ size: '224' }, 'size must be an integer or an object with shortest_edge, got "224"');
    await preproc({ resample: 7 }, 'resample must be an integer from 0 to 5, got 7');
  });

  it('a shard index must map tensors to file names in the folder', async () => {
    let n = 0;
    const index = async (content: unknown, message: string) =>
      refused(`index-${n++}`, { 'config.json': base, 'model.safetensors.index.json': content }, 'model.safetensors.index.json', message);
    await index('null', 'shard index has no weight_map object (got null)');
    await index({ weight_map: null }, 'shard index has no weight_map object (got null)');
    await index({ weight_map: ['a.safetensors'] }, 'shard index has no weight_map object (got ["a.safetensors"])');
    await index({ weight_map: {} }, 'shard index has an empty weight_map');
    await index({ weight_map: { w: 5 } }, 'weight_map names a shard 5, not a file name');
    await index({ weight_map: { w: '../model.safetensors' } }, 'shard name "../model.safetensors" points outside the folder');
    await index({ weight_map: { w: '..' } }, 'shard name ".." points outside the folder');
  });

  it('missing and null fields take their defaults', async () => {
    const d = folder('hf-nulls');
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...base, layer_norm_eps: null, image_size: null, id2label: { 1: 'dog', 0: 'cat' } }));
    writeFileSync(join(d, 'preprocessor_config.json'), JSON.stringify({ crop_pct: null, size: { height: 224, width: 224 }, resample: 1 }));
    copyFileSync(fixturePath('v1/hf/model.safetensors'), join(d, 'model.safetensors'));
    const { config, preprocessing } = await readHfFolder(d);
    assert.deepEqual([config.layerNormEps, config.imageSize, config.labels, config.numLabels], [1e-12, undefined, ['cat', 'dog'], 2]);
    assert.deepEqual(preprocessing, { cropPct: undefined, shortestEdge: undefined, mean: undefined, std: undefined, interpolation: undefined });
  });
});
