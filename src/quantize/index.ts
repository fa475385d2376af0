// The quantize verb: checkpoint or ONNX model in, fp16 / int8 / int8-weights ONNX model out.
// int8 is calibrated on real images in bounded memory (int8.ts); with an accuracy budget the layers
// whose quantization hurts most go back to float, one by one, until the budget holds (budget.ts).

import { checkDataFits, openDataset } from '../data/images.js';
import { InputError, UnsupportedError, Warnings } from '../errors.js';
import { filesRead } from '../formats/files.js';
import { onnxSize } from '../formats/onnx.js';
import type { TfliteOptions } from '../formats/tflite/index.js';
import { globMatcher } from '../graph/glob.js';
import type { Dataset } from '../data/images.js';
import type { Preprocessing } from '../data/preprocessing.js';
import type { Graph } from '../graph/graph.js';
import { labelsOf, metadataJson, preprocessingOf } from '../model/metadata.js';
import { prepareModel, type PrepareOptions } from '../model/prepare.js';
import { Steps } from '../model/steps.js';
import { checkModelOutput, writeModel, type WriteOptions } from '../model/write.js';
import { convertToFloat16 } from '../passes/fp16.js';
import type { Pass } from '../passes/pass.js';
import { applyPasses, runPipeline } from '../passes/pipeline.js';
import { biasFullRank } from '../passes/bias-full-rank.js';
import { matmulIntegerToFloat, MICROSOFT_DOMAIN } from '../passes/matmul-integer-to-float.js';
import { castsInt8Weight, dequantizeAsCastMul } from '../passes/dequantize-as-cast-mul.js';
import { DEFAULT_NBITS_BLOCK_SIZE, matmulNBits } from '../passes/matmul-nbits.js';
import { pointwiseToConv, pointwiseToMatMul } from '../passes/pointwise-layout.js';
import { excludesEveryLayer, QUANTIZABLE_OPS, quantizeWeightsOnly, unmatchedPatterns } from '../passes/quantize-int8.js';
import { BudgetError, budgetMessage, meetBudget, onnxEvaluate, type BudgetOptions, type BudgetReport, type Evaluate } from './budget.js';
import { calibrateInt8, calibrateTfliteInt8, type Int8Recipe } from './int8.js';
import { DEFAULT_INT8_TARGET, INT8_TARGETS, weightsReduced, type Int8Target } from './targets.js';
import type { CalibrationMethod } from './observer.js';

export { BudgetError, type BudgetReport } from './budget.js';

export type QuantizeMode = 'fp16' | 'int8' | 'int8-weights' | 'int4-weights';

/** What every mode takes: where the model comes from and goes, progress, and an accuracy budget. */
interface CommonOptions extends PrepareOptions, WriteOptions, BudgetOptions {
  /** Called as each step starts, for progress display. */
  readonly onStep?: (step: string) => void;
  /** Labelled images to measure the accuracy budget on (int8: the calibration images by default). */
  readonly data?: string;
  /** Labels for `data` (FILE LABEL lines or a CSV). */
  readonly labels?: string;
}

export interface Fp16Options extends CommonOptions {
  readonly to: 'fp16';
  /** Graph inputs and outputs stay float32 (default true). */
  readonly keepIoTypes?: boolean;
  /** Op types computed in float32 (default LayerNormalization). */
  readonly fp32Ops?: readonly string[];
}

export interface Int8WeightsOptions extends CommonOptions {
  readonly to: 'int8-weights';
  readonly opTypes?: readonly string[];
  readonly exclude?: readonly string[];
}

/** 4-bit blocks for MatMul/Gemm weights (onnxruntime's MatMulNBits), int8 for Conv weights; ONNX only. */
export interface Int4WeightsOptions extends CommonOptions {
  readonly to: 'int4-weights';
  readonly opTypes?: readonly string[];
  readonly exclude?: readonly string[];
  /** Weights per 4-bit block along K (default 32). */
  readonly blockSize?: number;
  /** Scales and activations float16 too, as fp16 makes them (transformers.js's q4f16); with fp16's options. */
  readonly float16?: boolean;
  readonly keepIoTypes?: boolean;
  readonly fp32Ops?: readonly string[];
}

/** int8 with its calibration (`calib` is required for ONNX output). */
export interface Int8Options extends CommonOptions, Int8Recipe {
  readonly to: 'int8';
}

export type QuantizeOptions = Fp16Options | Int8WeightsOptions | Int4WeightsOptions | Int8Options;

export interface QuantizeResult {
  readonly output: string;
  readonly mode: QuantizeMode;
  readonly method?: CalibrationMethod;
  /** For int8: the target the form was made for, and its weight bits. */
  readonly target?: { readonly name: Int8Target; readonly weightBits: number };
  readonly calibrationImages?: number;
  /** Whether channel equalization was used, and why. */
  readonly equalization?: string;
  readonly bytesWritten: number;
  readonly floatBytes: number;
  readonly quantizedLayers: number;
  readonly keptFloat: readonly string[];
  readonly budget?: BudgetReport;
  readonly timings: Record<string, number>;
  readonly warnings: readonly string[];
}

export async function quantize(input: string, output: string, options: QuantizeOptions): Promise<QuantizeResult> {
  const warnings = new Warnings();
  // the targets where int8 is a smaller file but not a faster model say so when named
  if (options.to === 'int8' && options.target === 'webgpu') warnings.add(`int8 for WebGPU: ${INT8_TARGETS.webgpu.note}`);
  if (options.to === 'int8' && options.target === 'cpu-avx2') warnings.add(`int8 for cpu-avx2: ${INT8_TARGETS['cpu-avx2'].note}`);
  const steps = new Steps(options.onStep);
  const onnx = (options.format ?? 'onnx') === 'onnx';
  const reads = [
    ...filesRead(input, 'the input model'),
    ...(options.to === 'int8' && options.calib ? filesRead(options.calib, 'the calibration images') : []),
    ...(options.data ? filesRead(options.data, 'the budget data') : []),
    ...(options.labels ? filesRead(options.labels, 'the labels file') : []),
    ...(options.labelsFile ? filesRead(options.labelsFile, 'the class names file') : []),
  ];
  checkModelOutput(output, options.format ?? 'onnx', reads);
  if (options.to === 'int4-weights' && !onnx) throw new UnsupportedError(`int4-weights is ONNX only (onnxruntime's MatMulNBits); for ${options.format}, --to int8-weights`, undefined, 'quantization');
  if (options.to === 'int8' && options.format === 'tflite') checkTfliteInt8(options);
  if (options.to === 'int8' && onnx && !options.calib) throw new InputError('int8 needs calibration images: give --calib DIR');
  checkBudgetData(options);
  const int8 = onnx && inIntLayout(options.to, options);
  const prepared = await prepareModel(input, int8 ? { ...options, skip: [...(options.skip ?? []), pointwiseToConv.name] } : options, steps, warnings);
  // prepareModel hands its graph over, so the pass may transpose weights in place
  const float = int8 ? await intLayout(prepared.graph, options, true) : prepared.graph;
  if (!onnx) return quantizeForTfjs(float, input, output, options, steps, warnings);
  const { graph: quantized, method, calibration, keptFloat, budget } = await quantizeFloat(float, options, steps, warnings);
  // a quantized model is made to be shipped: short names by default (--keep-names keeps them)
  const written = await writeModel(quantized, output, { ...options, compactNames: options.compactNames ?? true }, steps);
  return {
    output,
    mode: options.to,
    method,
    target: options.to === 'int8' ? { name: options.target ?? DEFAULT_INT8_TARGET, weightBits: weightsReduced(options) ? 7 : 8 } : undefined,
    calibrationImages: calibration.calibrationImages,
    equalization: calibration.equalization,
    bytesWritten: written.bytesWritten,
    floatBytes: onnxSize(float),
    quantizedLayers: quantizableLayers(quantized).length,
    keptFloat,
    budget,
    timings: steps.timings,
    warnings: warnings.items,
  };
}

/** The data an accuracy budget is measured on (int8: the calibration images by default), if a budget is set. */
function checkBudgetData(options: QuantizeOptions): string | undefined {
  if (options.maxDrop === undefined && options.minAgreement === undefined) return undefined;
  const data = options.data ?? (options.to === 'int8' ? options.calib : undefined);
  if (!data) throw new InputError('an accuracy budget needs data to measure on: give --data DIR');
  return data;
}

/** The images the accuracy budget is measured on, checked against the model, if a budget is set. */
function openBudgetData(float: Graph, options: QuantizeOptions, images: { preprocessing: Preprocessing; classNames?: readonly string[] }): Dataset | undefined {
  const budgetData = checkBudgetData(options);
  if (!budgetData) return undefined;
  const data = openDataset(budgetData, { ...images, labelsFile: options.labels });
  checkDataFits(data, float.inputs[0].shape, data.source);
  if (options.maxDrop !== undefined && !data.labelled) throw new InputError('--max-drop needs labelled data (labels.txt, a CSV or class folders)', data.source);
  return data;
}

/**
 * Whether `to` is made from intLayout's form. onnxruntime's int8 kernels are fastest on channels-last
 * MatMuls, its float kernels on 1×1 Convs (passes/pointwise-layout.ts): int8 puts the pointwise layers
 * back in MatMul form; int8-weights computes in float once onnxruntime has folded its Cast → Mul
 * weights, so it keeps the float layout unless it stays QDQ (where DQ → MatMul becomes MatMulNBits).
 */
export function inIntLayout(to: QuantizeOptions['to'], options: PrepareOptions): boolean {
  return to === 'int8' || to === 'int4-weights' || (to === 'int8-weights' && skipped(options, dequantizeAsCastMul));
}

/**
 * The pointwise layers as MatMuls, their biases before GELU at full rank (unless --skip-pass leaves
 * either out): the form onnxruntime's int8 kernels run fastest.
 */
export async function intLayout(float: Graph, options: PrepareOptions, inPlace: boolean): Promise<Graph> {
  const passes = [pointwiseToMatMul, biasFullRank].filter((p) => !skipped(options, p));
  return passes.length ? (await runPipeline(float, passes, { inPlace })).graph : float;
}

/** The quantized model and the facts of its making, from the float graph in the layout the mode runs fastest in. */
export interface QuantizedFloat {
  readonly graph: Graph;
  readonly method?: CalibrationMethod;
  readonly calibration: { readonly calibrationImages?: number; readonly equalization?: string };
  readonly keptFloat: readonly string[];
  readonly budget?: BudgetReport;
}

/**
 * Quantizes `float` (for int8 modes in intLayout) as `options.to`
 * says, meets the accuracy budget if one is given, and records how in the `quantization` metadata.
 */
export async function quantizeFloat(float: Graph, options: QuantizeOptions, steps: Steps, warnings: Warnings): Promise<QuantizedFloat> {
  if (options.to !== 'fp16') checkExclude(float, options.exclude ?? [], options.opTypes, warnings);
  const images = { preprocessing: preprocessingOf(float, options), classNames: labelsOf(float.metadata) };
  let calibration: { calibrationImages?: number; equalization?: string } = {};
  let makeQuantized: (exclude: readonly string[]) => Graph;
  if (options.to === 'fp16') {
    makeQuantized = () => convertToFloat16(float, { keepIoTypes: options.keepIoTypes, fp32Ops: options.fp32Ops, warnings });
  } else if (options.to === 'int8-weights') {
    const castMul = skipped(options, dequantizeAsCastMul) ? [] : [dequantizeAsCastMul];
    makeQuantized = (exclude) => applyPasses(quantizeWeightsOnly(float, { opTypes: [...(options.opTypes ?? QUANTIZABLE_OPS)], exclude: [...(options.exclude ?? []), ...exclude] }), castMul);
  } else if (options.to === 'int4-weights') {
    makeQuantized = int4Weights(float, options, warnings);
  } else {
    const int8Model = await calibrateInt8(float, options, images, steps);
    // the accuracy budget measures the form that is written
    makeQuantized = cpuForm(options) ? (exclude) => applyPasses(int8Model.makeQuantized(exclude), [matmulIntegerToFloat]) : int8Model.makeQuantized;
    calibration = int8Model;
  }
  let keptFloat: readonly string[] = [];
  let budget: BudgetReport | undefined;
  let quantized = await steps.run('quantize', () => makeQuantized([]));
  const data = openBudgetData(float, options, images);
  if (data) {
    const report = await steps.run('budget', () => meetBudget(onnxEvaluate(float, makeQuantized, options), data, options, quantizableLayers(quantized)));
    budget = report;
    keptFloat = report.keptFloat;
    quantized = keptFloat.length ? makeQuantized(keptFloat) : quantized;
    if (!report.met) throw new BudgetError(budgetMessage(options, report), report);
  }
  const method = options.to === 'int8' ? options.method ?? 'percentile' : undefined;
  // the pass recorded which layers it left float (--exclude, layers it cannot quantize); add the run's facts
  const recorded = metadataJson<{ layers_kept_float?: string[] }>(quantized.metadata, 'quantization') ?? {};
  quantized = {
    ...quantized,
    metadata: {
      ...quantized.metadata,
      quantization: JSON.stringify({
        mode: options.to,
        method: method ?? null,
        percentile: options.to === 'int8' && method === 'percentile' ? options.percentile ?? 99.99 : null,
        calibration_images: calibration.calibrationImages ?? null,
        channel_equalization: calibration.equalization ?? null,
        weight_bits: options.to === 'fp16' ? null : options.to === 'int4-weights' ? 4 : options.to === 'int8' && weightsReduced(options) ? 7 : 8,
        target: options.to === 'int8' ? options.target ?? DEFAULT_INT8_TARGET : null,
        // int4-weights records its own: the budget's MatMuls went to int8 weights, not float
        layers_kept_float: [...new Set([...(recorded.layers_kept_float ?? []), ...(options.to === 'int4-weights' ? [] : keptFloat)])],
        ...(options.to === 'int4-weights' ? { block_size: options.blockSize ?? DEFAULT_NBITS_BLOCK_SIZE, conv_weight_bits: 8, activations: options.float16 ? 'float16' : 'float32' } : {}),
      }),
    },
  };
  return { graph: quantized, method, calibration, keptFloat, budget };
}

/**
 * int4-weights: the MatMul/Gemm layers (ConvNeXt's pointwise layers and head, 90 % of its weights)
 * on 4-bit blocks, then the Convs (stem, downsampling, depthwise) on int8 weights as int8-weights
 * stores them: 4 bits there would cost more accuracy for little (a tenth of the weights), and
 * MatMulNBits has no convolution form. A MatMul/Gemm the accuracy budget takes off 4 bits goes to
 * int8 weights, one step, not to float; a Conv it takes goes to float; --exclude keeps either float.
 */
function int4Weights(float: Graph, options: Int4WeightsOptions, warnings: Warnings): (exclude: readonly string[]) => Graph {
  const opTypes = options.opTypes ?? QUANTIZABLE_OPS;
  const castMul = skipped(options, dequantizeAsCastMul) ? [] : [dequantizeAsCastMul];
  if (options.float16 && !castMul.length) throw new UnsupportedError('--float16 with --skip-pass dequantize-as-cast-mul: DequantizeLinear takes float16 scales only from opset 19', undefined, 'quantization');
  return (more) => {
    const exclude = [...(options.exclude ?? []), ...more];
    const nbits = matmulNBits({ blockSize: options.blockSize, exclude, opTypes });
    const dense = skipped(options, nbits) ? float : applyPasses(float, [nbits]);
    // the MatMul/Gemm layers still float are the ones excluded: the user's stay float, the budget's get int8
    const budgetDense = dense.nodes.filter((n) => n.op !== 'Conv' && more.includes(n.name)).map((n) => n.name);
    const userExclude = [...(options.exclude ?? []), ...more.filter((name) => !budgetDense.includes(name))];
    // it also records the layers left float
    const q = applyPasses(quantizeWeightsOnly(dense, { opTypes: [...opTypes], exclude: userExclude }), castMul);
    return options.float16 ? convertToFloat16(q, { keepIoTypes: options.keepIoTypes, fp32Ops: options.fp32Ops, warnings }) : q;
  };
}

/** onnxruntime's CPU kernels (native or wasm) run the int8 pointwise layers with their bias as MatMulIntegerToFloat, unless --skip-pass says not to. */
function cpuForm(options: Int8Options): boolean {
  return INT8_TARGETS[options.target ?? DEFAULT_INT8_TARGET].form === 'cpu' && !skipped(options, matmulIntegerToFloat);
}

/** Whether --skip-pass leaves out one of the passes quantize adds to the pipeline. */
const skipped = (options: PrepareOptions, pass: Pass): boolean => (options.skip ?? []).includes(pass.name);

/** Refuses --exclude patterns that leave nothing to quantize; warns of those that name no layer. */
function checkExclude(float: Graph, exclude: readonly string[], opTypes: readonly string[] | undefined, warnings: Warnings): void {
  if (excludesEveryLayer(float, exclude, opTypes)) throw new InputError(`--exclude ${exclude.map((p) => `'${p}'`).join(' ')} names every layer: nothing would be quantized`);
  for (const p of unmatchedPatterns(float, exclude)) {
    const examples = float.nodes.filter((n) => (QUANTIZABLE_OPS as readonly string[]).includes(n.op)).slice(1, 4).map((n) => n.name).join(', ');
    warnings.add(`--exclude '${p}' matches no Conv, MatMul or Gemm${examples ? `; layers are named like ${examples}` : ''}`);
  }
}

/** What full-integer TFLite does not take yet: refused by name rather than ignored. */
function checkTfliteInt8(options: Int8Options): void {
  const unsupported = [
    options.opTypes && '--op-types',
    options.equalize && options.equalize !== 'off' && options.equalize !== 'auto' && '--equalize on',
  ].filter(Boolean);
  if (unsupported.length) throw new UnsupportedError(`full-integer int8 TFLite does not take ${unsupported.join(', ')} yet`, undefined, 'quantization');
}

// TF.js runs float kernels only: what it keeps of a quantization is the weight storage (float16, or
// int8 per output channel, dequantized in the graph). TFLite the same for fp16 and int8-weights;
// its int8 is full-integer where LiteRT has int8 kernels (formats/tflite/int8.ts), on calibrated ranges.
async function quantizeForTfjs(float: Graph, input: string, output: string, options: QuantizeOptions, steps: Steps, warnings: Warnings): Promise<QuantizeResult> {
  const tflite = options.format === 'tflite';
  // the budget keeps layers float, which TFLite's int8 forms can and TF.js's cannot
  const budgeted = tflite && options.to !== 'fp16';
  if (!budgeted && (options.maxDrop !== undefined || options.minAgreement !== undefined)) {
    throw new InputError(`--max-drop/--min-agreement apply to int8 (ONNX, TFLite); for ${tflite ? 'TFLite fp16' : 'TF.js'}, measure the written model with convnext validate`);
  }
  const weights = options.to === 'fp16' ? 'float16' : 'int8';
  const fullInt = tflite && options.to === 'int8';
  const images = { preprocessing: preprocessingOf(float, options), classNames: labelsOf(float.metadata) };
  const io = options.tflite?.io ?? 'float';
  if (io !== 'float' && !fullInt) throw new InputError(`--io ${io} applies to full-integer int8 TFLite (--format tflite --to int8 --calib DIR)`);
  // TFLite keeps --exclude's layers float32, weights included (TF.js has no per-layer storage choice)
  const exclude = tflite && options.to !== 'fp16' ? options.exclude ?? [] : [];
  checkExclude(float, exclude, undefined, warnings);
  const layers = float.nodes.filter((n) => (QUANTIZABLE_OPS as readonly string[]).includes(n.op)).map((n) => n.name);
  let keptFloat = layers.filter(globMatcher(exclude));
  const calibrated = fullInt ? await calibrateTfliteInt8(float, { ...options, io }, images, steps) : undefined;
  const method = fullInt ? options.method ?? 'percentile' : undefined;
  const recorded = (kept: readonly string[]) => !tflite
    ? { mode: options.to, tfjs_weights: weights, activations: 'float32' }
    : fullInt
      ? {
          mode: options.to,
          tflite_weights: weights,
          activations: 'int8 (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED); float32 elsewhere',
          method,
          percentile: method === 'percentile' ? options.percentile ?? 99.99 : null,
          calibration_images: calibrated!.calibrationImages,
          io: io === 'uint8' ? 'uint8: input RGB bytes (scale 1/255, normalised inside), output logits uint8' : 'float32',
          layers_kept_float: kept,
        }
      : { mode: options.to, tflite_weights: weights, activations: 'float32', layers_kept_float: kept };
  const graphKeeping = (kept: readonly string[]): Graph => ({ ...float, metadata: { ...float.metadata, quantization: JSON.stringify(recorded(kept)) } });
  // one choice of names for every format: compactNames false (--keep-names) keeps TFLite's tensor names too
  const keepNames = options.tflite?.keepNames ?? options.compactNames === false;
  const tfliteOptions = (kept: readonly string[]): TfliteOptions => ({ ...options.tflite, keepNames, weights, activationRanges: calibrated?.ranges, exclude: kept });
  let budget: BudgetReport | undefined;
  const data = budgeted ? openBudgetData(float, options, images) : undefined;
  if (data) {
    // measured in LiteRT, against the float32 .tflite: the runtime the file is for
    const { predictTflite } = await import('../runtime/litert.js');
    const { encodeTflite } = await import('../formats/tflite/index.js');
    const evaluate: Evaluate = (d, what, more) =>
      predictTflite(encodeTflite(graphKeeping(keptFloat), more ? tfliteOptions([...keptFloat, ...more]) : { gelu: options.tflite?.gelu }), d, options, what);
    // every layer not excluded, the one reading the image too: full int8 computes it in float, but on int8 weights
    const candidates = layers.filter((l) => !keptFloat.includes(l));
    budget = await steps.run('budget', () => meetBudget(evaluate, data, options, candidates));
    keptFloat = [...keptFloat, ...budget.keptFloat];
    if (!budget.met) throw new BudgetError(budgetMessage(options, budget), budget);
  }
  const written = await writeModel(graphKeeping(keptFloat), output, { ...options, tfjs: { ...options.tfjs, weights }, tflite: tfliteOptions(keptFloat) }, steps);
  return {
    output,
    mode: options.to,
    method,
    calibrationImages: calibrated?.calibrationImages,
    bytesWritten: written.bytesWritten,
    floatBytes: onnxSize(float),
    quantizedLayers: layers.length - keptFloat.length,
    keptFloat,
    budget,
    timings: steps.timings,
    warnings: warnings.items,
  };
}

/** Names of the nodes that run on quantized weights (fed by a DequantizeLinear, or Cast → Mul, of an int8 constant, or fused with it). */
export function quantizableLayers(graph: Graph): string[] {
  const dq = new Set(graph.nodes.filter((n) => n.op === 'DequantizeLinear' && graph.initializers.has(n.inputs[0])).map((n) => n.outputs[0]));
  const casts = new Set(graph.nodes.filter((n) => castsInt8Weight(n, (v) => graph.initializers.get(v))).map((n) => n.outputs[0]));
  for (const n of graph.nodes) if (n.op === 'Mul' && n.inputs.some((i) => casts.has(i))) dq.add(n.outputs[0]);
  const contrib = (n: Graph['nodes'][number]) => (n.op === 'MatMulIntegerToFloat' || n.op === 'MatMulNBits') && n.domain === MICROSOFT_DOMAIN;
  const quantized = (n: Graph['nodes'][number]) => ((QUANTIZABLE_OPS as readonly string[]).includes(n.op) && n.inputs.some((i) => dq.has(i))) || contrib(n);
  return graph.nodes.filter(quantized).map((n) => n.name);
}
