// The accuracy budget: measure the quantized model against fp32 and, while it is over budget,
// return the layer whose quantization hurts most to float. Also the float32 prediction loop that
// quantize's other measurements (channel equalization's choice) share.

import { MeasuredFailure } from '../errors.js';
import type { Dataset } from '../data/images.js';
import type { Graph } from '../graph/graph.js';
import { float32 } from '../graph/tensor.js';
import { accuracy, agreement } from '../runtime/metrics.js';
import { createGraphSession, runFloat } from '../runtime/onnxruntime.js';
import { predict } from '../runtime/predict.js';

export interface EvaluationOptions {
  readonly batchSize?: number;
  readonly onProgress?: (what: string, done: number, total: number) => void;
}

export interface BudgetOptions extends EvaluationOptions {
  /** Largest allowed top-1 drop against fp32, in points. */
  readonly maxDrop?: number;
  /** Smallest allowed top-1 agreement with fp32, in %. */
  readonly minAgreement?: number;
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

/** Thrown when the accuracy budget cannot be met even with every layer float (exit code 1). */
export class BudgetError extends MeasuredFailure {
  override readonly name = 'BudgetError';
  constructor(message: string, readonly report: BudgetReport) {
    super(message);
  }
}

/** The graph's logits over the data (one float32 model's view of it). */
export async function predictFloat(graph: Graph, data: Dataset, options: EvaluationOptions, what: string): Promise<Prediction> {
  const session = await createGraphSession(graph, '');
  try {
    const p = await predict([(input) => runFloat(session, input)], data, { batchSize: options.batchSize, onProgress: (d, t) => options.onProgress?.(what, d, t) });
    return { logits: p.logits[0], classes: p.classes, labels: p.labels };
  } finally {
    await session.release();
  }
}

export interface Prediction {
  readonly logits: Float32Array;
  readonly classes: number;
  readonly labels: readonly number[];
}

/**
 * The logits over `data` of the float model (`kept` undefined) or of the quantized one with the
 * `kept` layers float: what the budget measures, in whichever runtime the model is for.
 */
export type Evaluate = (data: Dataset, what: string, kept?: readonly string[]) => Promise<Prediction>;

/** Evaluate for ONNX graphs, in onnxruntime. */
export function onnxEvaluate(float: Graph, makeQuantized: (exclude: readonly string[]) => Graph, options: EvaluationOptions): Evaluate {
  return (data, what, kept) => predictFloat(kept ? makeQuantized(kept) : float, data, options, what);
}

// Measure; while over budget, return the layer that hurts most to float. Sensitivity of a layer is
// the logit error when only that layer is quantized, measured on the first images of the data.
export async function meetBudget(evaluate: Evaluate, data: Dataset, options: BudgetOptions, layers: readonly string[]): Promise<BudgetReport> {
  const reference = await evaluate(data, 'evaluate fp32');
  const fp32Top1 = data.labelled ? accuracy(reference.logits, reference.classes, reference.labels).top1 : undefined;
  let evaluations = 0;
  const measure = async (kept: readonly string[]): Promise<BudgetReport> => {
    evaluations++;
    const p = await evaluate(data, kept.length ? `evaluate (${kept.length} float)` : 'evaluate', kept);
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
  const probeRef = await evaluate(probe, 'sensitivity');
  for (const layer of layers) {
    const only = await evaluate(probe, `sensitivity ${layer}`, layers.filter((l) => l !== layer));
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
export function limited(data: Dataset, limit: number): Dataset {
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

export function meanSquaredError(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

export function budgetMessage(options: BudgetOptions, r: BudgetReport): string {
  const parts: string[] = [];
  if (options.maxDrop !== undefined) parts.push(`top-1 drop ${r.drop?.toFixed(2)} points > --max-drop ${options.maxDrop}`);
  if (options.minAgreement !== undefined) parts.push(`agreement ${r.agreement.toFixed(2)} % < --min-agreement ${options.minAgreement}`);
  return `accuracy budget not met even with ${r.keptFloat.length} layers kept float: ${parts.join(', ')}`;
}
