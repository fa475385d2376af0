// The TFLite (LiteRT) writer: one `.tflite` flatbuffer from our graph, through the NHWC lowering the
// TF.js writer uses (formats/tfjs/lower.ts) and a translation of its TF ops into TFLite builtins
// (ops.ts). The image input is float32 [batch, H, W, 3], the batch fixed in the file (1 by default:
// LiteRT's compiled models take static shapes); layer weights are float32, or float16 / per-channel
// int8 constants DEQUANTIZE'd in the graph. Our metadata (labels, preprocessing, source, converter, quantization) travels as a TFLite
// metadata entry `convnext_toolchain` holding the same JSON values as ONNX's metadata_props.

import { InputError, UnsupportedError } from '../../errors.js';
import { globMatcher } from '../../graph/glob.js';
import type { Graph } from '../../graph/graph.js';
import { TOOL_NAME, TOOL_VERSION } from '../../version.js';
import { writeFilesAtomic } from '../files.js';
import { structuredMetadata } from '../json-values.js';
import { lowerToTf } from '../tfjs/lower.js';
import { buildModel, TensorType } from './schema.js';
import { ANDROID_METADATA_NAME, LABELS_FILE, modelMetadata, storedZip } from './android-metadata.js';
import { labelsOf, metadataJson } from '../../model/metadata.js';
import { TFLITE_OPS, TFLITE_WEIGHTS, TfliteBuilder, type TfliteWeights } from './ops.js';
import type { Range } from './int8.js';

export { TFLITE_WEIGHTS, type TfliteWeights } from './ops.js';

export interface TfliteOptions {
  /** Storage of conv and fully connected weights; default 'float32'. */
  readonly weights?: TfliteWeights;
  /** Exact GELU ('erf', default) or the tanh approximation (GELU's `approximate`). */
  readonly gelu?: 'erf' | 'tanh';
  /**
   * The input's batch size, fixed in the file (default 1): LiteRT's compiled models take only
   * static shapes (LiteRT.js refuses a tensor for an input of shape [−1, H, W, 3]).
   */
  readonly batch?: number;
  /**
   * Calibrated ranges by ONNX value name (see tfliteInt8Values): a CONV_2D, DEPTHWISE_CONV_2D or
   * FULLY_CONNECTED whose input and output both have one runs full-integer int8; the rest of the
   * graph stays float32.
   */
  readonly activationRanges?: ReadonlyMap<string, Range>;
  /**
   * The model's input and output ('float', default, or 'uint8'; full-integer models only): see
   * TFLITE_IO. Needs the ranges of the graph's input and output (tfliteInt8Values with `io`).
   */
  readonly io?: TfliteIo;
  /** Layers kept float32, weights included, in a full-integer model: names or globs (`stages.3.*`). */
  readonly exclude?: readonly string[];
  /**
   * Keep every tensor's name (default: only the model's input and output are named). Names are
   * optional in TFLite and nothing at run time reads them (the signature has its own); on a small
   * model they are a few per cent of the file.
   */
  readonly keepNames?: boolean;
}

/**
 * 'uint8': the input is the image's RGB bytes, [batch, H, W, 3] uint8 (scale 1/255, zero point 0),
 * normalised inside the model by one MUL and ADD per channel, and the output the logits as uint8 at
 * their calibrated scale and zero point. uint8, not int8, because that is what Android's Task Library
 * ImageClassifier takes (uint8 or float32 input and output: tflite-support's image preprocessor and
 * classification postprocessor refuse int8), and feeds a uint8 image its bitmap bytes unnormalised;
 * LiteRT.js too runs only float32, int32 and uint8 tensors. Raw bytes also lose nothing: a per-tensor
 * int8 scale cannot hold the per-channel normalisation, the model can.
 */
export type TfliteIo = 'float' | 'uint8';
export const TFLITE_IO: readonly TfliteIo[] = ['float', 'uint8'];

/** TF ops that have full-integer int8 kernels in LiteRT and are written int8 when calibrated. */
const INT8_TF_OPS = new Set(['Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative', 'MatMul', '_FusedMatMul']);

/**
 * The ONNX values to calibrate for full-integer TFLite: the inputs and outputs of the layers that
 * will run int8, found through the same lowering the writer does. A range is a per-tensor min/max,
 * which the NHWC lowering does not change (it permutes a value's elements, never computes them), so
 * ranges measured on the float ONNX graph hold for the TFLite tensors. The layer that reads the image
 * stays float unless `quantizeInputLayer`, as in ONNX int8.
 */
export function tfliteInt8Values(graph: Graph, options: { readonly quantizeInputLayer?: boolean; readonly io?: TfliteIo; readonly exclude?: readonly string[] } = {}): string[] {
  const excluded = globMatcher(options.exclude ?? []);
  const { emitter: e, graph: g } = lowerToTf(graph, { weights: 'float32', gelu: 'erf', geluOp: true }, 'TFLite');
  const inputs = new Set(g.inputs.map((v) => e.refOf(v.name)));
  const byRef = onnxValuesByRef(e, g);
  const layers = layerNamesByRef(e, g);
  const constants = new Set(e.weights.map((w) => w.spec.name));
  const wanted = new Set<string>();
  for (const n of e.nodes) {
    if (!INT8_TF_OPS.has(n.op) || !constants.has(n.input[1]) || excluded(layers.get(n.name) ?? n.name)) continue;
    if (!options.quantizeInputLayer && inputs.has(n.input[0])) continue;
    const [x, y] = [byRef.get(n.input[0]), byRef.get(n.name)];
    if (x !== undefined && y !== undefined) wanted.add(x).add(y);
  }
  // uint8 output: the logits' range (the input's is fixed: bytes)
  if ((options.io ?? 'float') !== 'float') for (const v of g.outputs) wanted.add(byRef.get(e.refOf(v.name)!)!);
  return [...wanted];
}

/** One ONNX value per TF node that holds one (any of them: they hold the same elements). */
function onnxValuesByRef(e: ReturnType<typeof lowerToTf>['emitter'], g: Graph): Map<string, string> {
  const byRef = new Map<string, string>();
  const values = [...g.inputs.map((v) => v.name), ...g.nodes.flatMap((n) => n.outputs)];
  for (const v of values) {
    const ref = e.refOf(v);
    if (ref !== undefined && !byRef.has(ref)) byRef.set(ref, v);
  }
  return byRef;
}

/**
 * The graph's layer name for each TF node that computes a layer's output: --exclude names layers as
 * the graph does (`head.fc`), while the lowering may name a node after its output (`logits`).
 */
function layerNamesByRef(e: ReturnType<typeof lowerToTf>['emitter'], g: Graph): Map<string, string> {
  const names = new Map<string, string>();
  for (const n of g.nodes) {
    const ref = n.outputs[0] === undefined ? undefined : e.refOf(n.outputs[0]);
    if (ref !== undefined && !names.has(ref)) names.set(ref, n.name);
  }
  return names;
}

/** The name of the metadata entry holding our JSON metadata. */
export const METADATA_NAME = 'convnext_toolchain';

export function encodeTflite(graph: Graph, options: TfliteOptions = {}): Uint8Array {
  const weights = options.weights ?? 'float32';
  const gelu = options.gelu ?? 'erf';
  if (!TFLITE_WEIGHTS.includes(weights)) throw new InputError(`TFLite weights are ${TFLITE_WEIGHTS.join(', ')}, not '${weights}'`);
  if (gelu !== 'erf' && gelu !== 'tanh') throw new InputError(`unknown GELU form '${gelu}' (erf or tanh)`);
  const io = options.io ?? 'float';
  if (!TFLITE_IO.includes(io)) throw new InputError(`TFLite input/output is ${TFLITE_IO.join(' or ')}, not '${io}'`);
  if (io !== 'float' && !options.activationRanges) throw new InputError(`--io ${io} applies to full-integer int8 TFLite (quantize --to int8 --calib DIR)`);
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new InputError(`the batch size must be a positive whole number, not ${batch}`);
  for (const v of graph.inputs) {
    if (v.shape.slice(1).some((d) => typeof d !== 'number')) {
      throw new UnsupportedError(`TFLite export takes a fixed image size; input ${v.name} is [${v.shape.join(', ')}] (convert without --dynamic-size)`, undefined, 'tflite-op');
    }
  }
  const { emitter: e, graph: g } = lowerToTf(graph, { weights: 'float32', gelu, geluOp: true }, 'TFLite');
  const consts = new Map(e.weights.map((w) => [w.spec.name, constOf(w.spec.dtype, w.spec.shape, w.bytes)]));
  const ranges = options.activationRanges && tfRanges(e, g, options.activationRanges);
  const excluded = globMatcher(options.exclude ?? []);
  const layers = layerNamesByRef(e, g);
  const m = new TfliteBuilder(consts, weights, ranges, (name) => excluded(layers.get(name) ?? name));
  const ref = (value: string) => e.get(value).ref;
  const preprocessing = metadataJson<{ mean: number[]; std: number[] }>(graph.metadata, 'preprocessing');
  const fed = new Map<string, number>();
  for (const n of e.nodes) {
    if (n.op === 'Placeholder') {
      const dims = n.attr.shape && 'shape' in n.attr.shape ? (n.attr.shape.shape.dim ?? []).map((d) => Number(d.size)) : [];
      const shape = dims.map((d, i) => (i === 0 && d === -1 ? batch : d));
      const x: { input: number; normalised?: number } = io === 'uint8' ? bytesInput(m, n.name, shape, preprocessing) : { input: m.addTensor(n.name, TensorType.FLOAT32, shape) };
      fed.set(n.name, x.input);
      m.refs.set(n.name, x.normalised ?? x.input);
      continue;
    }
    const handler = TFLITE_OPS[n.op];
    if (!handler) throw new UnsupportedError(`TFLite export does not support TF op ${n.op} (from node ${n.name})`, n.name, 'tflite-op');
    handler(n, m);
  }
  const inputs = g.inputs.map((v) => fed.get(ref(v.name))!);
  const outputs = g.outputs.map((v) => (io === 'uint8' ? bytesOutput(m, m.input(ref(v.name)), ranges!.get(ref(v.name))) : m.input(ref(v.name))));
  if (ranges) m.pruneUnread(outputs);
  const provenance = m.buffers.push(new TextEncoder().encode(JSON.stringify(structuredMetadata(graph.metadata)))) - 1;
  const labels = labelsOf(graph.metadata);
  const [, h, w] = m.tensors[inputs[0]].shape;
  const variant = metadataJson<{ variant?: string }>(graph.metadata, 'source')?.variant;
  const android = m.buffers.push(modelMetadata({
    name: variant ? `ConvNeXt ${variant}` : 'ConvNeXt',
    description: 'ConvNeXt image classifier',
    version: `${TOOL_NAME} ${TOOL_VERSION}`,
    inputName: g.inputs[0].name,
    outputName: g.outputs[0].name,
    size: [h, w],
    // a uint8 model takes the bytes as they are (the Task Library does not normalise uint8 input)
    preprocessing: io === 'uint8' ? { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] } : preprocessing,
    inputType: io === 'uint8' ? 'uint8' : 'float32',
    hasLabels: labels !== undefined,
  })) - 1;
  const ends = new Set([...inputs, ...outputs]);
  let model: Uint8Array;
  try {
    model = buildModel({
      description: graph.metadata.converter ?? `${TOOL_NAME} ${TOOL_VERSION}`,
      operatorCodes: m.codes,
      tensors: options.keepNames ? m.tensors : m.tensors.map((t, i) => (ends.has(i) ? t : { ...t, name: undefined })),
      inputs,
      outputs,
      operators: m.operators,
      buffers: m.buffers,
      metadata: [{ name: METADATA_NAME, buffer: provenance }, { name: ANDROID_METADATA_NAME, buffer: android }],
      signature: { key: 'serving_default', inputs: g.inputs.map((v) => v.name), outputs: g.outputs.map((v) => v.name) },
    });
  } catch (err) {
    if (err instanceof RangeError) throw new UnsupportedError('TFLite models over 2 GiB (one flatbuffer) are not supported; use --weights float16 or int8', undefined, 'other');
    throw err;
  }
  if (!labels) return model;
  const zip = storedZip([{ name: LABELS_FILE, data: new TextEncoder().encode(`${labels.map((l) => l.replace(/[\r\n]+/g, ' ')).join('\n')}\n`) }], model.length);
  const out = new Uint8Array(model.length + zip.length);
  out.set(model);
  out.set(zip, model.length);
  return out;
}

/**
 * The uint8 image input: the bytes (scale 1/255: real values 0–1, as preprocessing's mean and std
 * count them) DEQUANTIZE'd, then x·(1/std) + (−mean/std) per channel, NHWC's last axis.
 */
function bytesInput(m: TfliteBuilder, name: string, shape: readonly number[], p: { mean: number[]; std: number[] } | undefined): { input: number; normalised: number } {
  if (!p || p.mean.length !== 3 || p.std.length !== 3) throw new InputError('--io uint8 needs the model\'s per-channel mean and std (give --mean and --std)');
  const bytes = m.addTensor(name, TensorType.UINT8, shape, undefined, { scale: Float32Array.of(1 / 255), zeroPoint: [0], quantizedDimension: 0 });
  const unit = m.addTensor(`${name}/unit`, TensorType.FLOAT32, shape);
  m.op('DEQUANTIZE', [bytes], [unit]);
  const scaled = m.addTensor(`${name}/scaled`, TensorType.FLOAT32, shape);
  m.op('MUL', [unit, floats(m, `${name}/inv_std`, p.std.map((s) => 1 / s))], [scaled], { name: 'MulOptions', values: {} });
  const normalised = m.addTensor(`${name}/normalised`, TensorType.FLOAT32, shape);
  m.op('ADD', [scaled, floats(m, `${name}/shift`, p.mean.map((v, c) => -v / p.std[c]))], [normalised], { name: 'AddOptions', values: {} });
  return { input: bytes, normalised };
}

/** The uint8 output: the logits' int8 form (the last layer's own, or a QUANTIZE) requantized by +128. */
function bytesOutput(m: TfliteBuilder, y: number, r: Range | undefined): number {
  if (!r) throw new Error('internal: the output was not calibrated');
  const yq = m.int8Form(y, r);
  const q = m.tensors[yq].quantization!;
  const name = m.tensors[y].name;
  m.tensors[y] = { ...m.tensors[y], name: `${name}/float` };
  const out = m.addTensor(name, TensorType.UINT8, m.shape(y), undefined, { ...q, zeroPoint: q.zeroPoint.map((z) => z + 128) });
  m.op('QUANTIZE', [yq], [out], undefined, 2);
  return out;
}

const floats = (m: TfliteBuilder, name: string, values: readonly number[]) => m.addTensor(name, TensorType.FLOAT32, [values.length], new Uint8Array(Float32Array.from(values).buffer));

function tfRanges(e: ReturnType<typeof lowerToTf>['emitter'], g: Graph, ranges: ReadonlyMap<string, Range>): Map<string, Range> {
  const out = new Map<string, Range>();
  for (const [ref, v] of onnxValuesByRef(e, g)) {
    const r = ranges.get(v);
    if (r) out.set(ref, r);
  }
  return out;
}

function constOf(dtype: 'float32' | 'int32', shape: readonly number[], bytes: Uint8Array) {
  const copy = bytes.slice(); // aligned for the typed array view
  const data = dtype === 'int32' ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer);
  return { dtype, shape: [...shape], data } as const;
}

/** Encodes and writes atomically (temporary name, then rename). */
export function writeTfliteModel(graph: Graph, path: string, options: TfliteOptions = {}): { bytes: number } {
  const bytes = encodeTflite(graph, options);
  writeFilesAtomic([{ path, chunks: [bytes] }]);
  return { bytes: bytes.byteLength };
}
