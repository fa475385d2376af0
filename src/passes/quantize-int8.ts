// int8 quantization in QDQ form (opset ≥ 13: DequantizeLinear's per-channel `axis`). The identity:
//   Q(x)  = clamp(round_half_even(x / s) + z, qmin, qmax)          DQ(q) = (q − z)·s
//   Σ DQ(xq)·DQ(wq) = s_x·s_w[c] · Σ (xq − z_x)·wq                  (weights symmetric: z_w = 0)
// so a runtime can run Conv/MatMul/Gemm on the integers and rescale once per output channel; a bias
// stored as int32 at scale s_x·s_w[c] adds straight to that accumulator.
//
// What onnxruntime (CPU, 1.30) fuses, and so what this emits (checked by listing the ops of the
// session's optimised model, see test/quantize-passes.test.ts):
//   DQ(x) → Conv(DQ(w), DQ(b:int32)) → Q   ⇒ QLinearConv   every input must come from a DQ, the bias
//                                                           int32, and the output must go to a Q only
//   DQ(x) → MatMul(DQ(w))                  ⇒ MatMulIntegerToFloat (no output Q needed: float out)
//   DQ(x) → Gemm(DQ(w), DQ(b:int32))       ⇒ QGemm with float output
// Activations are uint8 by default: x86 onnxruntime fuses int8 (s8s8) activations only with the
// session option session.qdq_is_int8_allowed=1 (MLAS's fast path is u8×s8); without it, it rewrites
// int8 QDQ to uint8 for the dense layers but leaves the depthwise convs as float Conv between a DQ
// and a Q (measured). On ARM both types fuse.
// Conv outputs get a Q→DQ too (the fusion needs it, and every reader then sees the DQ), while
// MatMul/Gemm outputs stay float: fewer ranges to calibrate and less error before GELU, the
// residual Adds and the logits. LayerNorm, GELU, GRN and the residual Adds are not quantized.
//
// Static weights are 7-bit ([−64, 64], onnxruntime's reduce_range) by default: x86 CPUs without
// VNNI multiply u8×s8 with VPMADDUBSW, which adds pairs of products into int16 and saturates when
// 2·255·|w| > 32767. On an AVX2-only EPYC, with 8-bit weights, the fused model differed from the
// same QDQ graph run op by op by 0.10 (V1 fixture) and 0.28 (V2, top-1 flipped) of max |logit|;
// with 7-bit weights by < 1e-2. Pass reduceRange: false for VNNI/ARM/GPU targets. Weight-only
// models have float activations and never hit this: their weights use the full [−127, 127].
//
// Parameters follow onnxruntime's quantizer (quant_utils.compute_scale_zp): the range is widened to
// include 0 (so 0, the padding value, is exact), weights are symmetric with zero point 0, and a
// range of width 0 gives scale 1.

import { InputError, UnsupportedError, type Warnings } from '../errors.js';
import { attr, attrFloat, attrInt, topologicalOrder, withNodes, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { globMatcher } from '../graph/glob.js';
import { inferShapes } from '../graph/shapes.js';
import { numel, tensor, toFloat32, type Tensor } from '../graph/tensor.js';

export type QuantType = 'uint8' | 'int8';

export interface Range {
  readonly min: number;
  readonly max: number;
}

export interface QuantParams {
  /** float32-representable. */
  readonly scale: number;
  readonly zeroPoint: number;
}

export const QUANTIZABLE_OPS = ['Conv', 'MatMul', 'Gemm'] as const;
export type QuantizableOp = (typeof QUANTIZABLE_OPS)[number];

export interface WeightQuantizeOptions {
  /** Which layer types to quantize, among QUANTIZABLE_OPS. Default: all three. */
  readonly opTypes?: readonly string[];
  /** Node names, or globs where * matches any run of characters, left in float. */
  readonly exclude?: readonly string[];
  /** One weight scale per output channel (else one per tensor). Default true. */
  readonly perChannel?: boolean;
  /** Recorded in the `quantization` metadata; defaults 'weight-only' and 'static'. */
  readonly mode?: string;
  /** Recorded in the metadata too, e.g. the calibration method. */
  readonly method?: string;
  readonly warnings?: Warnings;
}

export interface StaticQuantizeOptions extends WeightQuantizeOptions {
  /** Activation type. Default uint8: the type onnxruntime's x86 CPU kernels fuse with int8 weights. */
  readonly activationType?: QuantType;
  /** 7-bit weights in [−64, 64] (onnxruntime's reduce_range), see the header. Default true. */
  readonly reduceRange?: boolean;
  /**
   * Activation scales and zero points as vectors along a static axis (the one value repeated)
   * instead of scalars: the same function, in the form onnxruntime-web's WebGPU (JSEP) computes
   * right. Its DequantizeLinear (1.30) reads a per-tensor 8-bit input wrongly when the size is a
   * multiple of 4 (word i/4 for the vec4 i: the first four values repeat), and subtracts uint8 zero
   * points in u32, which wraps below the zero point; int8 with a per-axis scale takes the path that
   * is right. onnxruntime's CPU fusions want scalars, so there this form runs op by op.
   */
  readonly vectorActivationScales?: boolean;
}

const FLOAT32_TINY = 1.1754943508222875e-38;
const INT32_MAX = 2 ** 31 - 1;

/** ties to even, as numpy's round and ONNX QuantizeLinear do */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** [qmin, qmax] as onnxruntime's quantizer picks them. */
export function quantRange(type: QuantType, options: { symmetric?: boolean; reduceRange?: boolean } = {}): [number, number] {
  if (type === 'uint8') return options.reduceRange ? [0, 127] : [0, 255];
  if (options.reduceRange) return [-64, 64];
  return options.symmetric ? [-127, 127] : [-128, 127];
}

/** Scale and zero point for values in `range`. */
export function quantizationParams(range: Range, type: QuantType, options: { symmetric?: boolean; reduceRange?: boolean } = {}): QuantParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
    throw new InputError(`invalid range [${range.min}, ${range.max}]`);
  }
  const [qmin, qmax] = quantRange(type, options);
  let rmin = Math.min(range.min, 0);
  let rmax = Math.max(range.max, 0);
  if (options.symmetric) {
    const absmax = Math.max(-rmin, rmax);
    rmin = -absmax;
    rmax = absmax;
  }
  const scale = (rmax - rmin) / (qmax - qmin);
  if (scale < FLOAT32_TINY) return { scale: 1, zeroPoint: 0 };
  const zeroPoint = options.symmetric ? roundHalfEven((qmin + qmax) / 2) : roundHalfEven(qmin - rmin / scale);
  return { scale: Math.fround(scale), zeroPoint };
}

// ---------------------------------------------------------------------------------------------
// Which layers

interface Layer {
  readonly node: Node;
  /** The weight's output-channel axis (DequantizeLinear's axis). */
  readonly axis: number;
  readonly weight: Tensor;
  /** A constant bias that can become int32 (Conv, Gemm with β = 1). */
  readonly bias?: Tensor;
}

/** The --exclude patterns that name no Conv, MatMul or Gemm of the graph (a typo, or another exporter's names). */
export function unmatchedPatterns(graph: Graph, patterns: readonly string[]): string[] {
  const layers = graph.nodes.filter((n) => (QUANTIZABLE_OPS as readonly string[]).includes(n.op));
  return patterns.filter((p) => !layers.some((n) => globMatcher([p])(n.name)));
}

/** True when `patterns` name every layer of `opTypes` the graph has: nothing would be quantized. */
export function excludesEveryLayer(graph: Graph, patterns: readonly string[], opTypes: readonly string[] = QUANTIZABLE_OPS): boolean {
  const excluded = globMatcher(patterns);
  const layers = graph.nodes.filter((n) => opTypes.includes(n.op));
  return patterns.length > 0 && layers.length > 0 && layers.every((n) => excluded(n.name));
}

/** The layers to quantize, and the Conv/MatMul/Gemm nodes left in float. */
function selectLayers(graph: Graph, options: WeightQuantizeOptions): { layers: Layer[]; keptFloat: string[] } {
  const opTypes = new Set<string>(options.opTypes ?? QUANTIZABLE_OPS);
  const unknown = [...opTypes].filter((op) => !(QUANTIZABLE_OPS as readonly string[]).includes(op));
  if (unknown.length) throw new InputError(`cannot quantize ${unknown.join(', ')}: only ${QUANTIZABLE_OPS.join(', ')} have int8 weights`);
  const excluded = globMatcher(options.exclude ?? []);
  const shapes = inferShapes(graph);
  const layers: Layer[] = [];
  const keptFloat: string[] = [];
  for (const node of graph.nodes) {
    if (!(QUANTIZABLE_OPS as readonly string[]).includes(node.op) || node.domain !== '') continue;
    const layer = opTypes.has(node.op) && !excluded(node.name) ? asLayer(graph, node, shapes) : undefined;
    if (layer) layers.push(layer);
    else keptFloat.push(node.name);
  }
  return { layers, keptFloat };
}

function asLayer(graph: Graph, node: Node, shapes: ReturnType<typeof inferShapes>): Layer | undefined {
  const x = node.inputs[0];
  const w = graph.initializers.get(node.inputs[1]);
  if (!x || graph.initializers.has(x) || shapes.get(x)?.dtype !== 'float32') return undefined;
  // a weight that is also a graph input can be overridden at run time: not a constant
  if (!w || w.dtype !== 'float32' || graph.inputs.some((v) => v.name === node.inputs[1])) return undefined;
  const b = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined;
  const vectorOf = (n: number) => (b && b.dtype === 'float32' && b.shape.length === 1 && b.shape[0] === n ? b : undefined);
  switch (node.op) {
    case 'Conv':
      return w.shape.length >= 3 ? { node, axis: 0, weight: w, bias: vectorOf(w.shape[0]) } : undefined;
    case 'MatMul':
      return w.shape.length === 2 ? { node, axis: 1, weight: w } : undefined;
    case 'Gemm': {
      if (w.shape.length !== 2) return undefined;
      const transB = attrInt(node, 'transB', 0) === 1;
      const n = transB ? w.shape[0] : w.shape[1];
      return { node, axis: transB ? 0 : 1, weight: w, bias: attrFloat(node, 'beta', 1) === 1 ? vectorOf(n) : undefined };
    }
  }
  return undefined;
}

/** Conv outputs are Q→DQ'd (onnxruntime's QLinearConv needs it), unless the output is a graph output. */
function quantizesOutput(graph: Graph, node: Node): boolean {
  return node.op === 'Conv' && !graph.outputs.some((o) => o.name === node.outputs[0]);
}

/** The values whose ranges quantizeStatic needs with these options, in graph order. */
export function activationsToCalibrate(graph: Graph, options: Pick<WeightQuantizeOptions, 'opTypes' | 'exclude'> = {}): string[] {
  const names = new Set<string>();
  for (const { node } of selectLayers(graph, options).layers) {
    names.add(node.inputs[0]);
    if (quantizesOutput(graph, node)) names.add(node.outputs[0]);
  }
  return [...names];
}

// ---------------------------------------------------------------------------------------------
// Rewriting

/** Symmetric int8 weights, one scale per slice along `axis` (or one for all when axis is undefined). */
export function quantizeWeight(w: Tensor, axis: number | undefined, reduceRange = false): { values: Int8Array; scales: Float32Array } {
  const data = toFloat32(w);
  const channels = axis === undefined ? 1 : w.shape[axis];
  const inner = axis === undefined ? data.length : numel(w.shape.slice(axis + 1));
  const channelOf = (j: number) => Math.floor(j / inner) % channels;
  const absmax = new Float64Array(channels);
  for (let j = 0; j < data.length; j++) absmax[channelOf(j)] = Math.max(absmax[channelOf(j)], Math.abs(data[j]));
  const options = { symmetric: true, reduceRange };
  const [qmin, qmax] = quantRange('int8', options);
  const scales = Float32Array.from(absmax, (m) => quantizationParams({ min: -m, max: m }, 'int8', options).scale);
  const values = new Int8Array(data.length);
  for (let j = 0; j < data.length; j++) {
    values[j] = Math.max(qmin, Math.min(qmax, roundHalfEven(data[j] / scales[channelOf(j)])));
  }
  return { values, scales };
}

// Builds the quantized graph node by node, in the source's order; names and constants come from a
// GraphEditor over the source, so new names never clash with old ones.
class Rewriter {
  readonly nodes: Node[] = [];
  private readonly names: GraphEditor;
  private readonly weights = new Map<string, { inputs: string[]; scales: Float32Array }>();

  constructor(readonly graph: Graph) {
    this.names = new GraphEditor(graph);
  }

  get initializers(): Map<string, Tensor> {
    return this.names.initializers;
  }

  unique(base: string): string {
    return this.names.uniqueName(base);
  }

  constant(base: string, t: Tensor): string {
    return this.names.addConstant(base, t);
  }

  op(op: string, name: string, inputs: string[], output: string, attrs: Node['attrs'] = {}): string {
    this.nodes.push({ name: this.unique(name), op, domain: '', inputs, outputs: [output], attrs });
    return output;
  }

  /** A weight as int8 + DequantizeLinear (one DQ per layer; layers sharing a weight share its int8 data). */
  dequantizedWeight(layer: Layer, perChannel: boolean, reduceRange: boolean): { value: string; scales: Float32Array } {
    const w = layer.node.inputs[1];
    const axis = perChannel ? layer.axis : undefined;
    const key = `${w}|${axis}|${reduceRange}|${layer.node.op === 'Gemm'}`;
    let stored = this.weights.get(key);
    if (!stored) {
      const { values, scales } = quantizeWeight(layer.weight, axis, reduceRange);
      const shape = axis === undefined ? [] : [scales.length];
      const inputs = [this.constant(`${w}.int8`, tensor('int8', layer.weight.shape, values)), this.constant(`${w}.scale`, tensor('float32', shape, scales))];
      // Symmetric weights need no zero point (absent means 0), which saves a byte per channel and a
      // name per layer. onnxruntime 1.30 fuses DQ→Conv/MatMul either way, but DQ→Gemm into QGemm
      // only with an explicit zero point.
      if (layer.node.op === 'Gemm') inputs.push(this.constant(`${w}.zero_point`, tensor('int8', shape, new Int8Array(scales.length))));
      stored = { inputs, scales };
      this.weights.set(key, stored);
    }
    const out = this.op('DequantizeLinear', `${layer.node.name}/weight/DequantizeLinear`, [...stored.inputs], this.unique(`${w}.dequantized`), axis === undefined ? {} : { axis: attr.int(axis) });
    return { value: out, scales: stored.scales };
  }

  /**
   * x → QuantizeLinear → DequantizeLinear; returns the DQ output. With `vector`, the scale and zero
   * point are repeated `vector.length` times along `vector.axis` (see vectorActivationScales).
   */
  qdq(x: string, base: string, p: QuantParams, type: QuantType, vector?: { axis: number; length: number }): string {
    const n = vector?.length ?? 1;
    const shape = vector ? [n] : [];
    const s = this.constant(`${base}.scale`, tensor('float32', shape, new Float32Array(n).fill(p.scale)));
    const zData = type === 'uint8' ? new Uint8Array(n).fill(p.zeroPoint) : new Int8Array(n).fill(p.zeroPoint);
    const z = this.constant(`${base}.zero_point`, tensor(type, shape, zData));
    const attrs: Node['attrs'] = vector ? { axis: attr.int(vector.axis) } : {};
    const q = this.op('QuantizeLinear', `${base}/QuantizeLinear`, [x, s, z], this.unique(`${base}.quantized`), attrs);
    return this.op('DequantizeLinear', `${base}/DequantizeLinear`, [q, s, z], this.unique(`${base}.dequantized`), attrs);
  }

  finish(metadata: Record<string, string>): Graph {
    return withNodes(this.graph, this.nodes, this.initializers, { metadata: { ...this.graph.metadata, ...metadata } });
  }
}

function requireOpset13(graph: Graph): void {
  const opset = graph.opsets[''] ?? graph.opsets['ai.onnx'] ?? 0;
  if (opset < 13) throw new UnsupportedError(`int8 QDQ needs opset 13 or later (per-channel DequantizeLinear); the graph has opset ${opset}`, undefined, 'quantization');
}

function quantizationMetadata(mode: string, options: WeightQuantizeOptions, keptFloat: string[]): Record<string, string> {
  return { quantization: JSON.stringify({ mode, method: options.method, layers_kept_float: keptFloat }) };
}

/**
 * int8 weights (per output channel by default) behind a DequantizeLinear; activations and biases
 * stay float. A storage format first: onnxruntime 1.30 on CPU turns DQ→MatMul into MatMulNBits but
 * dequantizes the Conv weights on every run (constant folding skips DQ), which is slower than the
 * float model; the session config session.disable_quant_qdq=1 folds them at load instead.
 */
export function quantizeWeightsOnly(graph: Graph, options: WeightQuantizeOptions = {}): Graph {
  requireOpset13(graph);
  const { layers, keptFloat } = selectLayers(graph, options);
  const byNode = new Map(layers.map((l) => [l.node, l]));
  const r = new Rewriter(graph);
  for (const node of topologicalOrder(graph)) {
    const layer = byNode.get(node);
    if (!layer) {
      r.nodes.push(node);
      continue;
    }
    const inputs = [...node.inputs];
    inputs[1] = r.dequantizedWeight(layer, options.perChannel ?? true, false).value;
    r.nodes.push({ ...node, inputs });
  }
  return r.finish(quantizationMetadata(options.mode ?? 'weight-only', options, keptFloat));
}

/**
 * Static int8: per-tensor Q→DQ on each quantized layer's activation input (and Conv outputs), int8
 * weights, int32 biases. `ranges` must hold every value activationsToCalibrate names.
 */
export function quantizeStatic(graph: Graph, ranges: ReadonlyMap<string, Range>, options: StaticQuantizeOptions = {}): Graph {
  requireOpset13(graph);
  const type = options.activationType ?? 'uint8';
  if (options.vectorActivationScales && type !== 'int8') throw new InputError('vector activation scales need int8 activations (onnxruntime-web\'s WebGPU subtracts uint8 zero points in u32)');
  const vectorOf = options.vectorActivationScales ? staticAxisOf(graph) : () => undefined;
  const missing = activationsToCalibrate(graph, options).filter((v) => !ranges.has(v));
  if (missing.length) throw new InputError(`no calibration range for ${missing.length} value(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  const { layers, keptFloat } = selectLayers(graph, options);
  const byNode = new Map(layers.map((l) => [l.node, l]));
  const r = new Rewriter(graph);
  // value → its Q→DQ (output and scale), made once and shared by every quantized reader
  const quantized = new Map<string, { dq: string; params: QuantParams }>();
  // value → what every reader reads instead (a Conv output behind its Q→DQ)
  const readAs = new Map<string, string>();
  const paramsOf = (v: string) => quantizationParams(ranges.get(v)!, type);

  for (const node of topologicalOrder(graph)) {
    const inputs = node.inputs.map((v) => readAs.get(v) ?? v);
    const layer = byNode.get(node);
    if (!layer) {
      r.nodes.push({ ...node, inputs });
      continue;
    }
    const x = node.inputs[0];
    let act = quantized.get(x);
    if (!act) {
      const params = paramsOf(x);
      act = { dq: r.qdq(inputs[0], x, params, type, vectorOf(x)), params };
      quantized.set(x, act);
    }
    inputs[0] = act.dq;
    const weight = r.dequantizedWeight(layer, options.perChannel ?? true, options.reduceRange ?? true);
    inputs[1] = weight.value;
    if (layer.bias) inputs[2] = int32Bias(r, layer, act.params.scale, weight.scales, options.warnings);
    r.nodes.push({ ...node, inputs });

    if (quantizesOutput(graph, node)) {
      const y = node.outputs[0];
      const params = paramsOf(y);
      const dq = r.qdq(y, y, params, type, vectorOf(y));
      quantized.set(y, { dq, params });
      readAs.set(y, dq);
    }
  }
  return r.finish(quantizationMetadata(options.mode ?? 'static', options, keptFloat));
}

/**
 * For vector activation scales: the longest fixed-size axis of each value past the batch, so the
 * vector fits any batch (and image size, when that is symbolic). Length 1 will not do: JSEP takes a
 * one-element scale for a per-tensor one.
 */
function staticAxisOf(graph: Graph): (value: string) => { axis: number; length: number } {
  const shapes = inferShapes(graph);
  return (value) => {
    const shape = shapes.get(value)?.shape ?? [];
    let best: { axis: number; length: number } | undefined;
    shape.forEach((d, axis) => {
      if (axis > 0 && typeof d === 'number' && d > 1 && d > (best?.length ?? 0)) best = { axis, length: d };
    });
    if (!best) throw new UnsupportedError(`the WebGPU int8 form needs a fixed axis longer than 1 on ${value} (shape [${shape.join(', ')}])`, undefined, 'quantization');
    return best;
  };
}

/** b / (s_x·s_w[c]) rounded into int32, behind a DequantizeLinear with exactly that scale. */
function int32Bias(r: Rewriter, layer: Layer, xScale: number, wScales: Float32Array, warnings: Warnings | undefined): string {
  const b = toFloat32(layer.bias!);
  const scales = Float32Array.from(b, (_, c) => Math.fround(xScale * wScales[wScales.length === 1 ? 0 : c]));
  const values = new Int32Array(b.length);
  let clamped = 0;
  for (let c = 0; c < b.length; c++) {
    const q = roundHalfEven(b[c] / scales[c]);
    if (Math.abs(q) > INT32_MAX) clamped++;
    values[c] = Math.max(-INT32_MAX, Math.min(INT32_MAX, q));
  }
  if (clamped) warnings?.add(`int8: ${clamped} bias values of ${layer.node.name} exceed int32 at scale s_x·s_w and were clamped`);
  const name = layer.node.inputs[2];
  const q = r.constant(`${name}.int32`, tensor('int32', [b.length], values));
  const s = r.constant(`${name}.scale`, tensor('float32', [b.length], scales));
  return r.op('DequantizeLinear', `${layer.node.name}/bias/DequantizeLinear`, [q, s], r.unique(`${name}.dequantized`), { axis: attr.int(0) });
}
