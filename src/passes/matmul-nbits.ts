// matmul-nbits: MatMul(x, W) of a constant W [K, N]  ⇒  MatMulNBits(x, codes, scales, zero points)
// with W stored as 4-bit codes in blocks of `blockSize` along K, one scale and zero point per block
// and output column: W'[k, n] = (q[n, k] − z[n, ⌊k/B⌋]) · s[n, ⌊k/B⌋]. A Gemm (the classifier head)
// becomes MatMulNBits and an Add of its bias. MatMulNBits is onnxruntime's contrib op (domain
// com.microsoft); its WebGPU kernels unpack the codes in the shader, so the weights cross the bus and
// sit in memory at about 5 bits each (blocks of 32: 4-bit codes, a float32 scale and a 4-bit zero
// point per block), and its CPU and wasm kernels run it too.
//
// The op's layout: B is uint8 [N, ⌈K/B⌉, B/2], element k of a block in the low nibble of byte k/2
// when k is even, the high nibble when odd; the zero points are packed two per byte the same way,
// row by row ([N, ⌈⌈K/B⌉/2⌉]); scales are float [N·⌈K/B⌉]. onnxruntime-web's WebGPU (JSEP) takes
// at most four inputs (no bias input), so a bias stays an Add.
//
// Codes are asymmetric per block, as onnxruntime's own blockwise quantizer makes them: the block's
// range widened to include 0 (the zero point must be a code, 0–15), scale = range / 15, codes
// rounded half to even and clamped. Padding past K (when B does not divide K) gets the zero point's
// code, so it dequantizes to 0.

import { UnsupportedError } from '../errors.js';
import { attr, attrFloat, attrInt, type Graph, type Node } from '../graph/graph.js';
import { GraphEditor } from '../graph/edit.js';
import { globMatcher } from '../graph/glob.js';
import { inferShapes } from '../graph/shapes.js';
import { floatToHalf, tensor, toFloat32, transpose2d } from '../graph/tensor.js';
import { MICROSOFT_DOMAIN } from './matmul-integer-to-float.js';
import type { Pass, PassContext } from './pass.js';
import { roundHalfEven } from './quantize-int8.js';

export const NBITS_BLOCK_SIZES = [16, 32, 64, 128, 256] as const;
export const DEFAULT_NBITS_BLOCK_SIZE = 32;
const BITS = 4;
const LEVELS = (1 << BITS) - 1;

export interface MatMulNBitsOptions {
  /** Weights per block along K: a power of two from 16 to 256. Default 32. */
  readonly blockSize?: number;
  /** Node names, or globs, left in float. */
  readonly exclude?: readonly string[];
  /** Which of MatMul and Gemm to rewrite (other op types are ignored). Default both. */
  readonly opTypes?: readonly string[];
}

/** 4-bit blockwise codes of a weight W [K, N] (the MatMul's), in MatMulNBits's layout. */
export interface BlockwiseWeight {
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
  readonly zeroPoints: Uint8Array;
  readonly blocks: number;
}

/** Quantizes each column of `w` (row-major [K, N]) block by block; see the header for the layout. */
export function quantizeBlockwise(w: Float32Array, k: number, n: number, blockSize: number): BlockwiseWeight {
  const blocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const zpBytes = Math.ceil(blocks / 2);
  const codes = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const zeroPoints = new Uint8Array(n * zpBytes);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      const end = Math.min(k, start + blockSize);
      let lo = 0;
      let hi = 0;
      for (let r = start; r < end; r++) {
        const v = w[r * n + col];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const scale = hi > lo ? Math.fround((hi - lo) / LEVELS) : 1;
      const zero = Math.max(0, Math.min(LEVELS, roundHalfEven(-lo / scale)));
      scales[col * blocks + b] = scale;
      zeroPoints[col * zpBytes + (b >> 1)] |= zero << ((b & 1) * 4);
      const base = (col * blocks + b) * blob;
      for (let i = 0; i < blockSize; i++) {
        const r = start + i;
        const q = r < end ? Math.max(0, Math.min(LEVELS, roundHalfEven(w[r * n + col] / scale) + zero)) : zero;
        codes[base + (i >> 1)] |= q << ((i & 1) * 4);
      }
    }
  }
  return { codes, scales, zeroPoints, blocks };
}

/**
 * The float32 weight [K, N] that `q` stands for, computed as onnxruntime dequantizes it: (q − z)·s.
 * Without zero points the op's default, 8, is every block's.
 */
export function dequantizeBlockwise(q: Omit<BlockwiseWeight, 'zeroPoints'> & { zeroPoints?: Uint8Array }, k: number, n: number, blockSize: number): Float32Array {
  const out = new Float32Array(k * n);
  const blob = blockSize / 2;
  const zpBytes = Math.ceil(q.blocks / 2);
  for (let col = 0; col < n; col++) {
    for (let r = 0; r < k; r++) {
      const b = Math.floor(r / blockSize);
      const i = r - b * blockSize;
      const code = (q.codes[(col * q.blocks + b) * blob + (i >> 1)] >> ((i & 1) * 4)) & LEVELS;
      const zero = q.zeroPoints ? (q.zeroPoints[col * zpBytes + (b >> 1)] >> ((b & 1) * 4)) & LEVELS : 1 << (BITS - 1);
      out[r * n + col] = Math.fround((code - zero) * q.scales[col * q.blocks + b]);
    }
  }
  return out;
}

/** The pass with these options: every float MatMul (and Gemm) on a constant weight, unless excluded. */
export function matmulNBits(options: MatMulNBitsOptions = {}): Pass {
  const blockSize = options.blockSize ?? DEFAULT_NBITS_BLOCK_SIZE;
  if (!(NBITS_BLOCK_SIZES as readonly number[]).includes(blockSize)) {
    throw new UnsupportedError(`4-bit block size ${blockSize}: MatMulNBits takes ${NBITS_BLOCK_SIZES.join(', ')}`, undefined, 'quantization');
  }
  const excluded = globMatcher(options.exclude ?? []);
  const ops = new Set(options.opTypes ?? ['MatMul', 'Gemm']);
  return {
    name: 'matmul-nbits',
    purpose: "store each MatMul's constant weight as 4-bit blocks in onnxruntime's MatMulNBits, which WebGPU unpacks in its shader",
    run(graph: Graph, ctx: PassContext): Graph {
      const editor = new GraphEditor(graph);
      const shapes = inferShapes(graph);
      // a weight two layers read is stored once (keyed by its name and orientation)
      const stored = new Map<string, { inputs: string[]; block: number }>();
      let rewritten = 0;
      for (const node of graph.nodes) {
        if (node.domain !== '' || !ops.has(node.op) || excluded(node.name)) continue;
        const layer = weightOf(graph, node, shapes);
        if (!layer) continue;
        const [k, n] = layer.kn;
        const name = node.inputs[1];
        const key = `${name}|${layer.transposed}`;
        let weight = stored.get(key);
        if (!weight) {
          const block = blockFor(k, blockSize);
          const q = quantizeBlockwise(layer.w, k, n, block);
          weight = {
            block,
            inputs: [
              editor.addConstant(`${name}.int4`, tensor('uint8', [n, q.blocks, block / 2], q.codes)),
              editor.addConstant(`${name}.int4.scale`, tensor('float32', [n * q.blocks], q.scales)),
              editor.addConstant(`${name}.int4.zero_point`, tensor('uint8', [q.zeroPoints.length], q.zeroPoints)),
            ],
          };
          stored.set(key, weight);
        }
        const { block } = weight;
        const inputs = [node.inputs[0], ...weight.inputs];
        const attrs = { K: attr.int(k), N: attr.int(n), bits: attr.int(BITS), block_size: attr.int(block) };
        replaceAddingBias(editor, node, { op: 'MatMulNBits', domain: MICROSOFT_DOMAIN, inputs, attrs }, node.op === 'Gemm' ? node.inputs[2] : undefined);
        rewritten++;
        ctx.fired('matmul-nbits', node.name);
      }
      return rewritten ? editor.finish({ opsets: { ...graph.opsets, [MICROSOFT_DOMAIN]: 1 } }) : graph;
    },
  };
}

/** Replaces `node` by a product node of the same name, then an Add of `bias` (if any) writing its output. */
function replaceAddingBias(editor: GraphEditor, node: Node, product: Pick<Node, 'op' | 'domain' | 'inputs' | 'attrs'>, bias: string | undefined): void {
  const out = bias ? editor.uniqueName(`${node.outputs[0]}.product`) : node.outputs[0];
  editor.replaceNode(node, { name: node.name, ...product, outputs: [out] });
  if (bias) editor.insertAfter(editor.node(node.name)!, { name: editor.uniqueName(`${node.name}/bias`), op: 'Add', domain: '', inputs: [out, bias], outputs: [node.outputs[0]], attrs: {} });
}

/**
 * The block size for K inputs: the largest allowed one up to the one asked for that divides K, else
 * the smallest that holds all K when that is smaller than asked. Padding is stored like codes: a
 * 128-block on K = 96 (ConvNeXt-T's first stage) would spend a quarter of its bytes on it, where
 * three 32-blocks spend none and fit the weights closer.
 */
function blockFor(k: number, blockSize: number): number {
  const dividing = NBITS_BLOCK_SIZES.filter((b) => b <= blockSize && k % b === 0).pop();
  return dividing ?? NBITS_BLOCK_SIZES.find((b) => b >= Math.min(k, blockSize)) ?? blockSize;
}

/**
 * The weight as [K, N] float32 data, if `node` is a MatMul whose second input is a constant float32
 * matrix, or a Gemm computing x·W + b or x·Wᵀ + b with α = β = 1 on a rank-2 x.
 */
function weightOf(graph: Graph, node: Node, shapes: ReturnType<typeof inferShapes>): { w: Float32Array; kn: [number, number]; transposed: boolean } | undefined {
  const w = graph.initializers.get(node.inputs[1]);
  const x = shapes.get(node.inputs[0]);
  if (!w || w.dtype !== 'float32' || w.shape.length !== 2 || graph.inputs.some((v) => v.name === node.inputs[1])) return undefined;
  if (!x || x.dtype !== 'float32' || graph.initializers.has(node.inputs[0])) return undefined;
  const asIs = { w: toFloat32(w), kn: [w.shape[0], w.shape[1]] as [number, number], transposed: false };
  if (node.op === 'MatMul' && x.shape.length >= 2) return asIs;
  if (node.op !== 'Gemm' || x.shape.length !== 2) return undefined;
  const transB = attrInt(node, 'transB', 0) === 1;
  if (attrInt(node, 'transA', 0) !== 0 || attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) return undefined;
  const n = transB ? w.shape[0] : w.shape[1];
  const bias = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined;
  if (node.inputs[2] && (!bias || bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== n)) return undefined;
  return transB ? { w: toFloat32(transpose2d(w)), kn: [w.shape[1], w.shape[0]], transposed: true } : asIs;
}

/**
 * The inverse, for models read back in (validate's WebGPU checks, convert int4.onnx --format tflite):
 * each 4-bit MatMulNBits on constant codes as a MatMul on the float32 weight its codes stand for
 * (and an Add of its bias input, if any): the same products. One of another form (other bits, g_idx,
 * zero points stored as floats) stays, and is refused as an unknown op.
 */
export function expandMatMulNBits(graph: Graph): Graph {
  if (!graph.nodes.some((n) => n.op === 'MatMulNBits' && n.domain === MICROSOFT_DOMAIN)) return graph;
  const editor = new GraphEditor(graph);
  const shapes = inferShapes(graph);
  // codes two layers read (a shared weight) are dequantized once
  const weights = new Map<string, string>();
  let expanded = 0;
  for (const node of graph.nodes) {
    if (node.op !== 'MatMulNBits' || node.domain !== MICROSOFT_DOMAIN) continue;
    const [a, bName, sName, zName = '', gIdx = '', bias = ''] = node.inputs;
    const [codes, scales, zeros] = [editor.constant(bName), editor.constant(sName), zName ? editor.constant(zName) : undefined];
    // a foreign file's attributes may be of any kind: one that is not an int leaves the node as it is
    const int = (name: string, fallback: number) => (node.attrs[name] === undefined ? fallback : node.attrs[name].kind === 'int' ? Number(node.attrs[name].value) : NaN);
    const [k, n, blockSize, bits] = [int('K', 0), int('N', 0), int('block_size', 0), int('bits', BITS)];
    const blocks = Math.ceil(k / Math.max(1, blockSize));
    if (bits !== BITS || gIdx || !(NBITS_BLOCK_SIZES as readonly number[]).includes(blockSize) || !(k > 0) || !(n > 0)) continue;
    if (codes?.dtype !== 'uint8' || codes.data.length !== n * blocks * (blockSize / 2) || !scales || (scales.dtype !== 'float32' && scales.dtype !== 'float16') || scales.data.length !== n * blocks) continue;
    if (zName && (zeros?.dtype !== 'uint8' || zeros.data.length !== n * Math.ceil(blocks / 2))) continue;
    // A must be of the scales' type (T1) with K last, a bias a constant [N] of that type
    const x = shapes.get(a);
    const biasTensor = bias ? editor.constant(bias) : undefined;
    if (x?.dtype !== scales.dtype || x.shape.length < 2 || (typeof x.shape[x.shape.length - 1] === 'number' && x.shape[x.shape.length - 1] !== k)) continue;
    if (bias && (biasTensor?.dtype !== scales.dtype || biasTensor.shape.length !== 1 || biasTensor.shape[0] !== n)) continue;
    const key = [bName, sName, zName, k, n, blockSize].join('|');
    let weight = weights.get(key);
    if (!weight) {
      const w = dequantizeBlockwise({ codes: codes.data as Uint8Array, scales: toFloat32(scales), zeroPoints: zeros?.data as Uint8Array | undefined, blocks }, k, n, blockSize);
      // in A's type, which is the scales' (T1)
      weight = editor.addConstant(`${bName}.dequantized`, scales.dtype === 'float16' ? tensor('float16', [k, n], Uint16Array.from(w, floatToHalf)) : tensor('float32', [k, n], w));
      weights.set(key, weight);
    }
    replaceAddingBias(editor, node, { op: 'MatMul', domain: '', inputs: [a, weight], attrs: {} }, bias || undefined);
    expanded++;
  }
  return expanded ? editor.finish() : graph;
}
