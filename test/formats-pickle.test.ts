import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError, UnsupportedError } from '../src/errors.js';
import { InertObject, PyGlobal, TensorRecord, TorchDTypeToken, unpickle, type UnpickleOptions } from '../src/formats/pickle.js';
import { CPYTHON_PICKLES } from './helpers/cpython-pickles.js';
import { OP, P, pk, stateDictPickle, tensorPickle } from './helpers/format-builders.js';
import { throwsUser } from './helpers/assert-errors.js';

const load = (bytes: Uint8Array, opts: Partial<UnpickleOptions> = {}) => unpickle(bytes, { where: 'test.pkl', ...opts });
/** A protocol-2 pickle of the value the chunks push. */
const v2 = (...chunks: Parameters<typeof pk>) => load(pk(P.proto(2), ...chunks, OP.STOP));


test('scalars: none, bools, ints of every width, floats', () => {
  assert.equal(v2(OP.NONE), null);
  assert.equal(v2(OP.NEWTRUE), true);
  assert.equal(v2(OP.NEWFALSE), false);
  assert.equal(v2(P.binint(-5)), -5);
  assert.equal(v2(P.binint(0x7fffffff)), 2147483647);
  assert.equal(v2(P.binint1(255)), 255);
  assert.equal(v2(P.binint2(65535)), 65535);
  assert.equal(v2(pk(OP.LONG1, 0)), 0);
  assert.equal(v2(P.long1(-1n)), -1);
  assert.equal(v2(P.long1(2n ** 40n)), 2 ** 40);
  assert.equal(v2(P.long1(2n ** 70n)), 2n ** 70n);
  assert.equal(v2(P.long1(-(2n ** 64n))), -(2n ** 64n));
  assert.equal(v2(P.long4(123456789012345n)), 123456789012345);
  assert.equal(v2(P.binfloat(1.5)), 1.5);
  assert.equal(v2(P.binfloat(-0.1)), -0.1);
  assert.ok(Object.is(v2(P.binfloat(-0)), -0));
});

test('protocol 0 text opcodes', () => {
  assert.equal(load(pk('I42\n', OP.STOP)), 42);
  assert.equal(load(pk('I-7\n', OP.STOP)), -7);
  assert.equal(load(pk('I01\n', OP.STOP)), true);
  assert.equal(load(pk('I00\n', OP.STOP)), false);
  assert.equal(load(pk('L1180591620717411303424L\n', OP.STOP)), 2n ** 70n);
  assert.equal(load(pk('F2.25\n', OP.STOP)), 2.25);
  assert.equal(load(pk('Finf\n', OP.STOP)), Infinity);
  assert.ok(Number.isNaN(load(pk('Fnan\n', OP.STOP))));
  assert.equal(load(pk('Vh\xe9\\u2713\n', OP.STOP)), 'hé✓');
  assert.equal(load(pk("S'it\\'s\\n'\n", OP.STOP)), "it's\n");
  assert.equal(load(pk('S"\\x41b"\n', OP.STOP)), 'Ab');
  assert.deepEqual(load(pk('(I1\nI2\nl', OP.STOP)), [1, 2]);
  assert.deepEqual(load(pk('(Va\nI1\nd', OP.STOP)), new Map([['a', 1]]));
  assert.deepEqual(load(pk('(I1\nI2\nt', OP.STOP)), [1, 2]);
  // PUT/GET: the same list twice.
  const shared = load(pk('(lp0\n(lp1\nag1\na', OP.STOP)) as unknown[];
  assert.equal(shared.length, 2);
  assert.equal(shared[0], shared[1]);
});

test('strings and bytes', () => {
  assert.equal(v2(P.binunicode('héllo ✓')), 'héllo ✓');
  assert.equal(v2(P.shortBinunicode('stem.0.weight')), 'stem.0.weight');
  assert.equal(v2(P.binunicode8('x'.repeat(300))), 'x'.repeat(300));
  assert.equal(v2(pk(OP.SHORT_BINSTRING, 3, 'a\xffc')), 'a\xffc');
  assert.equal(v2(pk(OP.BINSTRING, [2, 0, 0, 0], 'ok')), 'ok');
  assert.deepEqual(v2(P.binbytes([0, 255, 7])), new Uint8Array([0, 255, 7]));
  assert.deepEqual(v2(P.shortBinbytes([1])), new Uint8Array([1]));
  assert.deepEqual(v2(P.binbytes8([9, 8])), new Uint8Array([9, 8]));
  assert.deepEqual(v2(pk(P.bytearray8([5]), OP.READONLY_BUFFER)), new Uint8Array([5]));
  // Protocol 2 writes Python 3 bytes as _codecs.encode(text, 'latin1').
  assert.deepEqual(v2(P.global('_codecs', 'encode'), P.binunicode('\u0000\u00ffab'), P.binunicode('latin1'), OP.TUPLE2, OP.REDUCE),
    new Uint8Array([0, 255, 97, 98]));
});

test('containers: lists, dicts, tuples, sets', () => {
  assert.deepEqual(v2(OP.EMPTY_LIST, P.binint1(1), OP.APPEND, OP.MARK, P.binint1(2), P.binint1(3), OP.APPENDS), [1, 2, 3]);
  assert.deepEqual(v2(OP.MARK, P.binint1(4), OP.LIST), [4]);
  assert.deepEqual(v2(OP.EMPTY_DICT, P.binunicode('a'), P.binint1(1), OP.SETITEM,
    OP.MARK, P.binunicode('b'), OP.NONE, P.binint1(7), OP.NEWTRUE, OP.SETITEMS), new Map<unknown, unknown>([['a', 1], ['b', null], [7, true]]));
  assert.deepEqual(v2(OP.MARK, P.binunicode('k'), P.binint1(2), OP.DICT), new Map([['k', 2]]));
  const tuples = v2(OP.MARK, OP.EMPTY_TUPLE, P.binint1(1), OP.TUPLE1, P.binint1(1), P.binint1(2), OP.TUPLE2,
    P.binint1(1), P.binint1(2), P.binint1(3), OP.TUPLE3, OP.LIST);
  assert.ok(Array.isArray(tuples));
  const [t0, t1, t2, t3] = tuples as unknown[][];
  assert.deepEqual([t0, t1, t2, t3], [[], [1], [1, 2], [1, 2, 3]]);
  for (const t of [t0, t1, t2, t3]) assert.ok(Object.isFrozen(t), 'tuples are frozen');
  assert.deepEqual(v2(OP.MARK, P.binint1(1), P.binint1(2), P.binint1(3), P.binint1(4), OP.TUPLE), [1, 2, 3, 4]);
  assert.deepEqual(v2(OP.EMPTY_SET, OP.MARK, P.binint1(1), P.binint1(2), OP.ADDITEMS), new Set([1, 2]));
  assert.deepEqual(v2(OP.MARK, P.binint1(3), OP.FROZENSET), new Set([3]));
  assert.deepEqual(v2(P.global('__builtin__', 'set'), OP.MARK, P.binint1(5), OP.LIST, OP.TUPLE1, OP.REDUCE), new Set([5]));
});

test('stack opcodes: MARK, POP, POP_MARK, DUP', () => {
  assert.equal(v2(P.binint1(1), P.binint1(2), OP.POP), 1);
  assert.equal(v2(P.binint1(1), OP.MARK, P.binint1(2), P.binint1(3), OP.POP_MARK), 1);
  assert.deepEqual(v2(P.binint1(6), OP.DUP, OP.TUPLE2), [6, 6]);
});

test('memo: BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, MEMOIZE keep identity', () => {
  const a = v2(OP.MARK, OP.EMPTY_LIST, P.binput(3), OP.EMPTY_LIST, P.longBinput(0xffffffff),
    P.binget(3), P.longBinget(0xffffffff), OP.TUPLE) as unknown[][];
  assert.equal(a.length, 4);
  assert.equal(a[0], a[2]);
  assert.equal(a[1], a[3]);
  assert.notEqual(a[0], a[1]);
  const b = load(pk(P.proto(4), OP.EMPTY_DICT, OP.MEMOIZE, P.shortBinunicode('k'), OP.MEMOIZE, P.binget(0), OP.SETITEM, OP.STOP)) as Map<unknown, unknown>;
  assert.equal(b.get('k'), b, 'a dict that contains itself');
});

test('protocol 4 frames and STACK_GLOBAL', () => {
  const body = pk(P.stackGlobal('collections', 'OrderedDict'), OP.MEMOIZE, OP.EMPTY_TUPLE, OP.REDUCE, OP.MEMOIZE, OP.STOP);
  const v = load(pk(P.proto(4), P.frame(body.length), body));
  assert.deepEqual(v, new Map());
  throwsUser(() => load(pk(P.proto(4), P.frame(body.length + 1), body)), InputError, /^test\.pkl: truncated pickle \(frame of/);
});

test('CPython pickles of protocols 0–5 decode to the same values', () => {
  for (const [proto, hex] of Object.entries(CPYTHON_PICKLES)) {
    const v = load(Buffer.from(hex, 'hex')) as Map<string, unknown>;
    assert.deepEqual([...v.keys()], ['a', 'neg', 'big', 'nbig', 'f', 'inf', 's', 'b', 't', 'l', 'd', 'set', 'fs', 'args'], `protocol ${proto}`);
    assert.equal(v.get('a'), 1);
    assert.equal(v.get('neg'), -70000);
    assert.equal(v.get('big'), 2n ** 70n);
    assert.equal(v.get('nbig'), -(2n ** 64n));
    assert.equal(v.get('f'), 1.5);
    assert.equal(v.get('inf'), Infinity);
    assert.equal(v.get('s'), 'héllo ✓');
    assert.deepEqual(v.get('b'), new Uint8Array([0, 255, 97, 98]));
    assert.deepEqual(v.get('t'), [1, 'x', null, true, false]);
    const l = v.get('l') as unknown[];
    assert.deepEqual(l, [[1, 2], [1, 2], []]);
    assert.equal(l[0], l[1], `protocol ${proto}: memo keeps shared references`);
    assert.deepEqual(v.get('d'), new Map([['x', new Map([['y', [3]]])]]));
    assert.deepEqual(v.get('set'), new Set([7]));
    assert.deepEqual(v.get('fs'), new Set([8]));
    const args = v.get('args');
    assert.ok(args instanceof InertObject && args.pyName === 'argparse.Namespace');
    assert.deepEqual(args.attrs, new Map<string, unknown>([['lr', 0.004], ['model', 'convnext_tiny'], ['drop_path', 0.1]]));
  }
});

test('objects: NEWOBJ + BUILD, NEWOBJ_EX, OBJ, INST, copyreg._reconstructor', () => {
  const ns = v2(P.global('argparse', 'Namespace'), OP.EMPTY_TUPLE, OP.NEWOBJ,
    OP.EMPTY_DICT, P.binunicode('lr'), P.binfloat(0.5), OP.SETITEM, OP.BUILD);
  assert.ok(ns instanceof InertObject);
  assert.deepEqual(ns.attrs, new Map([['lr', 0.5]]));
  const ex = v2(P.global('argparse', 'Namespace'), OP.EMPTY_TUPLE, OP.EMPTY_DICT, OP.NEWOBJ_EX);
  assert.ok(ex instanceof InertObject && ex.pyName === 'argparse.Namespace');
  const obj = load(pk(OP.MARK, P.global('argparse', 'Namespace'), OP.OBJ, OP.STOP));
  assert.ok(obj instanceof InertObject);
  const inst = load(pk(OP.MARK, OP.INST, 'argparse\nNamespace\n', OP.STOP));
  assert.ok(inst instanceof InertObject);
  const rec = load(pk(P.global('copy_reg', '_reconstructor'), OP.MARK, P.global('argparse', 'Namespace'),
    P.global('__builtin__', 'object'), OP.NONE, OP.TUPLE, OP.REDUCE, OP.STOP));
  assert.ok(rec instanceof InertObject && rec.pyName === 'argparse.Namespace');
  // OrderedDict state (state_dict()._metadata) is dropped, the items stay.
  const od = v2(P.global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, P.binunicode('w'), P.binint1(1), OP.SETITEM,
    OP.EMPTY_DICT, P.binunicode('_metadata'), OP.EMPTY_DICT, OP.SETITEM, OP.BUILD);
  assert.deepEqual(od, new Map([['w', 1]]));
  // Attribute state as (dict, slots); any other state is kept whole, never interpreted.
  const slots = v2(P.global('argparse', 'Namespace'), OP.EMPTY_TUPLE, OP.NEWOBJ,
    OP.NONE, OP.EMPTY_DICT, P.binunicode('x'), P.binint1(1), OP.SETITEM, OP.TUPLE2, OP.BUILD) as InertObject;
  assert.deepEqual(slots.attrs, new Map([['x', 1]]));
  const dtype = v2(P.global('numpy', 'dtype'), P.binunicode('f8'), OP.NEWFALSE, OP.NEWTRUE, OP.TUPLE3, OP.REDUCE,
    P.binint1(3), P.binunicode('<'), OP.NONE, OP.TUPLE3, OP.BUILD) as InertObject;
  assert.deepEqual([dtype.pyName, dtype.args, dtype.attrs], ['numpy.dtype', ['f8', false, true], new Map([['__state__', [3, '<', null]]])]);
  assert.ok(v2(P.global('torch', 'float16')) instanceof TorchDTypeToken);
  assert.equal((v2(P.global('torch', 'BFloat16Storage')) as TorchDTypeToken).dtype, 'bfloat16');
  assert.ok(v2(P.global('torch', 'Tensor')) instanceof PyGlobal);
});

test('persistent ids go to the loader; torch tensors become TensorRecords', () => {
  const seen: unknown[] = [];
  const persistentLoad = (pid: unknown) => {
    seen.push(pid);
    return { storage: (pid as unknown[])[2] };
  };
  const t = load(pk(P.proto(2), tensorPickle({ storageType: 'HalfStorage', key: '7', storageNumel: 12, offset: 2, size: [2, 3], stride: [1, 2] }), OP.STOP), { persistentLoad });
  assert.ok(t instanceof TensorRecord);
  assert.deepEqual(t.storage, { storage: '7' });
  assert.equal(t.storageOffset, 2);
  assert.deepEqual(t.size, [2, 3]);
  assert.deepEqual(t.stride, [1, 2]);
  assert.equal(t.dtype, undefined);
  assert.equal(seen.length, 1);
  const pid = seen[0] as unknown[];
  assert.deepEqual([pid[0], (pid[1] as TorchDTypeToken).pyName, (pid[1] as TorchDTypeToken).dtype, pid[2], pid[3], pid[4]],
    ['storage', 'torch.HalfStorage', 'float16', '7', 'cpu', 12]);
  assert.equal(load(pk(OP.PERSID, 'abc\n', OP.STOP), { persistentLoad: (p) => `got ${String(p)}` }), 'got abc');

  // Parameters unwrap; _rebuild_from_type_v2 calls its allowlisted function; v3 carries a dtype.
  const inner = tensorPickle({ storageType: 'FloatStorage', key: '0', storageNumel: 4, offset: 0, size: [4], stride: [1] });
  const param = load(pk(P.proto(2), P.global('torch._utils', '_rebuild_parameter'), OP.MARK, inner, OP.NEWTRUE,
    P.global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE, OP.STOP), { persistentLoad });
  assert.ok(param instanceof TensorRecord);
  assert.deepEqual(param.size, [4]);
  const withState = load(pk(P.proto(2), P.global('torch._utils', '_rebuild_parameter_with_state'), OP.MARK, inner, OP.NEWTRUE,
    OP.EMPTY_DICT, OP.EMPTY_DICT, OP.TUPLE, OP.REDUCE, OP.STOP), { persistentLoad });
  assert.ok(withState instanceof TensorRecord);
  const fromType = load(pk(P.proto(2), P.global('torch._tensor', '_rebuild_from_type_v2'), OP.MARK,
    P.global('torch._utils', '_rebuild_tensor_v2'), P.global('torch.nn.parameter', 'Parameter'),
    OP.MARK, OP.MARK, P.binunicode('storage'), P.global('torch', 'FloatStorage'), P.binunicode('0'), P.binunicode('cpu'), P.binint1(4), OP.TUPLE, OP.BINPERSID,
    P.binint1(1), P.binint1(3), OP.TUPLE1, P.binint1(1), OP.TUPLE1, OP.NEWFALSE, OP.NONE, OP.TUPLE,
    OP.EMPTY_DICT, OP.TUPLE, OP.REDUCE, OP.STOP), { persistentLoad });
  assert.ok(fromType instanceof TensorRecord);
  assert.equal(fromType.storageOffset, 1);
  const v3 = load(pk(P.proto(2), P.global('torch._utils', '_rebuild_tensor_v3'), OP.MARK,
    OP.MARK, P.binunicode('storage'), P.global('torch', 'UntypedStorage'), P.binunicode('0'), P.binunicode('cpu'), P.binint1(8), OP.TUPLE, OP.BINPERSID,
    P.binint1(0), P.binint1(2), OP.TUPLE1, P.binint1(1), OP.TUPLE1, OP.NEWFALSE, OP.NONE, P.global('torch', 'float32'), OP.TUPLE, OP.REDUCE, OP.STOP), { persistentLoad });
  assert.ok(v3 instanceof TensorRecord);
  assert.equal(v3.dtype, 'float32');
});

// ------------------------------------------------------------------------------------------------
// Refusals

test("a forbidden global is refused by name, via GLOBAL and via STACK_GLOBAL, and nothing runs", () => {
  const dir = mkdtempSync(join(tmpdir(), 'pickle-test-'));
  try {
    const marker = join(dir, 'pwned');
    const payloads = [
      pk(P.proto(2), P.global('os', 'system'), P.binunicode(`touch ${marker}`), OP.TUPLE1, OP.REDUCE, OP.STOP),
      pk(P.proto(4), P.stackGlobal('os', 'system'), P.shortBinunicode(`touch ${marker}`), OP.TUPLE1, OP.REDUCE, OP.STOP),
      pk(OP.MARK, OP.INST, 'os\nsystem\n', OP.STOP),
    ];
    for (const bytes of payloads) {
      let loaderCalls = 0;
      throwsUser(() => unpickle(bytes, { where: 'checkpoint.pth', persistentLoad: () => loaderCalls++ }), UnsupportedError,
        "checkpoint.pth: refusing to load global 'os.system': not part of a state dict (nothing in a checkpoint is executed)");
      assert.equal(loaderCalls, 0);
    }
    assert.equal(existsSync(marker), false, 'the command did not run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [module, name] of [['builtins', 'eval'], ['__builtin__', 'exec'], ['subprocess', 'Popen'], ['posix', 'system'],
    ['builtins', 'getattr'], ['torch', 'load'], ['torch.storage', '_load_from_bytes'], ['numpy.core.multiarray', '_reconstruct']]) {
    const shown = module === '__builtin__' ? 'builtins' : module;
    throwsUser(() => v2(P.global(module, name)), UnsupportedError, new RegExp(`^test\\.pkl: refusing to load global '${shown.replace(/\./g, '\\.')}\\.${name}'`));
  }
});

test('a pickled model object gets a hint to save the state dict', () => {
  for (const [module, name] of [['torch.nn.modules.conv', 'Conv2d'], ['timm.models.convnext', 'ConvNeXt'],
    ['models.convnext', 'ConvNeXt'], ['torchvision.models.convnext', 'ConvNeXt'], ['__main__', 'ConvNeXt']]) {
    throwsUser(() => v2(P.global(module, name)), UnsupportedError,
      `test.pkl: refusing to load global '${module}.${name}': not part of a state dict (nothing in a checkpoint is executed); ` +
      'this file holds a pickled model object; save model.state_dict() instead');
  }
  throwsUser(() => v2(P.global('torch', 'ComplexFloatStorage')), UnsupportedError, "test.pkl: tensor storage type 'torch.ComplexFloatStorage' is not supported");
});

test('unsupported protocol features', () => {
  throwsUser(() => load(pk(P.proto(6), OP.NONE, OP.STOP)), UnsupportedError, 'test.pkl: pickle protocol 6 is not supported');
  throwsUser(() => load(pk(P.proto(2), OP.EXT1, 1, OP.STOP)), UnsupportedError, 'test.pkl: pickle uses the copyreg extension registry (EXT1/2/4)');
  throwsUser(() => load(pk(P.proto(5), OP.NEXT_BUFFER, OP.STOP)), UnsupportedError, 'test.pkl: pickle uses out-of-band buffers (NEXT_BUFFER)');
});

test('malformed pickles are InputErrors', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', pk(), /truncated pickle \(ends at byte 0 without STOP\)/],
    ['unknown opcode', pk(P.proto(2), 0xff), /corrupt pickle \(unknown opcode 0xff at byte 2\)/],
    ['stack underflow', pk(OP.POP, OP.STOP), /stack underflow at opcode 0x30 at byte 0/],
    ['pop below a mark', pk(OP.NONE, OP.MARK, OP.POP, OP.STOP), /stack underflow/],
    ['tuple without mark', pk(OP.NONE, OP.TUPLE, OP.STOP), /no MARK for opcode 0x74/],
    ['memo miss', pk(P.binget(9), OP.STOP), /memo key 9 is not set/],
    ['text memo index', pk('g-1\n', OP.STOP), /bad memo index '-1'/],
    ['setitem on a list', pk(OP.EMPTY_LIST, OP.NONE, OP.NONE, OP.SETITEM, OP.STOP), /SETITEM\(S\) on a list/],
    ['append to a tuple', pk(OP.EMPTY_TUPLE, OP.NONE, OP.APPEND, OP.STOP), /APPEND\(S\) on a tuple/],
    ['odd setitems', pk(OP.EMPTY_DICT, OP.MARK, OP.NONE, OP.SETITEMS, OP.STOP), /odd number/],
    ['reduce a string', pk(P.binunicode('x'), OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP), /REDUCE of something that cannot be called \(string\)/],
    ['reduce a storage type', pk(P.global('torch', 'FloatStorage'), OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP), /cannot be called \(torch\.FloatStorage\)/],
    ['reduce with None', pk(P.global('collections', 'OrderedDict'), OP.NONE, OP.REDUCE, OP.STOP), /REDUCE arguments are not a tuple/],
    ['build on a list', pk(OP.EMPTY_LIST, OP.EMPTY_DICT, OP.BUILD, OP.STOP), /BUILD on a list/],
    ['two values at STOP', pk(OP.NONE, OP.NONE, OP.STOP), /STOP with 2 items/],
    ['open mark at STOP', pk(OP.NONE, OP.MARK, OP.STOP), /STOP with/],
    ['persistent id without loader', pk(OP.NONE, OP.BINPERSID, OP.STOP), /persistent id without a persistent loader/],
    ['huge BINUNICODE8', pk(OP.BINUNICODE8, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], OP.STOP), /truncated pickle/],
    ['negative LONG4', pk(OP.LONG4, [0xff, 0xff, 0xff, 0xff], OP.STOP), /negative LONG4 length/],
    ['negative BINSTRING', pk(OP.BINSTRING, [0xff, 0xff, 0xff, 0xff], OP.STOP), /truncated pickle/],
    ['bad text INT', pk('Ix\n', OP.STOP), /bad INT 'x'/],
    ['bad text FLOAT', pk('F\n', OP.STOP), /bad FLOAT ''/],
    ['unquoted STRING', pk('Sabc\n', OP.STOP), /not quoted/],
    ['line without newline', pk('I12'), /has no end of line/],
    ['tensor size not ints', pk(P.global('torch._utils', '_rebuild_tensor_v2'), OP.MARK, OP.NONE, P.binint1(0), P.binunicode('x'), OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE, OP.STOP),
      /tensor size must be a tuple of non-negative integers/],
    ['tensor size/stride ranks', pk(P.global('torch._utils', '_rebuild_tensor_v2'), OP.MARK, OP.NONE, P.binint1(0), P.binint1(2), OP.TUPLE1, OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE, OP.STOP),
      /size has 1 dims but stride has 0/],
    ['negative storage offset', pk(P.global('torch._utils', '_rebuild_tensor_v2'), OP.MARK, OP.NONE, P.binint(-1), OP.EMPTY_TUPLE, OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE, OP.STOP),
      /bad tensor storage offset/],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(() => load(bytes), (e: unknown) => {
      assert.ok(e instanceof InputError, `${what}: ${(e as Error)?.stack ?? String(e)}`);
      assert.ok(e.message.startsWith('test.pkl: '), `${what}: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
});

/** A state-dict pickle that exercises most of what torch.save writes, plus frames and memo. */
function representative(): Uint8Array {
  const sd = stateDictPickle([
    ['stem.0.weight', { storageType: 'FloatStorage', key: '0', storageNumel: 6, offset: 0, size: [2, 3], stride: [3, 1] }],
    ['stem.0.bias', { storageType: 'HalfStorage', key: '1', storageNumel: 2, offset: 0, size: [2], stride: [1] }],
    ['num_batches', pk(P.long1(2n ** 63n - 1n))],
    ['name', pk(P.binunicode8('tiny'), OP.BINPUT, 9, P.binget(9), OP.TUPLE2)],
  ]);
  return sd;
}

test('truncation at every position of a valid pickle is an InputError', () => {
  const persistentLoad = (pid: unknown) => (pid as unknown[])[2];
  for (const bytes of [representative(), ...Object.values(CPYTHON_PICKLES).map((h) => new Uint8Array(Buffer.from(h, 'hex')))]) {
    const whole = load(bytes, { persistentLoad });
    assert.ok(whole instanceof Map);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => load(bytes.subarray(0, n), { persistentLoad }), (e: unknown) => {
        assert.ok(e instanceof InputError, `prefix ${n}: ${(e as Error)?.stack ?? String(e)}`);
        assert.match(e.message, /^test\.pkl: (truncated|corrupt) pickle \(/, `prefix ${n}`);
        return true;
      });
    }
  }
});

test('random byte corruption only ever produces values or user errors', () => {
  const base = representative();
  const persistentLoad = (pid: unknown) => (pid as unknown[])[2];
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  let rejected = 0;
  for (let i = 0; i < 5000; i++) {
    const b = base.slice();
    for (let k = 0; k < 1 + rand(2); k++) b[rand(b.length)] = rand(256);
    try {
      load(b, { persistentLoad });
    } catch (e) {
      assert.ok(e instanceof InputError || e instanceof UnsupportedError, `iteration ${i}: ${(e as Error)?.stack ?? String(e)}`);
      rejected++;
    }
  }
  assert.ok(rejected > 1000, `only ${rejected} of 5000 corruptions were rejected`);
});

test('representative pickle decodes exactly', () => {
  const v = load(representative(), { persistentLoad: (pid) => `storage ${(pid as unknown[])[2]}` }) as Map<string, unknown>;
  assert.deepEqual([...v.keys()], ['stem.0.weight', 'stem.0.bias', 'num_batches', 'name']);
  const w = v.get('stem.0.weight') as TensorRecord;
  assert.equal(w.storage, 'storage 0');
  assert.deepEqual([w.storageOffset, w.size, w.stride], [0, [2, 3], [3, 1]]);
  assert.equal(v.get('num_batches'), 2n ** 63n - 1n);
  assert.deepEqual(v.get('name'), ['tiny', 'tiny']);
});
