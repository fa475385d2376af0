// The quantize verb: checkpoint or ONNX model in, fp16 / int8 / int8-weights ONNX model out.
// int8 is calibrated on real images in bounded memory; with an accuracy budget the layers whose
// quantization hurts most go back to float, one by one, until the budget holds.

import { prepareModel, type PrepareOptions } from '../model/prepare.js';
import { Steps } from '../model/steps.js';
import { writeModel, type WriteOptions } from '../model/write.js';
import { InputError, MeasuredFailure, Warnings } from '../errors.js';
import { labelsOf, metadataJson, preprocessingOf } from '../model/metadata.js';
import { checkOutputPath } from '../formats/files.js';
import { checkDataFits, openDataset, type Dataset, type Preprocessing } from '../data/images.js';
import { onnxBytes, onnxSize } from '../formats/onnx.js';
import type { Graph } from '../graph/graph.js';
import { float32 } from '../graph/tensor.js';
import { convertToFloat16 } from '../passes/fp16.js';
import { runPipeline } from '../passes/pipeline.js';
import { pointwiseToConv, pointwiseToMatMul } from '../passes/pointwise-layout.js';
import { activationsToCalibrate, QUANTIZABLE_OPS, quantizeStatic, quantizeWeightsOnly, unmatchedPatterns } from '../passes/quantize-int8.js';
import { calibrate, ChannelAbsMax, observeActivations } from './calibrate.js';
import { equalizablePairs, equalizeChannels } from '../passes/equalize.js';
import type { CalibrationMethod } from './observer.js';
import { createSession, runFloat } from '../runtime/onnxruntime.js';
import { predict } from '../runtime/predict.js';
import { accuracy, agreement } from '../runtime/metrics.js';

export type QuantizeMode = 'fp16' | 'int8' | 'int8-weights';


export interface QuantizeOptions extends PrepareOptions, WriteOptions {
  /** Called as each step starts, for progress display. */
  readonly onStep?: (step: string) => void;
  readonly to: QuantizeMode;
  /** Calibration images (folder or .npy), for int8. */
  readonly calib?: string;
  readonly calibSize?: number;
  readonly method?: CalibrationMethod;
  readonly percentile?: number;
  readonly batchSize?: number;
  // fp16
  readonly keepIoTypes?: boolean;
  readonly fp32Ops?: readonly string[];
  // int8
  readonly opTypes?: readonly string[];
  readonly exclude?: readonly string[];
  /**
   * 7-bit weights (default): exact on x86 CPUs without VNNI, where onnxruntime's u8×s8 kernels
   * saturate 16-bit sums with full-range weights. false for VNNI, ARM and GPU targets.
   */
  readonly reduceRange?: boolean;
  /** Quantize the layer that reads the image too (by default it stays float). */
  readonly quantizeInputLayer?: boolean;
  /** SmoothQuant-style LayerNorm→pointwise channel equalization: 'auto' uses it when it lowers the error. */
  readonly equalize?: 'auto' | 'on' | 'off';
  // accuracy budget
  readonly data?: string;
  readonly labels?: string;
  readonly maxDrop?: number;
  readonly minAgreement?: number;
  readonly onProgress?: (what: string, done: number, total: number) => void;
}

export interface BudgetReport {
  readonly fp32Top1?: number;
  readonly top1?: number;
  readonly drop?: number;
  readonly agreement: number;
  readonly met: boolean;
  readonly keptFloat: readonly string[];
  readonly evaluations: number;
}

export interface QuantizeResult {
  readonly output: string;
  readonly mode: QuantizeMode;
  readonly method?: CalibrationMethod;
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

/** Thrown when the accuracy budget cannot be met even with every layer float (exit code 1). */
export class BudgetError extends MeasuredFailure {
  override readonly name = 'BudgetError';
  constructor(message: string, readonly report: BudgetReport) {
    super(message);
  }
}

export async function quantize(input: string, output: string, options: QuantizeOptions): Promise<QuantizeResult> {
  const warnings = new Warnings();
  const steps = new Steps(options.onStep);
  if ((options.format ?? 'onnx') === 'onnx') checkOutputPath(output, [input]);
  if (options.to === 'int8' && !options.calib && options.format !== 'tfjs') throw new InputError('int8 needs calibration images: give --calib DIR');
  if ((options.maxDrop !== undefined || options.minAgreement !== undefined) && !options.data && !options.calib) {
    throw new InputError('an accuracy budget needs data to measure on: give --data DIR');
  }
  // onnxruntime's int8 kernels are fastest on channels-last MatMuls, its float kernels on 1×1 Convs
  // (passes/pointwise-layout.ts): int8 keeps or puts the pointwise layers back in MatMul form
  const int8 = options.to !== 'fp16' && options.format !== 'tfjs';
  const prepared = await prepareModel(input, int8 ? { ...options, skip: [...(options.skip ?? []), pointwiseToConv.name] } : options, steps, warnings);
  const toMatMul = int8 && !(options.skip ?? []).includes(pointwiseToMatMul.name);
  // prepareModel hands its graph over, so the pass may transpose weights in place
  const float = toMatMul ? (await runPipeline(prepared.graph, [pointwiseToMatMul], { inPlace: true })).graph : prepared.graph;
  if (options.format === 'tfjs') return quantizeForTfjs(float, input, output, options, steps, warnings);
  for (const p of unmatchedPatterns(float, options.exclude ?? [])) {
    const examples = float.nodes.filter((n) => (QUANTIZABLE_OPS as readonly string[]).includes(n.op)).slice(1, 4).map((n) => n.name).join(', ');
    warnings.add(`--exclude '${p}' matches no Conv, MatMul or Gemm${examples ? `; layers are named like ${examples}` : ''}`);
  }
  const classNames = labelsOf(float.metadata);
  const preprocessing = preprocessingOf(float, options);
  const method = options.method ?? 'percentile';
  let calibrationImages: number | undefined;
  let equalization: string | undefined;
  let makeQuantized: (exclude: readonly string[]) => Graph;
  if (options.to === 'fp16') {
    makeQuantized = () => convertToFloat16(float, { keepIoTypes: options.keepIoTypes ?? true, fp32Ops: [...(options.fp32Ops ?? ['LayerNormalization'])], warnings });
  } else if (options.to === 'int8-weights') {
    makeQuantized = (exclude) => quantizeWeightsOnly(float, { opTypes: [...(options.opTypes ?? QUANTIZABLE_OPS)], exclude: [...(options.exclude ?? []), ...exclude] });
  } else {
    const calib = openDataset(options.calib!, { preprocessing, classNames, limit: options.calibSize });
    checkDataFits(calib, float.inputs[0].shape, options.calib!);
    calibrationImages = calib.size;
    // The layer that reads the image stays float by default: it is a sliver of the compute, and its
    // uint8 input costs agreement (Fashion model, 10,000 test images: 99.47 % → 99.57 %).
    const inputLayers = options.quantizeInputLayer ? [] : float.nodes.filter((n) => n.inputs[0] === float.inputs[0].name).map((n) => n.name);
    const intOptions = { opTypes: [...(options.opTypes ?? QUANTIZABLE_OPS)], exclude: [...(options.exclude ?? []), ...inputLayers], reduceRange: options.reduceRange ?? true };
    const values = activationsToCalibrate(float, intOptions);
    const onProgress = (what: string) => (d: number, t: number) => options.onProgress?.(what, d, t);
    const calibrated = async (g: Graph, what: string) => {
      const ranges = await calibrate(g, values, calib, { method, percentile: options.percentile, batchSize: options.batchSize, onProgress: onProgress(what) });
      return (exclude: readonly string[]) => quantizeStatic(g, ranges, { ...intOptions, exclude: [...intOptions.exclude, ...exclude] });
    };
    const plain = await steps.run('calibrate', () => calibrated(float, 'calibrate'));
    makeQuantized = plain;
    const equalize = options.equalize ?? 'auto';
    if (equalize !== 'off' && equalizablePairs(float).size > 0) {
      const equalizedGraph = await steps.run('equalize', async () => {
        const pairs = equalizablePairs(float);
        const stats = new Map([...pairs].map(([v, { linear }]) => [v, new ChannelAbsMax(linear.inChannels)]));
        await observeActivations(float, stats, calib, { batchSize: options.batchSize, onProgress: onProgress('channel ranges') });
        return equalizeChannels(float, new Map([...stats].map(([v, o]) => [v, o.absmax])));
      });
      const equalized = await steps.run('calibrate', () => calibrated(equalizedGraph, 'calibrate equalized'));
      if (equalize === 'on') {
        makeQuantized = equalized;
        equalization = 'on';
      } else {
        // on when it helps: the smaller logit error against fp32 on the calibration images decides
        const [reference, a, b] = await steps.run('compare', async () =>
          Promise.all([float, plain([]), equalized([])].map((g) => run(g, limited(calib, 128), options, 'compare'))),
        );
        const better = meanSquaredError(b.logits, reference.logits) < meanSquaredError(a.logits, reference.logits);
        makeQuantized = better ? equalized : plain;
        equalization = better ? 'on (helped)' : 'off (did not help)';
      }
    }
  }
  let keptFloat: readonly string[] = [];
  let budget: BudgetReport | undefined;
  let quantized = await steps.run('quantize', () => makeQuantized([]));
  if (options.maxDrop !== undefined || options.minAgreement !== undefined) {
    const data = openDataset(options.data ?? options.calib!, { preprocessing, classNames, labelsFile: options.labels });
    checkDataFits(data, float.inputs[0].shape, data.source);
    if (options.maxDrop !== undefined && !data.labelled) throw new InputError('--max-drop needs labelled data (labels.txt, a CSV or class folders)', data.source);
    budget = await steps.run('budget', () => meetBudget(float, makeQuantized, data, options, quantizableLayers(quantized)));
    keptFloat = budget.keptFloat;
    quantized = keptFloat.length ? makeQuantized(keptFloat) : quantized;
    if (!budget.met) throw new BudgetError(budgetMessage(options, budget), budget);
  }
  // the pass recorded which layers it left float (--exclude, layers it cannot quantize); add the run's facts
  const recorded = metadataJson<{ layers_kept_float?: string[] }>(quantized.metadata, 'quantization') ?? {};
  quantized = {
    ...quantized,
    metadata: {
      ...quantized.metadata,
      quantization: JSON.stringify({
        mode: options.to,
        method: options.to === 'int8' ? method : null,
        percentile: options.to === 'int8' && method === 'percentile' ? options.percentile ?? 99.99 : null,
        calibration_images: calibrationImages ?? null,
        channel_equalization: equalization ?? null,
        weight_bits: options.to === 'fp16' ? null : options.to === 'int8' && (options.reduceRange ?? true) ? 7 : 8,
        layers_kept_float: [...new Set([...(recorded.layers_kept_float ?? []), ...keptFloat])],
      }),
    },
  };
  // a quantized model is made to be shipped: short names by default (--keep-names keeps them)
  const written = await writeModel(quantized, output, input, { ...options, compactNames: options.compactNames ?? true }, steps);
  return {
    output,
    mode: options.to,
    method: options.to === 'int8' ? method : undefined,
    calibrationImages,
    equalization,
    bytesWritten: written.bytesWritten,
    floatBytes: onnxSize(float),
    quantizedLayers: quantizableLayers(quantized).length,
    keptFloat,
    budget,
    timings: steps.timings,
    warnings: warnings.items,
  };
}

// TF.js runs float kernels only: what it can keep of a quantization is the weight storage (float16,
// or int8 per output channel, dequantized in the graph). Activations stay float32.
async function quantizeForTfjs(float: Graph, input: string, output: string, options: QuantizeOptions, steps: Steps, warnings: Warnings): Promise<QuantizeResult> {
  if (options.maxDrop !== undefined || options.minAgreement !== undefined) {
    throw new InputError('--max-drop/--min-agreement apply to ONNX int8; for TF.js, measure the written model with convnext validate');
  }
  const weights = options.to === 'fp16' ? 'float16' : 'int8';
  const graph: Graph = {
    ...float,
    metadata: { ...float.metadata, quantization: JSON.stringify({ mode: options.to, tfjs_weights: weights, activations: 'float32' }) },
  };
  const written = await writeModel(graph, output, input, { ...options, tfjs: { ...options.tfjs, weights } }, steps);
  return {
    output,
    mode: options.to,
    bytesWritten: written.bytesWritten,
    floatBytes: onnxSize(float),
    quantizedLayers: float.nodes.filter((n) => (QUANTIZABLE_OPS as readonly string[]).includes(n.op)).length,
    keptFloat: [],
    timings: steps.timings,
    warnings: warnings.items,
  };
}

/** Names of the nodes that run on quantized weights (those fed by a DequantizeLinear of a constant). */
export function quantizableLayers(graph: Graph): string[] {
  const dq = new Set(graph.nodes.filter((n) => n.op === 'DequantizeLinear' && graph.initializers.has(n.inputs[0])).map((n) => n.outputs[0]));
  return graph.nodes.filter((n) => (QUANTIZABLE_OPS as readonly string[]).includes(n.op) && n.inputs.some((i) => dq.has(i))).map((n) => n.name);
}

/** The graph's logits over the data (one float32 model's view of it). */
async function run(graph: Graph, data: Dataset, options: QuantizeOptions, what: string): Promise<Prediction> {
  const session = await createSession(onnxBytes(graph));
  try {
    const p = await predict([(input) => runFloat(session, input)], data, { batchSize: options.batchSize, onProgress: (d, t) => options.onProgress?.(what, d, t) });
    return { logits: p.logits[0], classes: p.classes, labels: p.labels };
  } finally {
    await session.release();
  }
}

interface Prediction {
  readonly logits: Float32Array;
  readonly classes: number;
  readonly labels: readonly number[];
}

// Measure; while over budget, return the layer that hurts most to float. Sensitivity of a layer is
// the logit error when only that layer is quantized, measured on the first images of the data.
async function meetBudget(
  float: Graph,
  makeQuantized: (exclude: readonly string[]) => Graph,
  data: Dataset,
  options: QuantizeOptions,
  layers: readonly string[],
): Promise<BudgetReport> {
  const reference = await run(float, data, options, 'evaluate fp32');
  const fp32Top1 = data.labelled ? accuracy(reference.logits, reference.classes, reference.labels).top1 : undefined;
  let evaluations = 0;
  const measure = async (kept: readonly string[]): Promise<BudgetReport> => {
    evaluations++;
    const p = await run(makeQuantized(kept), data, options, kept.length ? `evaluate (${kept.length} float)` : 'evaluate');
    const top1 = data.labelled ? accuracy(p.logits, p.classes, p.labels).top1 : undefined;
    const agree = agreement(p.logits, reference.logits, reference.classes).top1Agreement;
    const drop = top1 !== undefined && fp32Top1 !== undefined ? fp32Top1 - top1 : undefined;
    const met = (options.maxDrop === undefined || (drop !== undefined && drop <= options.maxDrop + 1e-9)) && (options.minAgreement === undefined || agree >= options.minAgreement - 1e-9);
    return { fp32Top1, top1, drop, agreement: agree, met, keptFloat: kept, evaluations };
  };
  let report = await measure([]);
  if (report.met) return report;
  const sensitivity: { layer: string; error: number }[] = [];
  const probe = limited(data, 128);
  const probeRef = await run(float, probe, options, 'sensitivity');
  for (const layer of layers) {
    const only = await run(makeQuantized(layers.filter((l) => l !== layer)), probe, options, `sensitivity ${layer}`);
    sensitivity.push({ layer, error: meanSquaredError(only.logits, probeRef.logits) });
  }
  sensitivity.sort((a, b) => b.error - a.error);
  const kept: string[] = [];
  for (const { layer } of sensitivity) {
    kept.push(layer);
    report = await measure([...kept]);
    if (report.met) return { ...report, evaluations };
  }
  return { ...report, evaluations };
}

/** The first `limit` images of a data set. */
function limited(data: Dataset, limit: number): Dataset {
  async function* batches(batchSize: number) {
    for await (const b of data.batches(Math.min(batchSize, limit))) {
      if (b.start >= limit) return;
      const keep = Math.min(b.labels.length, limit - b.start);
      if (keep === b.labels.length) yield b;
      else {
        const per = b.input.data.length / b.labels.length;
        yield { ...b, input: float32([keep, ...b.input.shape.slice(1)], (b.input.data as Float32Array).subarray(0, keep * per)), labels: b.labels.slice(0, keep) };
      }
    }
  }
  return { ...data, size: Math.min(data.size, limit), batches };
}

function meanSquaredError(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

function budgetMessage(options: QuantizeOptions, r: BudgetReport): string {
  const parts: string[] = [];
  if (options.maxDrop !== undefined) parts.push(`top-1 drop ${r.drop?.toFixed(2)} points > --max-drop ${options.maxDrop}`);
  if (options.minAgreement !== undefined) parts.push(`agreement ${r.agreement.toFixed(2)} % < --min-agreement ${options.minAgreement}`);
  return `accuracy budget not met even with ${r.keptFloat.length} layers kept float: ${parts.join(', ')}`;
}
