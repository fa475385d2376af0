// Linear layers as the folding passes see them: a constant weight with an output-channel axis and
// an input-channel axis, and an optional constant bias. Three ONNX spellings:
//   MatMul(x, W[in,out]) [→ Add(·, b[out])]        channels on the last axis
//   Gemm(x, W, b) with transB                       channels on the last axis
//   Conv(x, W[out,in/g,kh,kw], b[out])              channels on axis 1
// Scaling output channels and absorbing an input affine are the two identities the passes use:
//   (x·W + b)·s       = x·(W·diag(s)) + b·s
//   (x·γ + β)·W + b   = x·(diag(γ)·W) + (β·W + b)        (conv: exact only without padding)

import { attrFloat, attrInt, type Node } from '../graph/graph.js';
import type { GraphEditor } from '../graph/edit.js';
import { float32, numel, toFloat32, type Tensor } from '../graph/tensor.js';

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

// Weight element (o, i, k) → flat index, with k the position within a conv kernel.
function weightIndexer(l: Linear): { kernel: number; index: (o: number, i: number, k: number) => number; inputChannel: (o: number, i: number) => number } {
  const w = l.weight.shape;
  if (l.kind === 'matmul') return { kernel: 1, index: (o, i) => i * l.outChannels + o, inputChannel: (_, i) => i };
  if (l.kind === 'gemm') {
    const transB = attrInt(l.node, 'transB', 0) === 1;
    return { kernel: 1, index: transB ? (o, i) => o * l.inChannels + i : (o, i) => i * l.outChannels + o, inputChannel: (_, i) => i };
  }
  const perGroupIn = w[1];
  const kernel = w[2] * w[3];
  const outPerGroup = l.outChannels / attrInt(l.node, 'group', 1);
  return {
    kernel,
    index: (o, i, k) => (o * perGroupIn + i) * kernel + k,
    inputChannel: (o, i) => Math.floor(o / outPerGroup) * perGroupIn + i,
  };
}

function inputsPerOutput(l: Linear): number {
  return l.kind === 'conv' ? l.weight.shape[1] : l.inChannels;
}

/** Replaces the layer's weight and bias so that its output is multiplied by `scale` per channel. */
export function scaleOutputChannels(editor: GraphEditor, l: Linear, scale: Float32Array, tag: string): void {
  const w = Float32Array.from(toFloat32(l.weight));
  const { kernel, index } = weightIndexer(l);
  for (let o = 0; o < l.outChannels; o++) {
    for (let i = 0; i < inputsPerOutput(l); i++) for (let k = 0; k < kernel; k++) w[index(o, i, k)] *= scale[o];
  }
  setWeight(editor, l, w, tag);
  if (l.bias) {
    const b = Float32Array.from(toFloat32(l.bias), (v, o) => v * scale[o]);
    setBias(editor, l, b, tag);
  }
}

/** Absorbs an affine x·γ + β on the layer's input channels into its weight and bias. */
export function absorbInputAffine(editor: GraphEditor, l: Linear, gamma: Float32Array, beta: Float32Array | undefined, tag: string): void {
  const w0 = toFloat32(l.weight);
  const w = Float32Array.from(w0);
  const { kernel, index, inputChannel } = weightIndexer(l);
  const shift = new Float64Array(l.outChannels);
  for (let o = 0; o < l.outChannels; o++) {
    for (let i = 0; i < inputsPerOutput(l); i++) {
      const c = inputChannel(o, i);
      for (let k = 0; k < kernel; k++) {
        const at = index(o, i, k);
        if (beta) shift[o] += w0[at] * beta[c];
        w[at] *= gamma[c];
      }
    }
  }
  if (!gamma.every((v) => v === 1)) setWeight(editor, l, w, tag);
  if (!beta) return;
  const b = new Float32Array(l.outChannels);
  const old = l.bias ? toFloat32(l.bias) : undefined;
  for (let o = 0; o < l.outChannels; o++) b[o] = (old ? old[o] : 0) + shift[o];
  setBias(editor, l, b, tag);
}

function setWeight(editor: GraphEditor, l: Linear, data: Float32Array, tag: string): void {
  const name = editor.addConstant(`${l.node.inputs[1]}.${tag}`, float32(l.weight.shape, data));
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
      const name = editor.addConstant(`${old}.${tag}`, float32([l.outChannels], data));
      editor.withInputs(biasAdd, biasAdd.inputs.map((i) => (i === old ? name : i)));
    } else {
      // A MatMul without bias gains one: an Add after it, taking over its output name.
      const name = editor.addConstant(`${node.inputs[1]}.bias.${tag}`, float32([l.outChannels], data));
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
  const name = editor.addConstant(`${base}.${tag}`, float32([l.outChannels], data));
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
