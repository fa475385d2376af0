// Handlers for the layers with weights and the normalisations: Conv, MatMul, Gemm,
// LayerNormalization, BatchNormalization and GELU. Part of the TFJS_OPS table (tfjs-ops.ts).

import { attrFloat, attrInt, attrInts, type Node } from '../../graph/graph.js';
import { numel, tensor, toFloat32, type Tensor } from '../../graph/tensor.js';
import { elementwise, Emitter, F32, type Handler, f32, attrString, out, scalarValue, tfAttr, unsupported, type TfAttr, type Weight } from './emit.js';
import { axesLast, broadcastShapes, hasAxesLast, identity, NHWC, normAxes, physicalAxes, transposeTensor } from './layout.js';
import { GELU_TANH_INNER } from '../../passes/tfjs-gelu.js';

// --- ops with weights ----------------------------------------------------------------------------

/** A following Add of a constant that varies only along `axis`: it can ride along as a fused bias. */
function fusableBias(e: Emitter, value: string, rank: number, axis: number, channels: number): { node: Node; values: Float32Array } | undefined {
  const add = e.soleConsumer(value);
  if (!add || add.op !== 'Add' || add.inputs.length !== 2 || add.inputs[0] === add.inputs[1]) return undefined;
  const c = e.constant(add.inputs[0] === value ? add.inputs[1] : add.inputs[0]);
  if (!c || c.shape.length > rank) return undefined;
  const padded = [...new Array<number>(rank - c.shape.length).fill(1), ...c.shape];
  if (padded.some((d, i) => i !== axis && d !== 1) || (padded[axis] !== channels && padded[axis] !== 1)) return undefined;
  const src = toFloat32(c);
  return { node: add, values: padded[axis] === channels ? Float32Array.from(src) : new Float32Array(channels).fill(src[0]) };
}

/**
 * Emits a conv/matmul op, `ops` = [plain, with fused BiasAdd], named `name`. A constant bias is
 * fused; with int8 weights it is divided by the channel scales and the output multiplied by them
 * (one Mul); a non-constant bias then goes last, as an AddV2.
 */
function linear(e: Emitter, ops: [string, string], inputs: string[], w: Weight, bias: Float32Array | string | undefined, attrs: Record<string, TfAttr>, name: string, biasBase: string): string {
  const s = w.scales;
  let fused: string | undefined;
  if (bias instanceof Float32Array) fused = e.constTensor(biasBase, tensor('float32', [bias.length], s ? bias.map((v, i) => v / s[i]) : bias));
  else if (!s) fused = bias;
  const late = s && typeof bias === 'string' ? bias : undefined;
  const fusedAttrs: Record<string, TfAttr> = fused ? { fused_ops: tfAttr.strs(['BiasAdd']), num_args: tfAttr.int(1), epsilon: tfAttr.float(0) } : {};
  let ref = e.op(fused ? ops[1] : ops[0], s ? `${name}/int8` : name, [...inputs, w.ref, ...(fused ? [fused] : [])], { ...attrs, ...fusedAttrs });
  if (s) ref = e.op('Mul', late ? `${name}/scaled` : name, [ref, w.scaleRef!], F32);
  if (late) ref = e.op('AddV2', name, [ref, late], F32);
  return ref;
}

/** Pads as TF's SAME would choose them for one spatial axis, when they can be known. */
function samePads(size: number, kernel: number, stride: number, dilation: number): [number, number] | undefined {
  const k = (kernel - 1) * dilation + 1;
  if (size === -1 && stride !== 1) return undefined;
  const total = size === -1 ? k - 1 : Math.max((Math.ceil(size / stride) - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** ONNX pads [top, left, bottom, right] of a Conv, from `pads` or `auto_pad`. */
function convPads(n: Node, same: ([number, number] | undefined)[]): number[] {
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [h, w] = same;
    if (!h || !w) throw unsupported(n, `${autoPad} with unknown spatial size and stride > 1`);
    return autoPad === 'SAME_UPPER' ? [h[0], w[0], h[1], w[1]] : [h[1], w[1], h[0], w[0]];
  }
  const pads = [...attrInts(n, 'pads', [0, 0, 0, 0])];
  if (pads.some((p) => p < 0)) throw unsupported(n, 'negative pads');
  return pads;
}

/**
 * 2-D convolution in NHWC: group 1 → Conv2D with an HWIO filter, group = C → DepthwiseConv2dNative
 * with a [kh, kw, C, multiplier] filter; the bias (plus a following per-channel Add) is fused.
 * Pads become SAME when they are what SAME would pick, else an explicit Pad and VALID.
 */
const conv: Handler = (n, e) => {
  const [x, w, b] = n.inputs;
  const W = e.constant(w);
  if (!W) throw unsupported(n, 'the weight must be a constant');
  if (W.shape.length !== 4) throw unsupported(n, `only 2-D convolutions are supported (weight rank ${W.shape.length})`);
  const [cout, cinPerGroup, kh, kw] = W.shape;
  const inShape = e.shape(x);
  const cin = inShape[1];
  const group = attrInt(n, 'group', 1);
  const [sh, sw] = attrInts(n, 'strides', [1, 1]);
  const [dh, dw] = attrInts(n, 'dilations', [1, 1]);
  const same = [samePads(inShape[2], kh, sh, dh), samePads(inShape[3], kw, sw, dw)];
  const pads = convPads(n, same);

  // Bias: the conv's own (constant or not), plus a following per-channel constant Add.
  const extra = fusableBias(e, out(n), 4, 1, cout);
  const B = b ? e.constant(b) : undefined;
  let bias: Float32Array | string | undefined = B ? Float32Array.from(toFloat32(B)) : b ? e.input(b, [0]) : undefined;
  let output = out(n);
  if (extra && typeof bias !== 'string') {
    if (bias) extra.values.forEach((v, i) => ((bias as Float32Array)[i] += v));
    else bias = extra.values;
    e.fused.add(extra.node);
    output = out(extra.node);
  }
  const name = e.nameFor(output);

  let input = e.input(x, NHWC);
  let padding = 'VALID';
  if (pads.some((p) => p > 0)) {
    const [sH, sW] = same;
    if (sH && sW && pads[0] === sH[0] && pads[2] === sH[1] && pads[1] === sW[0] && pads[3] === sW[1]) padding = 'SAME';
    else {
      // Explicit zero padding, then VALID (TF.js's EXPLICIT padding is not implemented by every backend).
      const paddings = [0, 0, pads[0], pads[2], pads[1], pads[3], 0, 0];
      input = e.op('Pad', `${name}/pad`, [input, e.ints(`${name}/paddings`, paddings, [4, 2])], { ...F32, Tpaddings: tfAttr.int32 });
    }
  }
  const attrs = { ...F32, strides: tfAttr.ints([1, sh, sw, 1]), padding: tfAttr.str(padding), data_format: tfAttr.str('NHWC'), dilations: tfAttr.ints([1, dh, dw, 1]) };
  let ref: string;
  if (group === 1) {
    const filter = e.weight(w, 'hwio', () => transposeTensor(f32(W), [2, 3, 1, 0]), 1); // OIHW → HWIO
    ref = linear(e, ['Conv2D', '_FusedConv2D'], [input], filter, bias, attrs, name, `${b || w}/bias`);
  } else if (group === cin && cinPerGroup === 1 && cout % cin === 0) {
    // Depthwise: output channel c·m + j reads input channel c → filter [kh, kw, C, m].
    const m = cout / cin;
    const filter = e.weight(w, 'depthwise', () => transposeTensor(tensor('float32', [cin, m, kh, kw], toFloat32(W)), [2, 3, 0, 1]), 2);
    ref = linear(e, ['DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative'], [input], filter, bias, attrs, name, `${b || w}/bias`);
  } else throw unsupported(n, `group=${group} with ${cin} input channels (only 1 or depthwise)`);
  const size = (d: number, k: number, s: number, dil: number, p0: number, p1: number) => (d === -1 ? -1 : Math.floor((d + p0 + p1 - (k - 1) * dil - 1) / s) + 1);
  e.define(output, ref, NHWC, [inShape[0], cout, size(inShape[2], kh, sh, dh, pads[0], pads[2]), size(inShape[3], kw, sw, dw, pads[1], pads[3])]);
};

/**
 * MatMul by a constant [K, N] matrix, with a following bias Add fused in. On 4-D activations it is
 * a 1×1 _FusedConv2D: the wasm backend runs that through XNNPACK's convolution as one GEMM over all
 * N·H·W rows (12.8 ms for [1,56,56,96]×[96,384]), where a 4-D BatchMatMul broadcasts the matrix
 * over N·H batches of W rows (125 ms) and a 2-D _FusedMatMul needs two Reshapes (15.8 ms); on the
 * cpu backend all three are within 10%. 2-D activations use _FusedMatMul; other ranks reshape.
 */
const matmul: Handler = (n, e) => {
  const [a, b] = n.inputs;
  const W = e.constant(b);
  if (!W || W.shape.length !== 2 || e.isConst(a)) return batchMatMul(n, e);
  const [K, N] = W.shape;
  const x = e.get(a);
  const rank = x.shape.length;
  if (rank < 2) throw unsupported(n, 'a rank-1 activation');
  const extra = fusableBias(e, out(n), rank, rank - 1, N);
  const output = extra ? out(extra.node) : out(n);
  if (extra) e.fused.add(extra.node);
  const name = e.nameFor(output);
  const biasBase = `${b}/bias`;
  const outShape = [...x.shape.slice(0, -1), N];
  if (rank === 4) {
    const perm = hasAxesLast(x.perm, [3]) ? x.perm : identity(4);
    const filter = e.weight(b, '1x1', () => tensor('float32', [1, 1, K, N], toFloat32(W)), 1);
    const attrs = { ...F32, strides: tfAttr.ints([1, 1, 1, 1]), padding: tfAttr.str('VALID'), data_format: tfAttr.str('NHWC'), dilations: tfAttr.ints([1, 1, 1, 1]) };
    return e.define(output, linear(e, ['Conv2D', '_FusedConv2D'], [e.input(a, perm)], filter, extra?.values, attrs, name, biasBase), perm, outShape);
  }
  const weight = e.weight(b, 'matrix', () => f32(W), 1);
  const attrs = { ...F32, transpose_a: tfAttr.bool(false), transpose_b: tfAttr.bool(false) };
  const mm = (input: string, opName: string) => linear(e, ['MatMul', '_FusedMatMul'], [input], weight, extra?.values, attrs, opName, biasBase);
  if (rank === 2) return e.define(output, mm(e.input(a, identity(2)), name), identity(2), outShape);
  if (x.shape.slice(1).includes(-1)) throw unsupported(n, `rank-${rank} activation with unknown inner sizes`);
  const reshape = { ...F32, Tshape: tfAttr.int32 };
  const flat = e.op('Reshape', `${name}/flatten`, [e.input(a, identity(rank)), e.ints(`${name}/flat_shape`, [-1, K])], reshape);
  const y = mm(flat, e.nameFor(output, 'matmul'));
  e.define(output, e.op('Reshape', name, [y, e.ints(`${name}/shape`, [-1, ...outShape.slice(1)])], reshape), identity(rank), outShape);
};

/** The general case: both operands in logical order, numpy batch broadcasting. */
function batchMatMul(n: Node, e: Emitter): void {
  const [a, b] = n.inputs;
  const sa = e.shape(a);
  const sb = e.shape(b);
  if (sa.length < 2 || sb.length < 2) throw unsupported(n, 'rank-1 operands');
  const arg = (v: string) => (e.isConst(v) ? e.derived(v, 'f32', () => f32(e.constant(v)!)) : e.input(v, identity(e.shape(v).length)));
  const ref = e.op('BatchMatMulV2', e.nameFor(out(n)), [arg(a), arg(b)], { ...F32, adj_x: tfAttr.bool(false), adj_y: tfAttr.bool(false) });
  const shape = [...broadcastShapes(sa.slice(0, -2), sb.slice(0, -2)), sa[sa.length - 2], sb[sb.length - 1]];
  e.define(out(n), ref, identity(shape.length), shape);
}

/** Gemm: alpha·op(A)·op(B) + beta·C with 2-D A. Constant B is pre-transposed and pre-scaled. */
const gemm: Handler = (n, e) => {
  const [a, b, c] = n.inputs;
  const alpha = attrFloat(n, 'alpha', 1);
  const beta = attrFloat(n, 'beta', 1);
  const transA = attrInt(n, 'transA', 0) !== 0;
  const transB = attrInt(n, 'transB', 0) !== 0;
  const M = e.shape(a)[transA ? 1 : 0];
  const Bc = e.constant(b);
  const N = Bc ? Bc.shape[transB ? 0 : 1] : e.shape(b)[transB ? 0 : 1];
  const weight: Weight = Bc
    ? e.weight(b, `gemm ${transB} ${alpha}`, () => {
        const t = transB ? transposeTensor(f32(Bc), [1, 0]) : f32(Bc);
        return alpha === 1 ? t : tensor('float32', t.shape, toFloat32(t).map((v) => v * alpha));
      }, 1)
    : { ref: e.input(b, identity(2)) };
  const scaleAfter = Bc ? 1 : alpha;
  // C becomes a fused bias when it is a constant row vector; otherwise it is added at the end.
  const Cc = c ? e.constant(c) : undefined;
  let bias: Float32Array | undefined = Cc && scaleAfter === 1 && numel(Cc.shape) === N && (Cc.shape.length < 2 || Cc.shape[0] === 1) ? toFloat32(Cc).map((v) => v * beta) : undefined;
  const extra = !c && scaleAfter === 1 ? fusableBias(e, out(n), 2, 1, N) : undefined;
  if (extra) {
    bias = extra.values;
    e.fused.add(extra.node);
  }
  const output = extra ? out(extra.node) : out(n);
  const addC = !!c && !bias;
  const attrs = { ...F32, transpose_a: tfAttr.bool(transA), transpose_b: tfAttr.bool(!Bc && transB) };
  const name = addC || scaleAfter !== 1 ? e.nameFor(output, 'matmul') : e.nameFor(output);
  let ref = linear(e, ['MatMul', '_FusedMatMul'], [e.input(a, identity(2))], weight, bias, attrs, name, `${c || b}/bias`);
  if (scaleAfter !== 1) ref = e.op('Mul', addC ? e.nameFor(output, 'alpha') : e.nameFor(output), [ref, e.scalar(scaleAfter)], F32);
  e.define(addC ? `${output}/ab` : output, ref, identity(2), [M, N]);
  if (!addC) return;
  if (beta !== 1) elementwise(e, 'Mul', [c, scalarValue(e, beta)], `${output}/beta_c`, e.nameFor(output, 'beta'));
  elementwise(e, 'AddV2', [`${output}/ab`, beta !== 1 ? `${output}/beta_c` : c], output);
};

// --- normalisation -------------------------------------------------------------------------------

const allEqual = (t: Tensor | undefined, x: number) => !!t && toFloat32(t).every((v) => v === x);

/**
 * LayerNormalization over axes [axis, rank): TF.js has no such op. With the normalised axes
 * physically last: d = x − Mean(x); y = d·Rsqrt(Mean(d²) + ε), then ·Scale and +B unless they are
 * ones and zeros (as after affine folding). Squaring d once avoids the second subtraction that
 * SquaredDifference(x, mean) would make; the op count is the same.
 */
const layerNorm: Handler = (n, e) => {
  const [x, s, b] = n.inputs;
  const shape = e.shape(x);
  const rank = shape.length;
  const axis = normAxes([attrInt(n, 'axis', -1)], rank)[0];
  const axes = identity(rank).slice(axis);
  const v = e.get(x);
  const perm = hasAxesLast(v.perm, axes) ? v.perm : axesLast(v.perm, axes);
  const scale = !!s && !allEqual(e.constant(s), 1);
  const shift = !!b && !allEqual(e.constant(b), 0);
  const o = out(n);
  const base = e.nameFor(o, 'ln');
  const phys = e.ints(`${base}/axes`, physicalAxes(axes, perm));
  const input = e.input(x, perm);
  const keep = { ...F32, Tidx: tfAttr.int32, keep_dims: tfAttr.bool(true) };
  const mean = e.op('Mean', `${base}/mean`, [input, phys], keep);
  const d = e.op('Sub', `${base}/centered`, [input, mean], F32);
  const variance = e.op('Mean', `${base}/variance`, [e.op('Square', `${base}/square`, [d], F32), phys], keep);
  const rstd = e.op('Rsqrt', `${base}/rstd`, [e.op('AddV2', `${base}/variance_eps`, [variance, e.scalar(attrFloat(n, 'epsilon', 1e-5))], F32)], F32);
  const normed = scale || shift ? `${o}/normalized` : o;
  e.define(normed, e.op('Mul', scale || shift ? `${base}/normalized` : e.nameFor(o), [d, rstd], F32), perm, shape);
  const scaled = scale && shift ? `${o}/scaled` : o;
  if (scale) elementwise(e, 'Mul', [normed, s], scaled, shift ? e.nameFor(o, 'scaled') : e.nameFor(o));
  if (shift) elementwise(e, 'AddV2', [scale ? scaled : normed, b], o);
};

/** Inference BatchNormalization as one multiply-add with folded constants, per channel (axis 1). */
const batchNorm: Handler = (n, e) => {
  const [x, ...params] = n.inputs;
  const consts = params.slice(0, 4).map((name) => e.constant(name));
  if (consts.length < 4 || consts.some((c) => !c)) throw unsupported(n, 'scale, bias, mean and variance must be constants');
  const [gamma, beta, mean, variance] = consts.map((c) => toFloat32(c!));
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const k = gamma.map((g, i) => g / Math.sqrt(variance[i] + eps));
  const t = beta.map((bt, i) => bt - mean[i] * k[i]);
  const channelShape = [gamma.length, ...new Array<number>(e.shape(x).length - 2).fill(1)];
  const o = out(n);
  e.consts.set(`${o}/k`, tensor('float32', channelShape, k));
  e.consts.set(`${o}/t`, tensor('float32', channelShape, t));
  elementwise(e, 'Mul', [x, `${o}/k`], `${o}/scaled`, e.nameFor(o, 'scale'));
  elementwise(e, 'AddV2', [`${o}/scaled`, `${o}/t`], o);
};

// --- GELU ----------------------------------------------------------------------------------------

/**
 * out_scale·gelu(x) from u = in_scale·x (see rewrite.ts). Exact: k·u·(1 + erf(u/(in_scale·√2)))
 * with k = out_scale/(2·in_scale); both factors are 1 after folding into neighbours, leaving Erf,
 * AddV2, Mul. Tanh approximation, written with 1 + tanh(z) = 2σ(2z):
 * gelu(x) ≈ x·σ(c₁(x + 0.044715x³)), c₁ = 2√(2/π), i.e. u·σ((c₁/a)·u·(1 + (0.044715/a²)·u²))/a.
 * It is six ops, yet on the wasm backend 5× faster than the three exact ones (Erf is slow there:
 * 21.9 vs 4.1 ms on [1,56,56,384]); on the cpu backend the exact form is the faster (98 vs 178 ms).
 */
function emitGelu(n: Node, e: Emitter, approximate: 'erf' | 'tanh', a: number, b: number): void {
  const u = n.inputs[0];
  const o = out(n);
  const steps: [string, string[]][] = [];
  // Each step defines `${o}/g${i}` from earlier values; the last one defines the output itself.
  const add = (op: string, inputs: string[]) => {
    steps.push([op, inputs]);
    return `${o}/g${steps.length - 1}`;
  };
  const one = (x: number) => Math.abs(x - 1) < 1e-7;
  let y: string;
  let k: number;
  if (approximate === 'erf') {
    const c = 1 / (a * Math.SQRT2);
    const erf = add('Erf', [one(c) ? u : add('Mul', [u, scalarValue(e, c)])]);
    y = add('Mul', [u, add('AddV2', [erf, scalarValue(e, 1)])]);
    k = b / (2 * a);
  } else {
    const cubic = add('Mul', [u, add('AddV2', [add('Mul', [add('Square', [u]), scalarValue(e, 0.044715 / (a * a))]), scalarValue(e, 1)])]);
    const c1 = GELU_TANH_INNER / a;
    y = add('Mul', [u, add('Sigmoid', [one(c1) ? cubic : add('Mul', [cubic, scalarValue(e, c1)])])]);
    k = b / a;
  }
  if (!one(k)) add('Mul', [y, scalarValue(e, k)]);
  steps.forEach(([op, inputs], i) => {
    const last = i === steps.length - 1;
    elementwise(e, op, inputs, last ? o : `${o}/g${i}`, last ? e.nameFor(o) : e.nameFor(o, op.toLowerCase()));
  });
}

/** GELU: the writer's fused node (with folded scales) or ONNX's own Gelu (opset 20). */
const gelu: Handler = (n, e) => {
  const form = attrString(n, 'approximate', 'none') === 'tanh' ? 'tanh' : e.options.gelu;
  const [a, b] = [attrFloat(n, 'in_scale', 1), attrFloat(n, 'out_scale', 1)];
  if (e.options.geluOp && a === 1 && b === 1) {
    const v = e.get(n.inputs[0]);
    return e.define(out(n), e.op('Gelu', e.nameFor(out(n)), [v.ref], { ...F32, approximate: tfAttr.bool(form === 'tanh') }), v.perm, v.shape);
  }
  emitGelu(n, e, form, a, b);
};

export const NN_OPS: Readonly<Record<string, Handler>> = {
  Conv: conv,
  MatMul: matmul,
  Gemm: gemm,
  LayerNormalization: layerNorm,
  BatchNormalization: batchNorm,
  Gelu: gelu,
};
