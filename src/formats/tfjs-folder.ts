// Reading a TF.js graph-model folder (model.json and the weight shards it lists) as hostile input.
// tfjs-converter trusts model.json: a missing field is a TypeError deep inside it, a shard path is
// joined to the folder as given, a manifest that asks for more bytes than the shards hold reads past
// their end. So everything it would trust is checked here first, and the shards are read by us, so
// that a bad folder is an InputError naming the file and the field, and nothing outside the folder
// is ever read.

import { realpathSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { InputError, UnsupportedError } from '../errors.js';
import { isObject, parseErrorMessage, shown } from './json-values.js';
import { readInputFile, readTextFile, statInput } from './sniff.js';

/** model.json holds the whole graph (names, attributes, shapes) but no weights; 64 MiB is far past any ConvNeXt's. */
export const MODEL_JSON_MAX_BYTES = 64 << 20;

/** The value dtypes tfjs-core's io decodes (io_utils.decodeWeight), with their bytes per value. */
const VALUE_BYTES = { float32: 4, int32: 4, bool: 1 } as const;
/** Known to tfjs-core but not handled here: strings have per-value lengths, complex64 no use in an image model. */
const UNHANDLED_DTYPES = new Set(['string', 'complex64']);
/** tfjs-core's quantization dtypes (and the value dtypes each may dequantize to). */
const QUANTIZED = {
  uint8: { bytes: 1, to: ['float32', 'int32'] },
  uint16: { bytes: 2, to: ['float32', 'int32'] },
  float16: { bytes: 2, to: ['float32'] },
} as const;

type ValueDtype = keyof typeof VALUE_BYTES;
type QuantizedDtype = keyof typeof QUANTIZED;

export interface TfjsWeightSpec {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: ValueDtype;
  readonly quantization?: { readonly dtype: QuantizedDtype; readonly scale?: number; readonly min?: number };
}

export interface TfjsFolder {
  readonly modelJsonPath: string;
  /** model.json as parsed; every field TF.js reads has been checked. */
  readonly modelJson: Record<string, unknown>;
  /** Every weight, in manifest order, and their bytes: the shards concatenated group by group. */
  readonly weightSpecs: TfjsWeightSpec[];
  readonly weightData: ArrayBuffer;
  /** The first signature input's sizes as written (NHWC for an image model; -1 where unknown); empty without a signature. */
  readonly inputDims: number[];
}

/** Reads and checks model.json and its shards; nothing is handed to TF.js until all of it passes. */
export async function readTfjsFolder(folder: string): Promise<TfjsFolder> {
  const modelJsonPath = join(folder, 'model.json');
  const modelJson = parseModelJson(modelJsonPath);
  const check = new Checker(modelJsonPath);
  check.format(modelJson.format);
  check.topology(modelJson.modelTopology, 'modelTopology');
  if (modelJson.modelInitializer !== undefined && modelJson.modelInitializer !== null) check.topology(modelJson.modelInitializer, 'modelInitializer');
  const inputDims = check.signature(modelJson.signature, 'signature');
  // TF.js lets userDefinedMetadata.signature stand in for the signature
  const metadata = modelJson.userDefinedMetadata;
  if (metadata !== undefined && metadata !== null && !isObject(metadata)) check.fail('userDefinedMetadata', 'must be an object', metadata);
  const metadataDims = isObject(metadata) ? check.signature(metadata.signature, 'userDefinedMetadata.signature') : [];
  const groups = check.manifest(modelJson.weightsManifest);
  const weightData = await readShards(folder, modelJsonPath, groups);
  return {
    modelJsonPath,
    modelJson,
    weightSpecs: groups.flatMap((g) => g.weights),
    weightData,
    inputDims: isObject(metadata) && metadata.signature != null ? metadataDims : inputDims,
  };
}

function parseModelJson(path: string): Record<string, unknown> {
  const text = readTextFile(path, 'a TF.js model.json', MODEL_JSON_MAX_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`is not valid JSON (${parseErrorMessage(e)})`, path);
  }
  if (!isObject(json)) throw new InputError(`is not a JSON object (got ${shown(json)})`, path);
  return json;
}

interface Group {
  readonly paths: string[];
  readonly weights: TfjsWeightSpec[];
  readonly bytes: number;
}

/** Checks of model.json's fields; each failure names the field by its path in the file. */
class Checker {
  constructor(private readonly where: string) {}

  fail(field: string, problem: string, value?: unknown): never {
    throw new InputError(`${field} ${problem}${value === undefined ? '' : ` (got ${shown(value)})`}`, this.where);
  }

  format(v: unknown): void {
    if (v === undefined) this.fail('format', 'is missing: not a TF.js model.json');
    if (typeof v !== 'string') this.fail('format', 'must be a string', v);
    if (v !== 'graph-model') {
      throw new UnsupportedError(`format is ${shown(v)}: only TF.js graph models (format "graph-model") can be run`, this.where, 'file-format');
    }
  }

  topology(v: unknown, field: string): void {
    if (!isObject(v)) this.fail(field, v === undefined ? 'is missing' : 'must be an object', v);
    // tfjs-converter reads versions.producer whatever the graph
    if (!isObject(v.versions)) this.fail(`${field}.versions`, v.versions === undefined ? 'is missing' : 'must be an object', v.versions);
    const library = v.library;
    if (library !== undefined && library !== null) {
      if (!isObject(library)) this.fail(`${field}.library`, 'must be an object', library);
      const functions = library.function;
      if (functions !== undefined && functions !== null && !(Array.isArray(functions) && functions.length === 0)) {
        throw new UnsupportedError(`${field}.library holds functions (TF control flow), which a ConvNeXt graph never has`, this.where, 'tfjs-op');
      }
    }
    this.nodes(v.node, `${field}.node`);
  }

  private nodes(v: unknown, field: string): void {
    if (!Array.isArray(v)) this.fail(field, v === undefined ? 'is missing' : 'must be an array of nodes', v);
    const names = new Set<string>();
    v.forEach((n: unknown, i) => {
      const at = `${field}[${i}]`;
      if (!isObject(n)) this.fail(at, 'must be an object', n);
      // ':' separates a node from its output index in input names, so such a name could never be
      // an input; '__proto__' would set the prototype of the name table TF.js builds
      if (typeof n.name !== 'string' || n.name === '' || n.name.includes(':') || n.name === '__proto__') this.fail(`${at}.name`, 'must be a node name', n.name);
      if (names.has(n.name)) this.fail(`${at}.name`, 'repeats an earlier node', n.name);
      names.add(n.name);
      if (typeof n.op !== 'string' || n.op === '') this.fail(`${at}.op`, 'must be an op name', n.op);
      if (n.input !== undefined && n.input !== null && !(Array.isArray(n.input) && n.input.every((s) => typeof s === 'string'))) {
        this.fail(`${at}.input`, 'must be an array of node names', n.input);
      }
      if (n.attr !== undefined && n.attr !== null) {
        if (!isObject(n.attr)) this.fail(`${at}.attr`, 'must be an object', n.attr);
        for (const [k, a] of Object.entries(n.attr)) {
          // TF.js reads attribute values by field (a.list.i, a.shape.dim) without checking them
          if (!isObject(a) || (a.list !== undefined && !isObject(a.list)) || (a.shape !== undefined && !isObject(a.shape))) this.fail(`${at}.attr.${k}`, 'must be an AttrValue object', a);
        }
      }
    });
    // a second pass: inputs may name nodes that come later in the list
    v.forEach((n: { name: string; input?: string[] }, i) => {
      for (const input of n.input ?? []) {
        const source = (input.startsWith('^') ? input.slice(1) : input).split(':')[0];
        if (!names.has(source)) this.fail(`${field}[${i}] (${n.name})`, `has input ${shown(input)}, which names no node`);
      }
    });
  }

  /** A signature's first input sizes; [] when there is no signature or it has no input. */
  signature(v: unknown, field: string): number[] {
    if (v === undefined || v === null) return [];
    if (!isObject(v)) this.fail(field, 'must be an object', v);
    let first: number[] | undefined;
    for (const side of ['inputs', 'outputs'] as const) {
      const entries = v[side];
      if (entries === undefined || entries === null) continue;
      if (!isObject(entries)) this.fail(`${field}.${side}`, 'must be an object', entries);
      for (const [key, t] of Object.entries(entries)) {
        const at = `${field}.${side}.${key}`;
        if (!isObject(t)) this.fail(at, 'must be a TensorInfo object', t);
        if (typeof t.name !== 'string' || t.name === '') this.fail(`${at}.name`, 'must be a tensor name', t.name);
        const dims = this.tensorShape(t.tensorShape, `${at}.tensorShape`);
        if (side === 'inputs') first ??= dims;
      }
    }
    return first ?? [];
  }

  private tensorShape(v: unknown, field: string): number[] {
    if (v === undefined || v === null) return [];
    if (!isObject(v)) this.fail(field, 'must be an object', v);
    if (v.dim === undefined || v.dim === null) return [];
    if (!Array.isArray(v.dim)) this.fail(`${field}.dim`, 'must be an array', v.dim);
    return v.dim.map((d: unknown, i) => {
      // TF's JSON writes int64 sizes as strings; -1 is a size not known until run time
      const size = isObject(d) ? (typeof d.size === 'string' && /^-?\d+$/.test(d.size) ? Number(d.size) : d.size) : undefined;
      if (!Number.isSafeInteger(size) || (size as number) < -1) this.fail(`${field}.dim[${i}]`, 'must be {"size": n} with n a whole number, -1 if unknown', d);
      return size as number;
    });
  }

  manifest(v: unknown): Group[] {
    const field = 'weightsManifest';
    if (!Array.isArray(v)) this.fail(field, v === undefined ? 'is missing' : 'must be an array of weight groups', v);
    return v.map((g: unknown, i) => {
      const at = `${field}[${i}]`;
      if (!isObject(g)) this.fail(at, 'must be an object', g);
      if (!Array.isArray(g.paths) || !g.paths.every((p) => typeof p === 'string')) this.fail(`${at}.paths`, 'must be an array of file names', g.paths);
      if (!Array.isArray(g.weights)) this.fail(`${at}.weights`, 'must be an array of weight specs', g.weights);
      let bytes = 0;
      const weights = g.weights.map((w: unknown, j) => {
        const spec = this.weight(w, `${at}.weights[${j}]`);
        bytes += byteLength(spec, this, `${at}.weights[${j}] (${spec.name})`);
        if (!Number.isSafeInteger(bytes)) this.fail(at, 'needs more bytes than can be counted');
        return spec;
      });
      return { paths: g.paths as string[], weights, bytes };
    });
  }

  private weight(w: unknown, at: string): TfjsWeightSpec {
    if (!isObject(w)) this.fail(at, 'must be an object', w);
    if (typeof w.name !== 'string' || w.name === '') this.fail(`${at}.name`, 'must be a weight name', w.name);
    const named = `${at} (${w.name})`;
    if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) this.fail(`${named}.shape`, 'must be an array of whole numbers ≥ 0', w.shape);
    const dtype = w.dtype;
    if (typeof dtype !== 'string' || !(dtype in VALUE_BYTES)) {
      if (typeof dtype === 'string' && UNHANDLED_DTYPES.has(dtype)) throw new UnsupportedError(`${named}: dtype ${dtype} is not supported (float32, int32 and bool are)`, this.where, 'dtype');
      this.fail(`${named}.dtype`, `is not a TF.js dtype (${Object.keys(VALUE_BYTES).join(', ')})`, dtype);
    }
    const q = w.quantization;
    if (q === undefined || q === null) return { name: w.name, shape: w.shape as number[], dtype: dtype as ValueDtype };
    if (!isObject(q)) this.fail(`${named}.quantization`, 'must be an object', q);
    if (typeof q.dtype !== 'string' || !(q.dtype in QUANTIZED)) this.fail(`${named}.quantization.dtype`, `is not one TF.js dequantizes (${Object.keys(QUANTIZED).join(', ')})`, q.dtype);
    const quantized = q.dtype as QuantizedDtype;
    if (!(QUANTIZED[quantized].to as readonly string[]).includes(dtype)) this.fail(named, `cannot be ${dtype} stored as ${quantized}`);
    if (quantized === 'float16') return { name: w.name, shape: w.shape as number[], dtype: dtype as ValueDtype, quantization: { dtype: quantized } };
    // value = q·scale + min: TF.js takes both as given, so a missing one would make every weight NaN
    for (const k of ['scale', 'min'] as const) {
      if (typeof q[k] !== 'number' || !Number.isFinite(q[k])) this.fail(`${named}.quantization.${k}`, 'must be a finite number', q[k]);
    }
    return { name: w.name, shape: w.shape as number[], dtype: dtype as ValueDtype, quantization: { dtype: quantized, scale: q.scale as number, min: q.min as number } };
  }
}

function byteLength(spec: TfjsWeightSpec, check: Checker, at: string): number {
  const perValue = spec.quantization ? QUANTIZED[spec.quantization.dtype].bytes : VALUE_BYTES[spec.dtype];
  let n = perValue;
  for (const d of spec.shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) check.fail(at, `has shape [${spec.shape.join(', ')}], more bytes than can be counted`);
  }
  return n;
}

/**
 * Each group's shards, after checking that every path stays in the folder (symbolic links
 * resolved), names a regular file, and that the group's shards hold exactly the bytes its weights
 * need: sizes are compared before anything is read, so a manifest cannot ask for a huge read.
 */
async function readShards(folder: string, where: string, groups: readonly Group[]): Promise<ArrayBuffer> {
  const root = realpathSync(folder);
  const files = groups.map((g, i) => {
    const shards = g.paths.map((p) => shard(folder, root, p, where));
    const held = shards.reduce((sum, s) => sum + s.size, 0);
    if (held !== g.bytes) throw new InputError(`weightsManifest[${i}]: its weights need ${g.bytes} bytes but its shards hold ${held}`, where);
    return shards.map((s) => s.file);
  });
  const total = groups.reduce((sum, g) => sum + g.bytes, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const file of files.flat()) {
    const bytes = await readInputFile(file);
    if (at + bytes.length > total) throw new InputError('grew while being read', file);
    out.set(bytes, at);
    at += bytes.length;
  }
  if (at !== total) throw new InputError(`weight shards shrank while being read (${at} of ${total} bytes)`, where);
  return out.buffer;
}

function shard(folder: string, root: string, p: string, where: string): { file: string; size: number } {
  const named = `weight shard ${shown(p)}`;
  if (p === '' || isAbsolute(p) || p.includes('\0') || p.split(/[\\/]/).includes('..')) {
    throw new InputError(`${named}: a shard path must name a file inside the model's folder`, where);
  }
  const file = join(folder, p);
  const st = statInput(file);
  if (!st) throw new InputError(`${named} is missing`, where);
  const real = realpathSync(file);
  const inside = relative(root, real);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw new InputError(`${named} leaves the model's folder through a symbolic link`, where);
  }
  if (!st.isFile()) throw new InputError(`${named} is not a regular file`, where);
  return { file, size: st.size };
}
