// Linear layers as the folding passes see them: a constant weight with an output-channel axis and
// an input-channel axis, and an optional constant bias. Three ONNX spellings:
//   MatMul(x, W[in,out]) [→ Add(·, b[out])]        channels on the last axis
//   Gemm(x, W, b) with transB                       channels on the last axis
//   Conv(x, W[out,in/g,kh,kw], b[out])              channels on axis 1
// Scaling output channels and absorbing an input affine are the two identities the passes use:
//   (x·W + b)·s       = x·(W·diag(s)) + b·s
//   (x·γ + β)·W + b   = x·(diag(γ)·W) + (β·W + b)        (conv: exact only without padding)

import { attrFloat, attrInt, attrInts, type Node } from '../graph/graph.js';
import type { GraphEditor } from '../graph/edit.js';
import type { PassContext } from './pass.js';
import { numel, tensor, toFloat32, type Tensor } from '../graph/tensor.js';

export interface Linear {
  readonly kind: 'matmul' | 'gemm' | 'conv';
  /** The node reading the activation. */
  readonly node: Node;
  /** For MatMul: the Add that applies the bias, when there is one. */
  readonly biasAdd?: Node;
  /** The value holding the layer's result (after the bias). */
  readonly output: string;
  readonly weight: Tensor;
  readonly bias?: Tensor;
  readonly outChannels: number;
  readonly inChannels: number;
}

const isVector = (t: Tensor | undefined, n: number) => t !== undefined && t.dtype === 'float32' && numel(t.shape) === n;

/** The linear layer whose activation input is `value`, if `node` is one with constant weights. */
export function linearReading(editor: GraphEditor, node: Node, value: string): Linear | undefined {
  if (node.inputs[0] !== value) return undefined;
  const w = editor.constant(node.inputs[1]);
  if (!w || w.dtype !== 'float32') return undefined;
  if (node.op === 'MatMul' && w.shape.length === 2) {
    const [inC, outC] = w.shape;
    const users = editor.consumers(node.outputs[0]);
    const add = users.length === 1 && users[0].op === 'Add' && !editor.isGraphOutput(node.outputs[0]) ? users[0] : undefined;
    const biasName = add ? add.inputs.find((i) => i !== node.outputs[0]) : undefined;
    const bias = biasName ? editor.constant(biasName) : undefined;
    if (add && isVector(bias, outC) && bias!.shape.length === 1) {
      return { kind: 'matmul', node, biasAdd: add, output: add.outputs[0], weight: w, bias, outChannels: outC, inChannels: inC };
    }
    return { kind: 'matmul', node, output: node.outputs[0], weight: w, outChannels: outC, inChannels: inC };
  }
  if (node.op === 'Gemm' && w.shape.length === 2) {
    if (attrInt(node, 'transA', 0) !== 0 || attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) return undefined;
    const transB = attrInt(node, 'transB', 0) === 1;
    const [outC, inC] = transB ? w.shape : [w.shape[1], w.shape[0]];
    const bias = node.inputs[2] ? editor.constant(node.inputs[2]) : undefined;
    if (node.inputs[2] && !isVector(bias, outC)) return undefined;
    return { kind: 'gemm', node, output: node.outputs[0], weight: w, bias, outChannels: outC, inChannels: inC };
  }
  if (node.op === 'Conv' && w.shape.length === 4) {
    const bias = node.inputs[2] ? editor.constant(node.inputs[2]) : undefined;
    if (node.inputs[2] && !isVector(bias, w.shape[0])) return undefined;
    const group = attrInt(node, 'group', 1);
    return { kind: 'conv', node, output: node.outputs[0], weight: w, bias, outChannels: w.shape[0], inChannels: w.shape[1] * group };
  }
  return undefined;
}

/** The linear layer producing `value` (MatMul+Add, Gemm or Conv), if any. */
export function linearProducing(editor: GraphEditor, value: string): Linear | undefined {
  const p = editor.producer(value);
  if (!p) return undefined;
  if (p.op === 'Add') {
    for (const i of p.inputs) {
      const mm = editor.producer(i);
      if (mm?.op === 'MatMul') {
        const l = linearReading(editor, mm, mm.inputs[0]);
        if (l?.biasAdd === p) return l;
      }
    }
    return undefined;
  }
  const l = linearReading(editor, p, p.inputs[0]);
  return l && l.output === value ? l : undefined;
}

// How a weight's flat data is laid out around the channels: output channel first (Gemm transB,
// Conv: each output owns a contiguous run) or last (MatMul, Gemm: element j feeds output j % out).
function layout(l: Linear): { outFirst: boolean; perOutput: number } {
  const outFirst = l.kind === 'conv' || (l.kind === 'gemm' && attrInt(l.node, 'transB', 0) === 1);
  return { outFirst, perOutput: numel(l.weight.shape) / l.outChannels };
}

/** Replaces the layer's weight and bias so that its output is multiplied by `scale` per channel. */
export function scaleOutputChannels(editor: GraphEditor, l: Linear, scale: Float32Array, tag: string, ctx: PassContext): void {
  const w = writableWeight(editor, l, ctx);
  const { outFirst, perOutput } = layout(l);
  const out = l.outChannels;
  if (outFirst) {
    for (let o = 0; o < out; o++) scaleRun(w, o * perOutput, perOutput, scale[o]);
  } else {
    for (let j = 0; j < w.length; j += out) mulRow(w, j, scale, out);
  }
  setWeight(editor, l, w, tag);
  if (l.bias) setBias(editor, l, Float32Array.from(toFloat32(l.bias), (v, o) => v * scale[o]), tag);
}

/** Absorbs an affine x·γ + β on the layer's input channels into its weight and bias. */
export function absorbInputAffine(editor: GraphEditor, l: Linear, gamma: Float32Array, beta: Float32Array | undefined, tag: string, ctx: PassContext): void {
  // with γ = 1 only the bias changes, and the weight is read, never written (×1)
  const identity = gamma.every((v) => v === 1);
  const w = identity ? toFloat32(l.weight) : writableWeight(editor, l, ctx);
  const out = l.outChannels;
  const b = beta ?? new Float32Array(gamma.length);
  const shift = new Float64Array(out);
  const { outFirst, perOutput } = layout(l);
  if (outFirst) {
    // W[o, i, kh, kw] (Gemm transB: W[o, i]); with groups, output o sees its group's inputs only
    const kernel = l.kind === 'conv' ? l.weight.shape[2] * l.weight.shape[3] : 1;
    const inputs = perOutput / kernel;
    const outPerGroup = out / (l.kind === 'conv' ? attrInt(l.node, 'group', 1) : 1);
    for (let o = 0; o < out; o++) {
      const first = Math.floor(o / outPerGroup) * inputs;
      shift[o] = kernel === 1
        ? dotScaleRow(w, o * perOutput, gamma, b, first, inputs)
        : dotScaleKernelRow(w, o * perOutput, gamma, b, first, inputs, kernel);
    }
  } else {
    // MatMul / Gemm: W[in, out]; row i feeds every output
    for (let i = 0; i < l.inChannels; i++) dotScaleColumns(w, i * out, gamma[i], b[i], shift, out);
  }
  if (!identity) setWeight(editor, l, w, tag);
  if (!beta) return;
  const bias = new Float32Array(out);
  const old = l.bias ? toFloat32(l.bias) : undefined;
  for (let o = 0; o < out; o++) bias[o] = (old ? old[o] : 0) + shift[o];
  setBias(editor, l, bias, tag);
}

// The loops that touch every pointwise weight of a model on convert. Each is small and always sees
// the same array types, so V8 optimises it after its first few calls instead of running a large
// function's cold branches in the interpreter; two partial sums halve the add latency chain.

// w[at..at+n) *= s
function scaleRun(w: Float32Array, at: number, n: number, s: number): void {
  for (let j = at, end = at + n; j < end; j++) w[j] *= s;
}

// w[at + k] *= s[k] for k < n
function mulRow(w: Float32Array, at: number, s: Float32Array, n: number): void {
  for (let k = 0; k < n; k++) w[at + k] *= s[k];
}

// Σ w[at + k]·β[from + k], then w[at + k] *= γ[from + k]
function dotScaleRow(w: Float32Array, at: number, gamma: Float32Array, beta: Float32Array, from: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < n; k += 2) {
    const a = w[at + k];
    const c = w[at + k + 1];
    s0 += a * beta[from + k];
    s1 += c * beta[from + k + 1];
    w[at + k] = a * gamma[from + k];
    w[at + k + 1] = c * gamma[from + k + 1];
  }
  if (k < n) {
    const a = w[at + k];
    s0 += a * beta[from + k];
    w[at + k] = a * gamma[from + k];
  }
  return s0 + s1;
}

// dotScaleRow over n input channels that own `kernel` consecutive weights each
function dotScaleKernelRow(w: Float32Array, at: number, gamma: Float32Array, beta: Float32Array, from: number, n: number, kernel: number): number {
  let sum = 0;
  for (let i = 0, j = at; i < n; i++) {
    const g = gamma[from + i];
    let run = 0;
    for (let end = j + kernel; j < end; j++) {
      run += w[j];
      w[j] *= g;
    }
    sum += run * beta[from + i];
  }
  return sum;
}

// shift[o] += w[at + o]·β, then w[at + o] *= γ, for o < n
function dotScaleColumns(w: Float32Array, at: number, g: number, b: number, shift: Float64Array, n: number): void {
  for (let o = 0; o < n; o++) {
    const v = w[at + o];
    shift[o] += v * b;
    w[at + o] = v * g;
  }
}

// The weight's data to rewrite: the tensor's own array when the caller allows it and no other node
// reads the constant, else a copy. (Each loop below reads an element before it writes it.)
function writableWeight(editor: GraphEditor, l: Linear, ctx: PassContext): Float32Array {
  if (mayRewrite(editor, l.node.inputs[1], ctx)) return l.weight.data as Float32Array;
  return toFloat32(l.weight).slice();
}

/**
 * A Conv that is a MatMul over channels: float32 1×1 kernel, stride 1, no padding, one group. A
 * constant added to its input moves into its bias exactly, and it can be rewritten as a MatMul.
 */
export function isPointwiseConv(node: Node, weight: Tensor): boolean {
  if (weight.dtype !== 'float32' || weight.shape.length !== 4 || weight.shape[2] !== 1 || weight.shape[3] !== 1) return false;
  const ones = (name: string) => attrInts(node, name, [1, 1]).every((v) => v === 1);
  const pads = attrInts(node, 'pads', [0, 0, 0, 0]).every((v) => v === 0);
  const autoPad = node.attrs.auto_pad?.kind === 'string' ? node.attrs.auto_pad.value : 'NOTSET';
  return attrInt(node, 'group', 1) === 1 && ones('strides') && ones('dilations') && pads && ['NOTSET', 'VALID'].includes(autoPad);
}

/** Whether a pass may overwrite constant `name`'s float32 array: allowed by the caller, one reader, no alias. */
export function mayRewrite(editor: GraphEditor, name: string, ctx: PassContext): boolean {
  const t = editor.constant(name);
  if (!ctx.inPlace || !t || t.dtype !== 'float32') return false;
  const d = t.data;
  const end = d.byteOffset + d.byteLength;
  // fold-constants' Identity/Reshape results share their input's array: such aliases count as readers
  const aliased = [...editor.initializers].some(
    ([other, u]) => other !== name && u.data.buffer === d.buffer && u.data.byteOffset < end && d.byteOffset < u.data.byteOffset + u.data.byteLength,
  );
  return !aliased && editor.consumers(name).length === 1 && !editor.isGraphOutput(name);
}

function setWeight(editor: GraphEditor, l: Linear, data: Float32Array, tag: string): void {
  if (data === l.weight.data) return; // rewritten in place: the constant keeps its name
  const name = editor.addConstant(`${l.node.inputs[1]}.${tag}`, tensor('float32', l.weight.shape, data));
  const node = editor.node(l.node.name)!;
  const inputs = [...node.inputs];
  inputs[1] = name;
  editor.withInputs(node, inputs);
}

function setBias(editor: GraphEditor, l: Linear, data: Float32Array, tag: string): void {
  if (l.kind === 'matmul') {
    const node = editor.node(l.node.name)!;
    const biasAdd = l.biasAdd && editor.node(l.biasAdd.name);
    if (biasAdd) {
      const old = biasAdd.inputs.find((i) => i !== node.outputs[0])!;
      const name = editor.addConstant(`${old}.${tag}`, tensor('float32', [l.outChannels], data));
      editor.withInputs(biasAdd, biasAdd.inputs.map((i) => (i === old ? name : i)));
    } else {
      // A MatMul without bias gains one: an Add after it, taking over its output name.
      const name = editor.addConstant(`${node.inputs[1]}.bias.${tag}`, tensor('float32', [l.outChannels], data));
      const inner = editor.uniqueName(`${node.outputs[0]}/pre_bias`);
      editor.replaceNode(node, { ...node, outputs: [inner] });
      editor.insertAfter(editor.node(node.name)!, {
        name: editor.uniqueName(`${node.name}/bias`),
        op: 'Add',
        domain: '',
        inputs: [inner, name],
        outputs: [node.outputs[0]],
        attrs: {},
      });
    }
    return;
  }
  const node = editor.node(l.node.name)!;
  const base = node.inputs[2] || `${node.inputs[1]}.bias`;
  const name = editor.addConstant(`${base}.${tag}`, tensor('float32', [l.outChannels], data));
  const inputs = [...node.inputs];
  while (inputs.length < 3) inputs.push('');
  inputs[2] = name;
  editor.withInputs(node, inputs);
}

/** The axis a constant broadcasts along when all its other dims are 1 (relative to `rank`), or undefined. */
export function perChannelAxis(t: Tensor, rank: number): { axis: number; values: Float32Array } | undefined {
  if (t.dtype !== 'float32' || t.shape.length > rank) return undefined;
  const shape = [...new Array(rank - t.shape.length).fill(1), ...t.shape];
  const big = shape.map((d, i) => [d, i]).filter(([d]) => d !== 1);
  if (big.length > 1) return undefined;
  return { axis: big.length ? big[0][1] : -1, values: toFloat32(t) };
}
