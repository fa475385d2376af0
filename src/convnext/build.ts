// ConvNeXtModel → Graph, op for op what PyTorch computes (ONNX opset 17, NCHW input):
//   stem      Conv(k=p, s=p) → LayerNorm over C; timm's overlapping stems Conv(3×3, s=2, pad 1)
//             [→ GELU for overlap_act] → Conv(3×3, s=2, pad 1) → LayerNorm over C
//   stage s   [s>0: LayerNorm over C → Conv(2×2, s=2)] → blocks
//   block     x + LS·fc2(GRN(GELU(fc1(LN(dwconv7×7(x))))))     (LS in V1, GRN in V2)
//   head      mean over H,W → LayerNorm → Gemm; timm's forms: MLP head (NormMlpClassifierHead with a
//             hidden layer) … → LayerNorm → Gemm → GELU → Gemm; head_norm_first LayerNorm over C
//             → mean over H,W → Gemm
//   backbone  (--outputs stages) the feature maps after the stem or a stage, each through its own
//             LayerNorm over C where the checkpoint has one (convnext/backbone.ts)
// LayerNorm runs channels-last (Transpose, LayerNormalization(axis=-1), Transpose back). timm's
// RMS-style norms (every "LayerNorm" above, for an *_rms model) have no ONNX op at opset 17 and are
// written out over the channel axis, as fast_norm.py computes them:
//   rmsnorm     x / √(ReduceMean(x²) + ε) · w
//   simplenorm  x / √(ReduceMean((x − ReduceMean(x))²) · C/(C−1) + ε) · w   (torch.var, unbiased)
// in ops every writer lowers (ReduceMean, Sub, Pow, Mul, Add, Sqrt, Div) and that fuse-layernorm
// does not take for a LayerNorm (x itself, not x − E[x], is divided). The block's
// pointwise layers (PyTorch's Linear over channels) are 1×1 Convs in NCHW with PyTorch's own weight
// layout, the form onnxruntime runs fastest (see passes/pointwise-layout.ts, which moves graphs from
// other exporters there, and back to MatMuls for int8). GELU is the exact erf form, written the way
// torch.onnx.export writes it so that onnxruntime's Gelu fusion recognises it. The graph is
// deliberately literal otherwise: folding LayerScale and LayerNorm affines is the passes' work.

import { attr, GraphBuilder, type Graph } from '../graph/graph.js';
import { float32, reshape } from '../graph/tensor.js';
import { stageMaps, type FeatureMap, type ModelOutputs } from './backbone.js';
import { blockParams as bp, names, stemSide, tapWidth, type ConvNextModel } from './spec.js';

export interface BuildOptions {
  /** Height and width of the input image (recorded as the preprocessing's crop when dynamic). */
  readonly imageSize: number;
  /** Symbolic height and width: the network is fully convolutional up to the global pooling. */
  readonly dynamicSize?: boolean;
  /**
   * What the graph returns: the classifier's logits; the pooled, normalised features before it;
   * or the four stages' feature maps (NCHW, after each stage's blocks), for detection and
   * segmentation heads.
   */
  readonly outputs?: ModelOutputs;
  /** The feature maps `stages` returns (a backbone checkpoint's own); default: each stage's output. */
  readonly features?: readonly FeatureMap[];
  readonly metadata?: Record<string, string>;
}

export type { ModelOutputs } from './backbone.js';

export const INPUT_NAME = 'pixel_values';
export const LOGITS_NAME = 'logits';
export const FEATURES_NAME = 'features';

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

export function buildConvNextGraph(model: ConvNextModel, options: BuildOptions): Graph {
  const { spec, params } = model;
  const g = new GraphBuilder(spec.version === 'v2' ? 'convnextv2' : 'convnext');
  const param = (name: string): string => {
    const t = params.get(name);
    if (!t) throw new Error(`canonical parameter ${name} missing after import`);
    return g.constant(name, t);
  };
  const scalar = (name: string, value: number) => g.constant(name, float32([], [value]));
  const consts = {
    half: scalar('const.half', 0.5),
    one: scalar('const.one', 1),
    sqrt2: scalar('const.sqrt2', Math.SQRT2),
    grnEps: spec.version === 'v2' ? scalar('const.grn_eps', spec.grnEps) : '',
  };
  const shared = new Map<string, string>();
  const sharedScalar = (name: string, value: number) => shared.get(name) ?? shared.set(name, scalar(name, value)).get(name)!;

  const layerNorm = (name: string, x: string, eps: number, out?: string) =>
    g.op('LayerNormalization', name, [x, param(`${name}.weight`), param(`${name}.bias`)], {
      axis: attr.int(-1),
      epsilon: attr.float(eps),
    }, out);
  // timm's RmsNorm(2d) / SimpleNorm(2d) over axis 1 of x ([N, C] or NCHW), its weight broadcast to fit
  const rmsNorm = (name: string, x: string, channels: number, eps: number, spatial: boolean, out?: string) => {
    const axes = { axes: attr.ints([1]), keepdims: attr.int(1) };
    let centred = x;
    if (spec.norm === 'simplenorm') centred = g.op('Sub', `${name}/Sub`, [x, g.op('ReduceMean', `${name}/ReduceMean_x`, [x], axes)]);
    const squared = g.op('Pow', `${name}/Pow`, [centred, sharedScalar('const.two', 2)]);
    let v = g.op('ReduceMean', `${name}/ReduceMean`, [squared], axes);
    if (spec.norm === 'simplenorm') v = g.op('Mul', `${name}/Mul_unbiased`, [v, sharedScalar(`const.unbiased_${channels}`, channels / (channels - 1))]);
    const rms = g.op('Sqrt', `${name}/Sqrt`, [g.op('Add', `${name}/Add_eps`, [v, sharedScalar(`const.eps_${eps}`, eps)])]);
    const y = g.op('Div', `${name}/Div`, [x, rms]);
    return g.op('Mul', `${name}/Mul_weight`, [y, spatial ? channelParam(`${name}.weight`) : param(`${name}.weight`)], {}, out);
  };
  // LayerNorm2d (or the model's RMS-style norm): normalise over channels of an NCHW tensor.
  const layerNorm2d = (name: string, x: string, eps = spec.eps) => {
    if (spec.norm !== 'layernorm') return rmsNorm(name, x, params.get(`${name}.weight`)!.shape[0], eps, true);
    const nhwc = g.op('Transpose', `${name}/to_nhwc`, [x], { perm: attr.ints(TO_NHWC) });
    const y = layerNorm(name, nhwc, eps);
    return g.op('Transpose', `${name}/to_nchw`, [y], { perm: attr.ints(TO_NCHW) });
  };
  const conv = (name: string, x: string, kernel: number, stride: number, pad: number, group = 1) =>
    g.op('Conv', name, [x, param(`${name}.weight`), param(`${name}.bias`)], {
      kernel_shape: attr.ints([kernel, kernel]),
      strides: attr.ints([stride, stride]),
      pads: attr.ints([pad, pad, pad, pad]),
      dilations: attr.ints([1, 1]),
      group: attr.int(group),
    });
  // A Linear layer over the channels of an NCHW tensor: a 1×1 Conv, its [out, in] weight as is.
  const pointwise = (name: string, x: string) => {
    const w = params.get(`${name}.weight`)!;
    const weight = g.constant(`${name}.weight`, reshape(w, [...w.shape, 1, 1]));
    return g.op('Conv', name, [x, weight, param(`${name}.bias`)], { kernel_shape: attr.ints([1, 1]) });
  };
  // a per-channel parameter [C], broadcast over an NCHW tensor as [C, 1, 1]
  const channelParam = (name: string) => {
    const t = params.get(name)!;
    return g.constant(name, reshape(t, [t.shape[t.shape.length - 1], 1, 1]));
  };
  // PyTorch's Linear on [N, C]
  const linear = (name: string, x: string, out?: string) =>
    g.op('Gemm', name, [x, param(`${name}.weight`), param(`${name}.bias`)], { transB: attr.int(1) }, out);
  const gelu = (name: string, x: string, out?: string) => {
    const scaled = g.op('Div', `${name}/Div`, [x, consts.sqrt2]);
    const erf = g.op('Erf', `${name}/Erf`, [scaled]);
    const onePlus = g.op('Add', `${name}/Add`, [erf, consts.one]);
    const times = g.op('Mul', `${name}/Mul`, [x, onePlus]);
    return g.op('Mul', `${name}/Mul_half`, [times, consts.half], {}, out);
  };
  // GRN(x) = γ·(x·Nx) + β + x,  Nx = ‖x‖₂,HW / (mean_C ‖x‖₂,HW + ε)   (x is NCHW)
  const grn = (name: string, x: string) => {
    const gx = g.op('ReduceL2', `${name}/ReduceL2`, [x], { axes: attr.ints([2, 3]), keepdims: attr.int(1) });
    const mean = g.op('ReduceMean', `${name}/ReduceMean`, [gx], { axes: attr.ints([1]), keepdims: attr.int(1) });
    const denom = g.op('Add', `${name}/Add_eps`, [mean, consts.grnEps]);
    const nx = g.op('Div', `${name}/Div`, [gx, denom]);
    const xn = g.op('Mul', `${name}/Mul`, [x, nx]);
    const scaled = g.op('Mul', `${name}/Mul_gamma`, [xn, channelParam(`${name}.gamma`)]);
    const shifted = g.op('Add', `${name}/Add_beta`, [scaled, channelParam(`${name}.beta`)]);
    return g.op('Add', `${name}/Add_residual`, [shifted, x]);
  };

  let x: string;
  if (spec.stem === 'patch') x = conv(names.stemConv, INPUT_NAME, spec.patchSize, spec.patchSize, 0);
  else {
    x = conv(names.stemConv, INPUT_NAME, 3, 2, 1);
    if (spec.stem === 'overlap_act') x = gelu('stem.act', x);
    x = conv(names.stemConv2, x, 3, 2, 1);
  }
  x = layerNorm2d(names.stemNorm, x);
  // taps[0] is the stem's output, taps[s + 1] stage s's
  const taps: string[] = [x];
  for (let s = 0; s < spec.depths.length; s++) {
    if (s > 0) {
      x = layerNorm2d(names.downsampleNorm(s), x);
      x = conv(names.downsampleConv(s), x, 2, 2, 0);
    }
    for (let i = 0; i < spec.depths[s]; i++) {
      const b = names.block(s, i);
      const k = spec.kernelSize;
      let h = conv(`${b}.${bp.dwconv}`, x, k, 1, (k - 1) >> 1, spec.widths[s]);
      h = layerNorm2d(`${b}.${bp.norm}`, h);
      h = pointwise(`${b}.${bp.fc1}`, h);
      h = gelu(`${b}.gelu`, h);
      if (spec.version === 'v2') h = grn(`${b}.grn`, h);
      h = pointwise(`${b}.${bp.fc2}`, h);
      if (spec.layerScale) h = g.op('Mul', `${b}.${bp.layerScale}/Mul`, [h, channelParam(`${b}.${bp.layerScale}`)]);
      x = g.op('Add', `${b}/residual`, [x, h]);
    }
    taps.push(x);
  }
  const inputShape = ['batch', spec.inChannels, ...(options.dynamicSize ? ['height', 'width'] : [options.imageSize, options.imageSize])];
  if (options.outputs === 'stages') {
    // the stem's side, then each downsampling after stage 0 halves (kernel 2, stride 2, no padding: floor)
    const sides = [stemSide(spec, options.imageSize)];
    for (let tap = 1; tap < taps.length; tap++) sides.push(tap === 1 ? sides[0] : Math.floor(sides[tap - 1] / 2));
    const outputs = (options.features ?? stageMaps(spec)).map(({ name, tap, norm }) => {
      const value = norm ? layerNorm2d(names.outputNorm(tap), taps[tap]) : taps[tap];
      g.op('Identity', `${name}/output`, [value], {}, name);
      const dims = options.dynamicSize ? [`${name}_height`, `${name}_width`] : [sides[tap], sides[tap]];
      return { name, dtype: 'float32' as const, shape: ['batch', tapWidth(spec, tap), ...dims] };
    });
    return g.build([{ name: INPUT_NAME, dtype: 'float32', shape: inputShape }], outputs, options.metadata ?? {});
  }
  if (!spec.headNorm) throw new Error('a backbone without a head can only give its feature maps (checkpointOutputs refuses the rest)');
  const headless = spec.numClasses === 0 || options.outputs === 'pooled';
  const outName = headless ? FEATURES_NAME : LOGITS_NAME;
  const width = spec.headHidden || spec.widths[spec.widths.length - 1];
  // The head as a chain whose last step writes the graph output: the forms differ only in which
  // steps there are (timm's head_norm_first moves the norm onto the map; its MLP head adds a layer).
  const head: ((v: string, out?: string) => string)[] = [];
  if (spec.headNormFirst) head.push((v) => layerNorm2d(names.normPre, v, spec.headEps));
  head.push((v, out) => g.op('ReduceMean', 'head.pool', [v], { axes: attr.ints([2, 3]), keepdims: attr.int(0) }, out));
  if (!spec.headNormFirst) {
    const last = spec.widths[spec.widths.length - 1];
    head.push((v, out) => (spec.norm === 'layernorm' ? layerNorm(names.headNorm, v, spec.headEps, out) : rmsNorm(names.headNorm, v, last, spec.headEps, false, out)));
  }
  if (spec.headHidden) head.push((v) => linear(names.headPreLogits, v), (v, out) => gelu(`${names.headPreLogits}.act`, v, out));
  if (!headless) head.push((v, out) => linear(names.headFc, v, out));
  let out = x;
  head.forEach((step, i) => (out = step(out, i === head.length - 1 ? outName : undefined)));
  return g.build(
    [{ name: INPUT_NAME, dtype: 'float32', shape: inputShape }],
    [{ name: out, dtype: 'float32', shape: ['batch', headless ? width : spec.numClasses] }],
    options.metadata ?? {},
  );
}
