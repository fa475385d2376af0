// The validate verb: accuracy on real images (against labels and against a reference model) and
// speed on the provider that actually runs, side by side with the reference, then the CI gates.

import { arch, platform, release } from 'node:os';
import * as ort from 'onnxruntime-node';
import { InputError } from '../errors.js';
import { labelsOf, preprocessingOf, type PreprocessingOverrides } from '../model/metadata.js';
import { checkDataFits, openDataset } from '../data/images.js';
import type { Graph } from '../graph/graph.js';
import type { Tensor } from '../graph/tensor.js';
import { predict } from '../runtime/predict.js';
import { accuracy, agreement, type Accuracy, type Agreement } from '../runtime/metrics.js';
import type { ProviderChoice, Runner } from '../runtime/runners.js';
import type { BrowserSession } from '../runtime/browser/chromium.js';
import type { BrowserReport } from '../runtime/browser/chromium.js';
import type { WebProvider, WebTfjsBackend } from '../runtime/browser/runner.js';
import { openModel } from './open.js';
import { recordedCrop } from '../runtime/probe.js';
import { filesRead, type RolePath } from '../formats/files.js';
import { measureSpeed, type SpeedResult } from './speed.js';
import { TOOL_VERSION } from '../version.js';

export interface Gates {
  /** Largest allowed top-1 drop against the reference, in points (needs labels). */
  readonly maxDrop?: number;
  /** Smallest allowed top-1 agreement with the reference, in percent. */
  readonly minAgreement?: number;
  readonly minCosine?: number;
  /** Largest allowed median latency at the smallest batch size, in ms. */
  readonly maxLatencyMs?: number;
  /** Smallest allowed reference/model latency ratio, at every batch size. */
  readonly minSpeedup?: number;
}

export interface ValidateOptions extends PreprocessingOverrides {
  readonly reference?: string;
  readonly data?: string;
  readonly labels?: string;
  readonly limit?: number;
  /** Where the models run: 'node' (onnxruntime-node, TF.js in Node; default) or 'browser' (headless Chromium). */
  readonly runtime?: 'node' | 'browser';
  /** The browser to run in (default: the system's Chromium or Chrome). */
  readonly browser?: string;
  /** onnxruntime's provider: in Node auto, webgpu, cuda, cpu; in a browser auto, wasm (cpu), webgpu, webgl. */
  readonly ep?: ProviderChoice | WebProvider;
  /**
   * The reference's provider, when it should differ: e.g. an fp16 model on WebGPU against the fp32
   * model on the CPU, which also catches what the GPU runtime gets wrong. Default: the model's.
   */
  readonly referenceEp?: ProviderChoice | WebProvider;
  /** For TF.js models: the backend (default wasm, the faster of the two in Node); webgl, webgpu in a browser. */
  readonly tfjsBackend?: WebTfjsBackend;
  /** Batch sizes to time; empty to skip timing. */
  readonly batches?: readonly number[];
  readonly batchSize?: number;
  /** Pixels, or 'test': a timm Hub folder's pretrained_cfg.test_input_size. */
  readonly imageSize?: number | 'test';
  readonly stateDictKey?: string;
  readonly gates?: Gates;
  readonly onStep?: (step: string) => void;
  readonly onProgress?: (what: string, done: number, total: number) => void;
}

export interface GateResult {
  readonly name: string;
  readonly passed: boolean;
  readonly limit: number;
  readonly value: number;
  readonly detail: string;
}

export interface RunnerInfo {
  readonly path: string;
  readonly kind: string;
  readonly provider: string;
  readonly device: string;
  readonly loadMs: number;
  readonly fallbacks: readonly { provider: string; reason: string }[];
  /** A checkpoint's conversion warnings, and notes on the provider (int8 on WebGPU). */
  readonly warnings: readonly string[];
}

export interface ValidateReport {
  readonly model: RunnerInfo;
  readonly reference?: RunnerInfo;
  readonly data?: { readonly source: string; readonly images: number; readonly labelled: boolean; readonly classNames?: readonly string[] };
  readonly accuracy?: { readonly model: Accuracy; readonly reference?: Accuracy };
  readonly agreement?: Agreement;
  /** |model − reference| logit errors: bin edges and counts. */
  readonly errorHistogram?: { readonly edges: number[]; readonly counts: number[] };
  readonly speed?: { readonly model: SpeedResult[]; readonly reference?: SpeedResult[] };
  readonly gates: readonly GateResult[];
  readonly passed: boolean;
  readonly peakRssBytes: number;
  readonly environment: Record<string, string>;
  /** Under --runtime browser: what the browser offered (adapter, features, isolation) and its console. */
  readonly browser?: BrowserReport;
}

function info(r: Runner): RunnerInfo {
  return { path: r.label, kind: r.kind, provider: r.provider, device: r.device, loadMs: r.loadMs, fallbacks: r.fallbacks, warnings: r.warnings };
}

export async function validate(modelPath: string, options: ValidateOptions): Promise<ValidateReport> {
  const gates = options.gates ?? {};
  if ((gates.minAgreement !== undefined || gates.minCosine !== undefined || gates.maxDrop !== undefined || gates.minSpeedup !== undefined) && !options.reference) {
    throw new InputError('--max-drop, --min-agreement, --min-cosine and --min-speedup compare against a reference: give --reference');
  }
  if ((gates.maxLatencyMs !== undefined || gates.minSpeedup !== undefined) && options.batches?.length === 0) {
    throw new InputError('--max-latency-ms and --min-speedup need timing: give batch sizes with --batch');
  }
  if ((gates.maxDrop !== undefined || gates.minAgreement !== undefined || gates.minCosine !== undefined) && !options.data) {
    throw new InputError('accuracy gates need images: give --data');
  }
  options.onStep?.('load');
  const page = options.runtime === 'browser' ? await (await import('../runtime/browser/chromium.js')).openBrowser({ browser: options.browser }) : undefined;
  try {
    return await validateOn(page, modelPath, options, gates);
  } finally {
    await page?.close();
  }
}

async function validateOn(page: BrowserSession | undefined, modelPath: string, options: ValidateOptions, gates: Gates): Promise<ValidateReport> {
  const open = (p: string, ep: ProviderChoice | WebProvider) => openModel(p, { ep, tfjsBackend: options.tfjsBackend, imageSize: options.imageSize, stateDictKey: options.stateDictKey, page });
  const model = await open(modelPath, options.ep ?? 'auto');
  let reference: Runner | undefined;
  try {
    // unless told otherwise, the reference runs on the provider the model got (under --ep auto an
    // int8 model takes the CPU), so that speed-ups compare like with like
    const followModel = (options.ep ?? 'auto') === 'auto' && model.kind === 'onnx' ? (model.provider.replace(/^ort-web-/, '') as ProviderChoice | WebProvider) : undefined;
    if (options.reference) reference = await open(options.reference, options.referenceEp ?? followModel ?? options.ep ?? 'auto');
    let out: Measured = { model: info(model), reference: reference && info(reference) };
    if (options.data) out = { ...out, ...(await measureAccuracy(model, reference, options)) };
    const batches = options.batches ?? [1, 8, 32];
    if (batches.length) {
      options.onStep?.('speed');
      const shape = inputShape(model);
      const [m, r] = await measureSpeed(reference ? [model, reference] : [model], shape, { batches });
      out = { ...out, speed: { model: m, reference: r } };
    }
    const results = checkGates(out, gates);
    return {
      ...out,
      gates: results,
      passed: results.every((g) => g.passed),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      environment: environment(model),
      browser: model.browser?.(),
    };
  } finally {
    await model.release();
    await reference?.release();
  }
}

function inputShape(r: Runner): number[] {
  // a dynamic-size model is timed at the size its preprocessing crops to
  const crop = recordedCrop(r.metadata);
  const dims = r.inputShape.slice(1).map((d, i) => (typeof d === 'number' ? d : i >= 1 && crop ? crop : NaN));
  if (dims.length !== 3 || dims.some((d) => !Number.isFinite(d))) throw new InputError(`cannot time a model whose input shape is [${r.inputShape.join(', ')}]`, r.label);
  return dims;
}

function graphLike(r: Runner): Graph {
  return { name: '', inputs: [{ name: 'x', dtype: 'float32', shape: r.inputShape }], outputs: [], nodes: [], initializers: new Map(), opsets: {}, metadata: r.metadata };
}

async function measureAccuracy(model: Runner, reference: Runner | undefined, options: ValidateOptions) {
  const classNames = labelsOf(model.metadata);
  const preprocessing = preprocessingOf(graphLike(model), options);
  const data = openDataset(options.data!, { preprocessing, classNames, labelsFile: options.labels, limit: options.limit });
  checkDataFits(data, model.inputShape, data.source);
  if (options.gates?.maxDrop !== undefined && !data.labelled) throw new InputError('--max-drop needs labelled images (labels.txt, a CSV or class folders)', data.source);
  options.onStep?.('accuracy');
  const runners = reference ? [model, reference] : [model];
  const { logits: joined, classes, labels } = await predict(
    runners.map((r) => (input: Tensor) => r.run(input)),
    data,
    { batchSize: options.batchSize, onProgress: (done, total) => options.onProgress?.('validate', done, total) },
  );
  const acc = data.labelled ? { model: accuracy(joined[0], classes, labels), reference: reference ? accuracy(joined[1], classes, labels) : undefined } : undefined;
  return {
    data: { source: data.source, images: data.size, labelled: data.labelled, classNames },
    accuracy: acc,
    agreement: reference ? agreement(joined[0], joined[1], classes) : undefined,
    errorHistogram: reference ? histogram(joined[0], joined[1]) : undefined,
  };
}

function histogram(a: Float32Array, b: Float32Array, bins = 30): { edges: number[]; counts: number[] } {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  const width = max / bins || 1;
  const counts = new Array(bins).fill(0);
  for (let i = 0; i < a.length; i++) counts[Math.min(bins - 1, Math.floor(Math.abs(a[i] - b[i]) / width))]++;
  return { edges: Array.from({ length: bins + 1 }, (_, i) => i * width), counts };
}

type Measured = Omit<ValidateReport, 'gates' | 'passed' | 'peakRssBytes' | 'environment'>;

function checkGates(r: Measured, g: Gates): GateResult[] {
  const out: GateResult[] = [];
  const acc = r.accuracy;
  if (g.maxDrop !== undefined) {
    const drop = acc && acc.reference ? acc.reference.top1 - acc.model.top1 : NaN;
    out.push({ name: 'max-drop', limit: g.maxDrop, value: drop, passed: drop <= g.maxDrop, detail: `top-1 ${acc?.model.top1.toFixed(2)} % vs reference ${acc?.reference?.top1.toFixed(2)} %: drop ${drop.toFixed(2)} points` });
  }
  if (g.minAgreement !== undefined) {
    const v = r.agreement?.top1Agreement ?? NaN;
    out.push({ name: 'min-agreement', limit: g.minAgreement, value: v, passed: v >= g.minAgreement, detail: `top-1 agreement ${v.toFixed(2)} %` });
  }
  if (g.minCosine !== undefined) {
    const v = r.agreement?.meanCosine ?? NaN;
    out.push({ name: 'min-cosine', limit: g.minCosine, value: v, passed: v >= g.minCosine, detail: `mean cosine similarity ${v.toFixed(6)}` });
  }
  if (g.maxLatencyMs !== undefined) {
    const first = r.speed?.model[0];
    const v = first?.medianMs ?? NaN;
    out.push({ name: 'max-latency-ms', limit: g.maxLatencyMs, value: v, passed: v <= g.maxLatencyMs, detail: `median ${v.toFixed(2)} ms at batch ${first?.batch} on ${r.model.provider}` });
  }
  if (g.minSpeedup !== undefined) {
    const ratios = (r.speed?.model ?? []).map((m, i) => ({ batch: m.batch, x: (r.speed?.reference?.[i]?.medianMs ?? NaN) / m.medianMs }));
    const worst = ratios.reduce((a, b) => (b.x < a.x ? b : a), { batch: 0, x: Infinity });
    const v = ratios.length ? worst.x : NaN;
    out.push({ name: 'min-speedup', limit: g.minSpeedup, value: v, passed: v >= g.minSpeedup, detail: `speed-up ${ratios.map((q) => `${q.x.toFixed(2)}× at batch ${q.batch}`).join(', ')}` });
  }
  return out;
}

function environment(model: Runner): Record<string, string> {
  const browser = model.browser?.();
  return {
    tool: `convnext-toolchain ${TOOL_VERSION}`,
    node: process.version,
    ...(browser ? { browser: `Chromium ${browser.version}` } : { onnxruntime: ort.env.versions.node ?? '' }),
    platform: `${platform()} ${release()} ${arch()}`,
    device: model.device,
    provider: model.provider,
  };
}

/** Every file a validate run with these options reads: what its report files must not overwrite. */
export function filesValidated(modelPath: string, options: Pick<ValidateOptions, 'reference' | 'data' | 'labels'>): RolePath[] {
  return [
    ...filesRead(modelPath, 'the model'),
    ...(options.reference ? filesRead(options.reference, 'the reference model') : []),
    ...(options.data ? filesRead(options.data, 'the data set') : []),
    ...(options.labels ? filesRead(options.labels, 'the labels file') : []),
  ];
}
