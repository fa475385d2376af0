// Reads a torch.save checkpoint (the zip format of torch >= 1.6) into a StateDict, without Python and
// without executing anything from the file. The archive holds `<dir>/data.pkl`, a pickle of the saved
// object in which each storage is a persistent id ('storage', StorageType, key, location, numel)
// naming the member `<dir>/data/<key>` with its raw little-endian bytes. Tensors are rebuilt from
// (storage, offset, size, stride) as views of the file where possible.
//
// What the pickle asks for is bounded by the file: each storage is checked against its member's
// bytes before use, flattening nested dicts visits at most about one entry per byte of data.pkl
// (a memo can share one dict many times over), and the tensors that must be copied (gathered
// views, converted dtypes) may not add up to more than COPY_ALLOWANCE beyond twice the file.

import { InputError, UnsupportedError } from '../errors.js';
import { BYTES_PER_ELEMENT, numel, tensor, type DType, type Tensor, type TensorData } from '../graph/tensor.js';
import { InertObject, TensorRecord, TorchDTypeToken, unpickle, type StorageDType } from './pickle.js';
import { sniffBytes, readInputFile } from './sniff.js';
import type { StateDict } from './state-dict.js';
import { looksLikeZip, openZip, type ZipArchive } from './zip.js';

/** A storage resolved from a persistent id; a class so a pickle cannot forge one from plain data. */
class Storage {
  constructor(readonly key: string, readonly dtype: StorageDType, readonly numel: number, readonly bytes: Uint8Array) {}
}

const STORAGE_BYTES: Record<StorageDType, number> = { ...BYTES_PER_ELEMENT, int16: 2, float64: 8 };

// A view with more elements than its storage repeats elements (stride 0, as expand() makes). Real
// checkpoints hold at most small broadcast buffers; a 65536×65536 expand of one float is a bomb.
const MAX_REPEATING_VIEW_ELEMENTS = 1 << 24;
const COPY_ALLOWANCE = 256 << 20;
const VISIT_ALLOWANCE = 1 << 16;
// Storages are made 8-byte aligned once, so a view of any dtype needs no copy of its own.
const STORAGE_ALIGN = 8;

// The legacy (torch < 1.6) format starts with a pickled magic number 0x1950a86a20f9469cfc6c: LONG1
// of 10 bytes, right after PROTO 2 (or after a FRAME header when saved with a higher protocol).
const LEGACY_MAGIC = Buffer.from([0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

export async function readPytorchCheckpoint(path: string): Promise<StateDict> {
  return readPytorchCheckpointFromBuffer(await readInputFile(path), path);
}

/** As readPytorchCheckpoint, for bytes already in memory; `where` names them in errors. */
export function readPytorchCheckpointFromBuffer(data: Uint8Array, where = '<buffer>'): StateDict {
  if (data.length === 0) throw new InputError('empty file, not a PyTorch checkpoint', where);
  if (!looksLikeZip(data)) {
    const head = Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, 32));
    if (head[0] === 0x80 && head.includes(LEGACY_MAGIC)) {
      throw new InputError("legacy PyTorch serialization (torch < 1.6); re-save it with torch >= 1.6: torch.save(torch.load(f), 'new.pth')", where);
    }
    const kind = sniffBytes(data, data.length);
    if (kind === 'legacy-pickle') {
      throw new InputError('a plain pickle file, not a torch.save zip archive (save the state dict with torch.save)', where);
    }
    const what = kind === 'unknown' ? `neither a zip archive nor a pickle (starts with ${hex(data)})` : `looks like a ${kind} file`;
    throw new InputError(`not a PyTorch checkpoint: ${what}`, where);
  }
  const zip = openZip(data, where);
  const prefix = findArchivePrefix(zip);

  const byteorder = zip.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = zip.read(byteorder, true).toString('latin1').trim();
    if (order === 'big') throw new UnsupportedError('checkpoint was saved on a big-endian machine', where);
    if (order !== 'little') throw new InputError(`unexpected byteorder '${order}' in the archive`, where);
  }

  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      throw new InputError(`corrupt pickle (unexpected persistent id ${describePid(pid)})`, where);
    }
    const [, type, key, , count] = pid as unknown[];
    if (!(type instanceof TorchDTypeToken)) throw new InputError('corrupt pickle (storage without a storage type)', where);
    if (typeof key !== 'string' || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
      throw new InputError('corrupt pickle (bad storage key or size)', where);
    }
    const cached = storages.get(key);
    if (cached) return cached;
    const entry = zip.get(`${prefix}data/${key}`);
    if (!entry) throw new InputError(`archive lacks the data of storage '${key}' (${prefix}data/${key})`, where);
    // Checked like every member: a flipped bit in a stored tensor would otherwise pass silently.
    const bytes = zip.read(entry, true);
    const need = count * STORAGE_BYTES[type.dtype];
    if (bytes.length < need) {
      throw new InputError(`storage '${key}' has ${bytes.length} bytes, its ${count} ${type.dtype} elements need ${need}`, where);
    }
    const own = bytes.subarray(0, need);
    const s = new Storage(key, type.dtype, count, own.byteOffset % STORAGE_ALIGN === 0 ? own : new Uint8Array(own));
    storages.set(key, s);
    return s;
  };

  // The CRC catches a corrupted pickle before we interpret it.
  const pickle = zip.read(`${prefix}data.pkl`, true);
  const root = unpickle(pickle, { where, persistentLoad });
  if (root instanceof TensorRecord) throw new InputError('holds a single tensor, not a state dict', where);
  if (!(root instanceof Map)) throw new InputError(`holds ${describeValue(root)}, not a state dict (a dict of tensors)`, where);
  const flattener = new Flattener(where, pickle.length + VISIT_ALLOWANCE, 2 * data.length + COPY_ALLOWANCE);
  flattener.walk(root, '');
  return flattener.out;
}

/** The archive's top directory (`archive/`, `<name>/`), refusing TorchScript and non-torch zips. */
function findArchivePrefix(zip: ZipArchive): string {
  const where = zip.where;
  const names = zip.entries.map((e) => e.name);
  if (names.some((n) => /^[^/]+\/(code\/|constants\.pkl$)/.test(n) || n === 'constants.pkl')) {
    throw new InputError('TorchScript archive, not a state dict (load it with torch.jit.load and torch.save its state_dict())', where);
  }
  const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 0) throw new InputError('zip archive without <dir>/data.pkl: not a torch.save checkpoint', where);
  if (pkls.length > 1) throw new InputError(`zip archive has ${pkls.length} data.pkl files: ${pkls.join(', ')}`, where);
  return pkls[0].slice(0, -'data.pkl'.length);
}

// Deeper nesting than any checkpoint has; bounds the recursion a crafted pickle could ask for.
const MAX_DEPTH = 64;

/** Nested dicts become dotted keys; anything that is not a tensor or a dict is skipped. */
class Flattener {
  readonly out: StateDict = new Map();
  /** The dicts being walked, so a dict that (via the memo) contains itself stops there. */
  private readonly path = new Set<unknown>();
  private visits = 0;
  private copied = 0;

  constructor(private readonly where: string, private readonly maxVisits: number, private readonly maxCopyBytes: number) {}

  walk(m: Map<unknown, unknown>, prefix: string): void {
    const { where } = this;
    if (this.path.has(m)) return;
    if (this.path.size >= MAX_DEPTH) throw new InputError(`dicts nested more than ${MAX_DEPTH} deep (at '${prefix.slice(0, 80)}')`, where);
    // A dict shared via the memo is walked once per name it is reachable by, so sharing at every
    // level would multiply; real checkpoints share a whole state dict once or twice at most.
    this.visits += m.size;
    if (this.visits > this.maxVisits) {
      throw new InputError(`nested dicts are shared so often that flattening them visits over ${this.maxVisits} entries`, where);
    }
    this.path.add(m);
    for (const [k, v] of m) {
      if (typeof k !== 'string' && typeof k !== 'number') continue;
      const name = `${prefix}${k}`;
      if (v instanceof TensorRecord) {
        if (this.out.has(name)) throw new InputError(`tensor name '${name}' occurs twice after flattening nested dicts`, where);
        this.out.set(name, materialize(v, name, where, (bytes) => this.chargeCopy(bytes, name)));
      } else if (v instanceof Map) {
        this.walk(v, `${name}.`);
      } else if (v instanceof InertObject) {
        // argparse.Namespace etc.: training arguments, not weights.
      }
    }
    this.path.delete(m);
  }

  private chargeCopy(bytes: number, name: string): void {
    this.copied += bytes;
    if (this.copied > this.maxCopyBytes) {
      throw new InputError(`tensor '${name}': the copied tensors (gathered views, converted dtypes) would take over ${this.maxCopyBytes} bytes`, this.where);
    }
  }
}

const ARRAYS = {
  float32: Float32Array, float16: Uint16Array, bfloat16: Uint16Array, int8: Int8Array, uint8: Uint8Array,
  bool: Uint8Array, int32: Int32Array, int64: BigInt64Array, int16: Int16Array, float64: Float64Array,
} as const;
type AnyArray = Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Int16Array | Float64Array;

// float64 and int16 have no DType: they become float32 and int32 (the latter exactly).
const OUT_DTYPE: Record<StorageDType, DType> = {
  float32: 'float32', float16: 'float16', bfloat16: 'bfloat16', int8: 'int8', uint8: 'uint8', bool: 'bool',
  int32: 'int32', int64: 'int64', int16: 'int32', float64: 'float32',
};

/** A typed-array view of bytes[offset, offset + count·size); storages are aligned, so never a copy. */
function viewOf(dtype: StorageDType, bytes: Uint8Array, elemOffset: number, count: number): AnyArray {
  return new ARRAYS[dtype](bytes.buffer as ArrayBuffer, bytes.byteOffset + elemOffset * STORAGE_BYTES[dtype], count);
}

/** The tensor a record describes; `chargeCopy` is told the bytes of any copy before it is made. */
function materialize(r: TensorRecord, name: string, where: string, chargeCopy: (bytes: number) => void): Tensor {
  const s = r.storage;
  if (!(s instanceof Storage)) throw new InputError(`corrupt pickle (tensor '${name}' has no storage)`, where);
  // _rebuild_tensor_v3 reinterprets an untyped (byte) storage as its own dtype.
  const dtype = r.dtype ?? s.dtype;
  const size = STORAGE_BYTES[dtype];
  const available = Math.floor(s.bytes.length / size);
  const shape = r.size;
  const n = numel(shape);
  const outDtype = OUT_DTYPE[dtype];
  if (n === 0) return tensor(outDtype, shape, new ARRAYS[outDtype](0) as TensorData);

  // The highest element the view touches must lie inside the storage.
  let last = r.storageOffset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * r.stride[d];
  if (last >= available) {
    throw new InputError(`tensor '${name}' (shape [${shape.join(', ')}], offset ${r.storageOffset}) reaches element ${last} of a ${available}-element storage`, where);
  }
  if (n > available && n > MAX_REPEATING_VIEW_ELEMENTS) {
    throw new InputError(`tensor '${name}' (shape [${shape.join(', ')}], stride [${r.stride.join(', ')}]) repeats the elements of a ${available}-element storage ` +
      `${n} times over; views larger than their storage are refused past ${MAX_REPEATING_VIEW_ELEMENTS} elements`, where);
  }

  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d] !== 1 && r.stride[d] !== expect) contiguous = false;
    expect *= shape[d];
  }
  const converts = outDtype !== dtype;
  if (contiguous && !converts) {
    return tensor(outDtype, shape, viewOf(dtype, s.bytes, r.storageOffset, n) as TensorData);
  }

  // Gather (non-contiguous strides, or a dtype conversion) from a view of the touched range.
  const src = viewOf(dtype, s.bytes, r.storageOffset, last - r.storageOffset + 1);
  chargeCopy(n * BYTES_PER_ELEMENT[outDtype]);
  const dst = new ARRAYS[outDtype](n) as AnyArray;
  gather(src, dst, shape, r.stride);
  return tensor(outDtype, shape, dst as TensorData);
}

/** dst[i] = src[Σ index_d · stride_d] in C order; number→number and bigint→bigint arrays only. */
function gather(src: AnyArray, dst: AnyArray, shape: readonly number[], stride: readonly number[]): void {
  const rank = shape.length;
  const s = src as unknown as { [i: number]: number };
  const o = dst as unknown as { [i: number]: number };
  if (rank === 0) {
    o[0] = s[0];
    return;
  }
  const inner = shape[rank - 1];
  const innerStride = stride[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  for (let out = 0; out < dst.length; ) {
    for (let i = 0, p = base; i < inner; i++, p += innerStride) o[out++] = s[p];
    // Odometer over the outer dims.
    let d = rank - 2;
    for (; d >= 0; d--) {
      index[d]++;
      base += stride[d];
      if (index[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) break;
  }
}

function hex(data: Uint8Array): string {
  return [...data.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

function describePid(pid: unknown): string {
  if (!Array.isArray(pid)) return typeof pid;
  // Never String() an arbitrary value: a deeply nested tuple would overflow the stack.
  const first = typeof pid[0] === 'string' ? JSON.stringify(pid[0].slice(0, 40)) : describeValue(pid[0]);
  return `a ${pid.length}-tuple starting ${first}`;
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'a tuple' : 'a list';
  if (v === null) return 'None';
  if (v instanceof InertObject) return `a ${v.pyName} object`;
  return `a ${typeof v}`;
}
