// A restricted unpickler: it reads the pickle opcodes that torch.save and pickle protocols 0–5
// produce for state dicts and builds plain data from them. Nothing in the file is executed. A
// pickle names Python callables ("globals") and asks for them to be called; here each global is
// looked up in a fixed allowlist of handlers that build inert records (dicts, tensor records,
// storage-type tokens), and every other global is refused with an UnsupportedError naming it.
//
// Python values become: None → null, bool → boolean, int → number (bigint beyond 2^53), float →
// number, str → string, bytes/bytearray → Uint8Array, list → array, tuple → frozen array,
// dict/OrderedDict → Map, set/frozenset → Set, allowlisted objects → the records below.
//
// The work is bounded by the file: every opcode does work proportional to its own bytes, except
// the allowlisted constructors and BUILD, which copy a container the memo may hand them again and
// again; they charge what they copy to a budget proportional to the pickle's size.

import { InputError, UnsupportedError } from '../errors.js';
import type { DType } from '../graph/tensor.js';

/** Element types a torch storage can hold; int16 and float64 are widened/narrowed when tensors are built. */
export type StorageDType = DType | 'int16' | 'float64';

/** A torch storage class (torch.FloatStorage …) or dtype object (torch.float32 …): a token carrying a dtype. */
export class TorchDTypeToken {
  constructor(readonly pyName: string, readonly dtype: StorageDType) {}
}

/** What torch._utils._rebuild_tensor_v2/v3 was asked to build. `storage` is what persistentLoad returned. */
export class TensorRecord {
  constructor(
    readonly storage: unknown,
    readonly storageOffset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
    /** Set by _rebuild_tensor_v3, which passes the dtype separately from an untyped storage. */
    readonly dtype?: StorageDType,
  ) {}
}

/** An allowlisted plain-data object (argparse.Namespace, numpy scalars …): its arguments and attributes, inert. */
export class InertObject {
  readonly attrs = new Map<string, unknown>();
  constructor(readonly pyName: string, readonly args: readonly unknown[]) {}
}

/** What an allowlisted callable gets besides its arguments: where it is, and the work budget. */
export interface CallContext {
  readonly where: string;
  /** Counts `elements` copied; throws once the pickle has asked for more than its size allows. */
  charge(elements: number): void;
}

/** A resolved, allowlisted global. `call` implements REDUCE/NEWOBJ/OBJ/INST with it. */
export class PyGlobal {
  constructor(readonly pyName: string, readonly call?: (args: readonly unknown[], ctx: CallContext) => unknown) {}
}

export interface UnpickleOptions {
  /** Names the file (and member) in error messages. */
  where: string;
  /** Resolves BINPERSID/PERSID ids (torch: ('storage', type, key, location, numel)). */
  persistentLoad?: (pid: unknown) => unknown;
}

// ---------------------------------------------------------------------------------------------
// The allowlist. Keys are 'module.name'.

const STORAGES: Record<string, StorageDType> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8',
  ByteStorage: 'uint8', BoolStorage: 'bool', UntypedStorage: 'uint8',
};
const DTYPES: Record<string, StorageDType> = {
  float32: 'float32', float: 'float32', float16: 'float16', half: 'float16', bfloat16: 'bfloat16',
  float64: 'float64', double: 'float64', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32',
  int16: 'int16', short: 'int16', int8: 'int8', uint8: 'uint8', bool: 'bool',
};

// Element copies allowed per byte of pickle, plus a floor for tiny pickles. A real state dict
// copies each container at most once, far below one element per byte.
const WORK_PER_BYTE = 4;
const WORK_FLOOR = 1 << 20;
// Python refuses to parse longer decimal integers (sys.int_max_str_digits), and parsing them is
// superlinear; binary LONG4 integers are capped well below V8's BigInt limit.
const MAX_INT_DIGITS = 4300;
const MAX_LONG_BYTES = 1 << 20;
// State-dict tensors have a handful of dimensions; this bounds what a crafted size tuple can ask of us.
const MAX_RANK = 64;

function fail(where: string, why: string): never {
  throw new InputError(`corrupt pickle (${why})`, where);
}
/** Text from the file as an error message shows it: a text line can be as long as the file. */
function shown(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
function isTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v);
}
function intList(v: unknown, what: string, ctx: CallContext): number[] {
  const { where } = ctx;
  if (isTuple(v)) ctx.charge(v.length);
  if (!isTuple(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    fail(where, `${what} must be a tuple of non-negative integers`);
  }
  return v as number[];
}

function rebuildTensor(args: readonly unknown[], ctx: CallContext, v3: boolean): TensorRecord {
  const { where } = ctx;
  // v2: (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  // v3: (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
  if (args.length < 4) fail(where, `_rebuild_tensor needs at least 4 arguments, got ${args.length}`);
  const [storage, offset, size, stride] = args;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail(where, 'bad tensor storage offset');
  const sizes = intList(size, 'tensor size', ctx);
  const strides = intList(stride, 'tensor stride', ctx);
  if (sizes.length > MAX_RANK) fail(where, `tensor has ${sizes.length} dimensions, more than ${MAX_RANK}`);
  if (sizes.length !== strides.length) fail(where, `tensor size has ${sizes.length} dims but stride has ${strides.length}`);
  let dtype: StorageDType | undefined;
  if (v3) {
    if (!(args[6] instanceof TorchDTypeToken)) fail(where, '_rebuild_tensor_v3 needs a torch dtype');
    dtype = args[6].dtype;
  }
  return new TensorRecord(storage, offset, sizes, strides, dtype);
}

function firstArg(name: string) {
  return (args: readonly unknown[], { where }: CallContext): unknown => {
    if (args.length < 1) fail(where, `${name} needs an argument`);
    return args[0];
  };
}

const inert = (pyName: string) => new PyGlobal(pyName, (args) => new InertObject(pyName, args));

const GLOBALS = new Map<string, PyGlobal>();
function allow(g: PyGlobal): void {
  GLOBALS.set(g.pyName, g);
}
allow(new PyGlobal('collections.OrderedDict', (args, ctx) => toMap(args[0], ctx)));
allow(new PyGlobal('builtins.dict', (args, ctx) => toMap(args[0], ctx)));
allow(new PyGlobal('builtins.set', (args, ctx) => new Set(args.length ? iterable(args[0], ctx) : [])));
allow(new PyGlobal('builtins.frozenset', (args, ctx) => new Set(args.length ? iterable(args[0], ctx) : [])));
allow(new PyGlobal('builtins.list', (args, ctx) => (args.length ? [...iterable(args[0], ctx)] : [])));
allow(new PyGlobal('builtins.tuple', (args, ctx) => Object.freeze(args.length ? [...iterable(args[0], ctx)] : [])));
allow(new PyGlobal('builtins.object'));
// Protocol 2 pickles Python 3 bytes as _codecs.encode(text, 'latin1').
allow(new PyGlobal('_codecs.encode', (args, ctx) => {
  const [text, enc] = args;
  if (typeof text !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) fail(ctx.where, '_codecs.encode with unexpected arguments');
  ctx.charge(text.length);
  return Uint8Array.from(Buffer.from(text, 'latin1'));
}));
// copyreg._reconstructor(cls, object, state) is how protocols 0/1 pickle plain objects.
allow(new PyGlobal('copyreg._reconstructor', (args, ctx) => {
  const cls = args[0];
  if (!(cls instanceof PyGlobal) || !cls.call) fail(ctx.where, 'copyreg._reconstructor of a non-class');
  return cls.call([], ctx);
}));
allow(new PyGlobal('torch._utils._rebuild_tensor_v2', (args, ctx) => rebuildTensor(args, ctx, false)));
allow(new PyGlobal('torch._utils._rebuild_tensor_v3', (args, ctx) => rebuildTensor(args, ctx, true)));
// Parameters (and tensors carrying Python attributes) unwrap to their data.
allow(new PyGlobal('torch._utils._rebuild_parameter', firstArg('_rebuild_parameter')));
allow(new PyGlobal('torch._utils._rebuild_parameter_with_state', firstArg('_rebuild_parameter_with_state')));
allow(new PyGlobal('torch._tensor._rebuild_from_type_v2', (args, ctx) => {
  // (func, new_type, args, state): call func(*args) — func must itself be allowlisted.
  const [func, , fargs] = args;
  if (!(func instanceof PyGlobal) || !func.call || !isTuple(fargs)) fail(ctx.where, '_rebuild_from_type_v2 with unexpected arguments');
  return func.call(fargs, ctx);
}));
allow(new PyGlobal('torch.Tensor'));
allow(new PyGlobal('torch.nn.parameter.Parameter'));
allow(new PyGlobal('torch.Size', (args, ctx) => Object.freeze(args.length ? [...iterable(args[0], ctx)] : [])));
for (const name of ['argparse.Namespace', 'torch.device', 'types.SimpleNamespace', 'numpy.dtype', 'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar', 'torch.torch_version.TorchVersion', 'pathlib.PosixPath', 'pathlib.WindowsPath']) {
  allow(inert(name));
}

const storageTokens = new Map<string, TorchDTypeToken>();
for (const [name, dtype] of Object.entries(STORAGES)) storageTokens.set(`torch.${name}`, new TorchDTypeToken(`torch.${name}`, dtype));
for (const [name, dtype] of Object.entries(DTYPES)) storageTokens.set(`torch.${name}`, new TorchDTypeToken(`torch.${name}`, dtype));

function looksLikeModelClass(module: string, name: string): boolean {
  const parts = module.split('.');
  return module.startsWith('torch.nn.') || parts[0] === 'timm' || parts[0] === 'torchvision' ||
    parts.includes('models') || (module === '__main__' && /^[A-Z]/.test(name));
}

// Python 3 writes protocol 0–2 pickles with Python 2 module names (pickle's fix_imports).
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** The allowlisted value for a global, or an UnsupportedError naming it. */
export function resolveGlobal(rawModule: string, name: string, where: string): PyGlobal | TorchDTypeToken {
  const module = Object.hasOwn(PY2_MODULES, rawModule) ? PY2_MODULES[rawModule] : rawModule;
  const key = `${module}.${name}`;
  const g = GLOBALS.get(key) ?? storageTokens.get(key);
  if (g) return g;
  if (module === 'torch' && /Storage$/.test(name)) {
    throw new UnsupportedError(`tensor storage type '${key}' is not supported`, where);
  }
  let msg = `refusing to load global '${key}': not part of a state dict (nothing in a checkpoint is executed)`;
  if (looksLikeModelClass(module, name)) msg += '; this file holds a pickled model object; save model.state_dict() instead';
  throw new UnsupportedError(msg, where);
}

function iterable(v: unknown, ctx: CallContext): Iterable<unknown> {
  if (Array.isArray(v)) ctx.charge(v.length);
  else if (v instanceof Set || v instanceof Map) ctx.charge(v.size);
  else fail(ctx.where, 'expected a list, tuple or set');
  return v instanceof Map ? v.keys() : v;
}

function toMap(v: unknown, ctx: CallContext): Map<unknown, unknown> {
  const { where } = ctx;
  if (v === undefined) return new Map();
  if (v instanceof Map) {
    ctx.charge(v.size);
    return new Map(v);
  }
  // OrderedDict([(k, v), ...]) as protocol 0/1 write it.
  if (!Array.isArray(v)) fail(where, 'dict() of a non-sequence');
  ctx.charge(v.length);
  const m = new Map<unknown, unknown>();
  for (const pair of v) {
    if (!Array.isArray(pair) || pair.length !== 2) fail(where, 'dict() of a sequence that is not of pairs');
    m.set(pair[0], pair[1]);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// The machine.

/** Unpickles `data`. Throws InputError for malformed input, UnsupportedError for refused globals/opcodes. */
export function unpickle(data: Uint8Array, options: UnpickleOptions): unknown {
  const { where } = options;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const budget = WORK_PER_BYTE * buf.length + WORK_FLOOR;
  let work = 0;
  const ctx: CallContext = {
    where,
    charge(elements) {
      work += elements;
      if (work > budget) fail(where, `copies more than ${budget} elements rebuilding shared objects, too many for a ${buf.length}-byte pickle`);
    },
  };
  let pos = 0;
  let op = 0;
  let opPos = 0;

  const opName = () => `opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opPos}`;
  const need = (n: number): number => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > buf.length) {
      throw new InputError(`truncated pickle (${opName()} needs ${n} bytes, ${buf.length - pos} left)`, where);
    }
    const at = pos;
    pos += n;
    return at;
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw new InputError(`truncated pickle (${opName()} has no end of line)`, where);
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    const floor = marks.length ? marks[marks.length - 1] : 0;
    if (stack.length <= floor) fail(where, `stack underflow at ${opName()}`);
    return stack.pop();
  };
  const top = (): unknown => {
    const floor = marks.length ? marks[marks.length - 1] : 0;
    if (stack.length <= floor) fail(where, `stack underflow at ${opName()}`);
    return stack[stack.length - 1];
  };
  /** The items pushed since the last MARK, which is removed. */
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail(where, `no MARK for ${opName()}`);
    return stack.splice(m);
  };
  /** A copy of the next n bytes (copied so the result never pins or aliases the file). */
  const bytes = (n: number): Uint8Array => {
    const at = need(n);
    return Uint8Array.from(buf.subarray(at, at + n));
  };
  const latin1 = (n: number): string => {
    const at = need(n);
    return buf.toString('latin1', at, at + n);
  };
  const getMemo = (i: number): unknown => {
    if (!memo.has(i)) fail(where, `memo key ${i} is not set at ${opName()}`);
    return memo.get(i);
  };
  const putMemo = (i: number): void => {
    memo.set(i, top());
  };
  const int = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  /** LONG1/LONG4: n bytes of two's-complement little-endian, converted via hex in linear time. */
  const longLE = (n: number): number | bigint => {
    const at = need(n);
    if (n > MAX_LONG_BYTES) throw new UnsupportedError(`pickle holds a ${n}-byte integer (more than ${MAX_LONG_BYTES} bytes)`, where);
    if (n === 0) return 0;
    let v = BigInt(`0x${Buffer.from(buf.subarray(at, at + n)).reverse().toString('hex')}`);
    if (buf[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return int(v);
  };
  /** INT/LONG text: at most MAX_INT_DIGITS digits, as Python parses them. */
  const decimalInt = (s: string, what: string): number | bigint => {
    if (!/^[-+]?\d+$/.test(s)) fail(where, `bad ${what} '${shown(s)}'`);
    const digits = s.length - (/^[-+]/.test(s) ? 1 : 0);
    if (digits > MAX_INT_DIGITS) throw new UnsupportedError(`pickle holds a ${digits}-digit integer (more than ${MAX_INT_DIGITS} digits)`, where);
    return int(BigInt(s));
  };
  const decimal = (s: string): number => {
    if (!/^\d+$/.test(s)) fail(where, `bad memo index '${shown(s)}'`);
    return Number(s);
  };
  const utf8 = (at: number, n: number): string => buf.toString('utf8', at, at + n);
  const callGlobal = (fn: unknown, args: unknown, what: string): unknown => {
    if (!isTuple(args)) fail(where, `${what} arguments are not a tuple`);
    if (fn instanceof PyGlobal && fn.call) return fn.call(args, ctx);
    fail(where, `${what} of something that cannot be called (${describe(fn)})`);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) fail(where, `SETITEM(S) on ${describe(target)}`);
    if (items.length % 2) fail(where, 'SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]): void => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail(where, `APPEND(S) on ${describe(target)}`);
    for (const x of items) target.push(x);
  };
  const resolve = (module: unknown, name: unknown): unknown => {
    if (typeof module !== 'string' || typeof name !== 'string') fail(where, 'global name is not a string');
    return resolveGlobal(module, name, where);
  };

  for (;;) {
    opPos = pos;
    if (pos >= buf.length) throw new InputError(`truncated pickle (ends at byte ${pos} without STOP)`, where);
    op = buf[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = buf[need(1)];
        if (v > 5) throw new UnsupportedError(`pickle protocol ${v} is not supported`, where);
        break;
      }
      case 0x95: { // FRAME: only a length hint; the frame must still fit in the data.
        const at = need(8);
        const n = Number(buf.readBigUInt64LE(at));
        if (n > buf.length - pos) throw new InputError(`truncated pickle (frame of ${n} bytes at byte ${opPos}, ${buf.length - pos} left)`, where);
        break;
      }
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail(where, `STOP with ${stack.length} items on the stack`);
        return stack[0];
      case 0x28: marks.push(stack.length); break; // MARK: later pops cannot reach below it
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(buf.readInt32LE(need(4))); break; // BININT
      case 0x4b: stack.push(buf[need(1)]); break; // BININT1
      case 0x4d: stack.push(buf.readUInt16LE(need(2))); break; // BININT2
      case 0x8a: stack.push(longLE(buf[need(1)])); break; // LONG1
      case 0x8b: { const n = buf.readInt32LE(need(4)); if (n < 0) fail(where, 'negative LONG4 length'); stack.push(longLE(n)); break; }
      case 0x47: stack.push(buf.readDoubleBE(need(8))); break; // BINFLOAT (big-endian, per pickle)
      case 0x49: { // INT (text); I01/I00 are protocol 0's True/False
        const s = line();
        if (s === '01') stack.push(true);
        else if (s === '00') stack.push(false);
        else stack.push(decimalInt(s, 'INT'));
        break;
      }
      case 0x4c: stack.push(decimalInt(line().replace(/L$/, ''), 'LONG')); break; // LONG (text, may end in 'L')
      case 0x46: stack.push(pyFloatLiteral(line(), where)); break; // FLOAT (text)
      case 0x58: { const n = buf.readUInt32LE(need(4)); stack.push(utf8(need(n), n)); break; } // BINUNICODE
      case 0x8c: { const n = buf[need(1)]; stack.push(utf8(need(n), n)); break; } // SHORT_BINUNICODE
      case 0x8d: { const n = Number(buf.readBigUInt64LE(need(8))); stack.push(utf8(need(n), n)); break; } // BINUNICODE8
      case 0x56: stack.push(rawUnicodeEscape(line())); break; // UNICODE (text)
      case 0x54: stack.push(latin1(buf.readInt32LE(need(4)))); break; // BINSTRING
      case 0x55: stack.push(latin1(buf[need(1)])); break; // SHORT_BINSTRING
      case 0x53: stack.push(pyStringLiteral(line(), where)); break; // STRING (text, quoted)
      case 0x42: stack.push(bytes(buf.readUInt32LE(need(4)))); break; // BINBYTES
      case 0x43: stack.push(bytes(buf[need(1)])); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(bytes(Number(buf.readBigUInt64LE(need(8))))); break; // BINBYTES8, BYTEARRAY8
      case 0x98: top(); break; // READONLY_BUFFER: no-op on our copies
      case 0x97: throw new UnsupportedError('pickle uses out-of-band buffers (NEXT_BUFFER)', where);
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x85: stack.push(Object.freeze([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(Object.freeze([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(Object.freeze([a, b, c])); break; } // TUPLE3
      case 0x74: stack.push(Object.freeze(popMark())); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const items = popMark(); const m = new Map(); setItems(m, items); stack.push(m); break; } // DICT
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(where, `ADDITEMS on ${describe(s)}`);
        for (const x of items) s.add(x);
        break;
      }
      case 0x71: putMemo(buf[need(1)]); break; // BINPUT
      case 0x72: putMemo(buf.readUInt32LE(need(4))); break; // LONG_BINPUT
      case 0x70: { const i = decimal(line()); putMemo(i); break; } // PUT
      case 0x94: { const v = top(); memo.set(memo.size, v); break; } // MEMOIZE
      case 0x68: stack.push(getMemo(buf[need(1)])); break; // BINGET
      case 0x6a: stack.push(getMemo(buf.readUInt32LE(need(4)))); break; // LONG_BINGET
      case 0x67: stack.push(getMemo(decimal(line()))); break; // GET
      case 0x63: { const module = line(); const name = line(); stack.push(resolve(module, name)); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); stack.push(resolve(module, name)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); const fn = pop(); stack.push(callGlobal(fn, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(callGlobal(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX (cls, args, kwargs): keyword arguments are not used by any allowlisted class
        const kwargs = pop(); const args = pop(); const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) fail(where, 'NEWOBJ_EX with keyword arguments');
        stack.push(callGlobal(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x6f: { const items = popMark(); if (!items.length) fail(where, 'OBJ without a class'); stack.push(callGlobal(items[0], Object.freeze(items.slice(1)), 'OBJ')); break; }
      case 0x69: { // INST (text): module, name, then the marked arguments
        const module = line(); const name = line();
        const cls = resolve(module, name);
        stack.push(callGlobal(cls, Object.freeze(popMark()), 'INST'));
        break;
      }
      case 0x62: { const state = pop(); build(top(), state, ctx); break; } // BUILD
      case 0x51: { const pid = pop(); stack.push(persistent(pid)); break; } // BINPERSID
      case 0x50: stack.push(persistent(line())); break; // PERSID (text)
      case 0x82: case 0x83: case 0x84:
        throw new UnsupportedError('pickle uses the copyreg extension registry (EXT1/2/4)', where);
      default:
        fail(where, `unknown ${opName()}`);
    }
  }

  function persistent(pid: unknown): unknown {
    if (!options.persistentLoad) fail(where, 'persistent id without a persistent loader');
    return options.persistentLoad(pid);
  }
}

/** BUILD: set an object's state. Only inert records take attributes; dicts and tensors ignore theirs. */
function build(obj: unknown, state: unknown, ctx: CallContext): void {
  if (obj instanceof InertObject) {
    // object.__reduce_ex__ gives a __dict__, or (__dict__ | None, slots); anything else (numpy's
    // dtype state tuple, …) is kept whole under '__state__'.
    const isDictPair = isTuple(state) && state.length === 2 && state.every((p) => p === null || p instanceof Map);
    const parts = isDictPair ? state : [state];
    for (const part of parts) {
      if (part instanceof Map) {
        ctx.charge(part.size);
        for (const [k, v] of part) obj.attrs.set(String(k), v);
      }
      else if (part !== null) obj.attrs.set('__state__', part);
    }
    return;
  }
  // An OrderedDict state_dict carries `_metadata` (module versions); tensors may carry Python
  // attributes. Neither is weight data, so the state is dropped.
  if (obj instanceof Map || obj instanceof TensorRecord || obj instanceof Set) return;
  fail(ctx.where, `BUILD on ${describe(obj)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return v.pyName;
  if (v instanceof TorchDTypeToken) return v.pyName;
  if (v instanceof InertObject) return `a ${v.pyName} object`;
  if (v instanceof TensorRecord) return 'a tensor';
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'a tuple' : 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

// Protocol 0 UNICODE: raw-unicode-escape, i.e. latin-1 text with \uXXXX and \UXXXXXXXX escapes.
function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u: string | undefined, U: string | undefined) =>
    String.fromCodePoint(Math.min(parseInt(u ?? U ?? '0', 16), 0x10ffff)));
}

// Protocol 0 FLOAT: repr() of a float, including inf and nan.
function pyFloatLiteral(s: string, where: string): number {
  const t = s.trim();
  // One way to match each digit (no `\d+\.?\d*`), so a long line fails in linear time.
  if (/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (/^[-+]?inf(inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^[-+]?nan$/i.test(t)) return NaN;
  fail(where, `bad FLOAT '${shown(s)}'`);
}

// Protocol 0 STRING: a Python 2 repr, 'text' or "text" with backslash escapes.
function pyStringLiteral(s: string, where: string): string {
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) fail(where, 'STRING opcode argument is not quoted');
  const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
  return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) =>
    e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : escapes[e] ?? `\\${e}`);
}
