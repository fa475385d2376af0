// Layouts for the TF.js writer. The graph has ONNX semantics (NCHW); TF.js convolutions want NHWC.
// Rather than wrapping every convolution in transposes, each value carries a layout: the
// permutation `perm` with which its logical (ONNX) tensor is stored, i.e. physical axis j holds
// logical axis perm[j]. A Transpose node then costs nothing (only the layout changes), and real
// transposes are emitted only where an op needs an arrangement that the value does not have.

import { numel, tensor, type Tensor, type TensorData } from '../../graph/tensor.js';

export type Perm = readonly number[];

/** How 4-D activations are stored: logical NCHW, physical NHWC. */
export const NHWC: Perm = [0, 2, 3, 1];

export function identity(rank: number): number[] {
  return Array.from({ length: rank }, (_, i) => i);
}

export function isIdentity(p: Perm): boolean {
  return p.every((a, i) => a === i);
}

export function samePerm(a: Perm, b: Perm): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function inverse(p: Perm): number[] {
  const inv = new Array<number>(p.length);
  p.forEach((a, j) => (inv[a] = j));
  return inv;
}

/**
 * The layout of Transpose(x, p) when x is stored with layout q, keeping the same physical tensor:
 * physical axis j holds x's logical axis q[j], which is the output's logical axis p⁻¹[q[j]].
 */
export function transposedLayout(q: Perm, p: Perm): number[] {
  const pinv = inverse(p);
  return q.map((a) => pinv[a]);
}

/** The TF Transpose perm that turns a tensor stored with layout `from` into layout `to`. */
export function transposeBetween(from: Perm, to: Perm): number[] {
  const finv = inverse(from);
  return to.map((a) => finv[a]);
}

/** The physical shape of a logical shape stored with `perm`. */
export function physicalShape<T>(shape: readonly T[], perm: Perm): T[] {
  return perm.map((a) => shape[a]);
}

/** The physical positions of logical axes, ascending. */
export function physicalAxes(axes: readonly number[], perm: Perm): number[] {
  const inv = inverse(perm);
  return axes.map((a) => inv[a]).sort((x, y) => x - y);
}

/** The layout left when logical `axes` are reduced away (keepdims=0): the rest keep their order. */
export function dropAxes(perm: Perm, axes: readonly number[]): number[] {
  const gone = new Set(axes);
  const rank = (a: number) => a - axes.filter((x) => x < a).length;
  return perm.filter((a) => !gone.has(a)).map(rank);
}

/** A rank-k layout seen as rank r under broadcasting: the r−k new leading axes come first. */
export function padLayout(perm: Perm, rank: number): number[] {
  const d = rank - perm.length;
  return [...identity(d), ...perm.map((a) => a + d)];
}

/** Layout for an op that needs logical `axes` physically last, in order; keeps the rest as stored. */
export function axesLast(perm: Perm, axes: readonly number[]): number[] {
  const tail = new Set(axes);
  return [...perm.filter((a) => !tail.has(a)), ...axes];
}

/** True when logical `axes` already sit physically last, in order. */
export function hasAxesLast(perm: Perm, axes: readonly number[]): boolean {
  const k = axes.length;
  return axes.every((a, i) => perm[perm.length - k + i] === a);
}

/** Normalises possibly negative axes against a rank. */
export function normAxes(axes: readonly number[], rank: number): number[] {
  return axes.map((a) => (a < 0 ? a + rank : a));
}

/** Transposes a tensor of any rank and element type: out = transpose(t, perm) (numpy semantics). */
export function transposeTensor(t: Tensor, perm: Perm): Tensor {
  const shape = t.shape;
  if (perm.length !== shape.length) throw new Error(`perm [${perm}] does not fit shape [${shape}]`);
  const outShape = perm.map((a) => shape[a]);
  if (sameElementOrder(shape, perm)) return tensor(t.dtype, outShape, t.data);
  const n = numel(shape);
  const src = t.data;
  const out = new (src.constructor as { new (n: number): TensorData })(n);
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  // Walk the output in order with an odometer over its index; `from` tracks the source offset.
  const stride = perm.map((a) => inStrides[a]);
  const idx = new Array<number>(rank).fill(0);
  let from = 0;
  for (let o = 0; o < n; o++) {
    (out as Float32Array)[o] = (src as Float32Array)[from];
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < outShape[k]) {
        from += stride[k];
        break;
      }
      from -= stride[k] * (outShape[k] - 1);
      idx[k] = 0;
    }
  }
  return tensor(t.dtype, outShape, out);
}

/**
 * True when storing `shape` with `perm` keeps the elements in logical order: only size-1 axes
 * move (unknown sizes, −1, count as large). Then a reshape can stand in for a transpose.
 */
export function sameElementOrder(shape: readonly number[], perm: Perm): boolean {
  const order = perm.filter((a) => shape[a] !== 1);
  return order.every((a, i) => i === 0 || a > order[i - 1]);
}

/** ONNX (numpy) broadcasting of two logical shapes; -1 marks an unknown size. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : x === -1 ? y : x);
  }
  return out;
}
