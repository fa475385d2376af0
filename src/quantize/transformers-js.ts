// A transformers.js model folder from a checkpoint or ONNX model: one float graph, each dtype asked
// for made from it the way `quantize` makes that mode, each measured in onnxruntime-node (latency,
// and top-1 against fp32 on images when there are any), all written as one folder
// (formats/transformers-js/).

import * as ort from 'onnxruntime-node';
import { checkDataFits, openDataset, type Dataset } from '../data/images.js';
import { InputError, Warnings } from '../errors.js';
import { filesRead } from '../formats/files.js';
import { checkDtypes, checkTransformersJsFolder, preprocessorConfig, withTransformersJsNames, writeTransformersJsFolder, type Measurement, type TjsDtype, type TransformersJsModel } from '../formats/transformers-js/index.js';
import type { Graph } from '../graph/graph.js';
import { labelsOf, metadataJson, preprocessingOf } from '../model/metadata.js';
import { prepareModel, type CheckpointSummary, type PrepareOptions } from '../model/prepare.js';
import { Steps } from '../model/steps.js';
import { checkModelOutput } from '../model/write.js';
import { cpuName } from '../runtime/device.js';
import { accuracy, agreement } from '../runtime/metrics.js';
import { createGraphSession, runFloat } from '../runtime/onnxruntime.js';
import { predict } from '../runtime/predict.js';
import { probeInput } from '../runtime/probe.js';
import type { BudgetOptions } from './budget.js';
import { inIntLayout, intLayout, quantizeFloat, type QuantizeOptions } from './index.js';
import type { Int8Recipe } from './int8.js';

export interface TransformersJsOptions extends PrepareOptions, Int8Recipe, BudgetOptions {
  /** transformers.js dtypes to write (fp32 among them); default fp32. */
  readonly dtypes?: readonly string[];
  /** fp16: op types kept float32 (default LayerNormalization). */
  readonly fp32Ops?: readonly string[];
  /** q4, q4f16: weights per 4-bit block (default 32). */
  readonly blockSize?: number;
  /** Images the model card's accuracy is measured on (default: the calibration images, if any). */
  readonly data?: string;
  /** Labels for `data`. */
  readonly labels?: string;
  /** Write into a folder that holds files. */
  readonly force?: boolean;
  readonly onStep?: (step: string) => void;
}

export interface TransformersJsResult {
  readonly output: string;
  readonly dtypes: readonly TjsDtype[];
  readonly files: readonly string[];
  readonly bytesWritten: number;
  readonly measurements: readonly Measurement[];
  readonly checkpoint?: CheckpointSummary;
  readonly timings: Record<string, number>;
  readonly warnings: readonly string[];
}

// the quantize mode that makes each dtype's model (formats/transformers-js DTYPES says what it holds)
const MODE = { fp16: 'fp16', q8: 'int8-weights', int8: 'int8', q4: 'int4-weights', q4f16: 'int4-weights' } as const;
const LATENCY_RUNS = 20;

export async function exportTransformersJs(input: string, dir: string, options: TransformersJsOptions): Promise<TransformersJsResult> {
  const warnings = new Warnings();
  const steps = new Steps(options.onStep);
  const dtypes = checkDtypes(options.dtypes ?? ['fp32']);
  if (dtypes.includes('int8') && !options.calib) throw new InputError('the int8 model needs calibration images: give --calib DIR (convnext quantize)');
  if (options.outputs !== undefined && options.outputs !== 'logits') throw new InputError(`--outputs ${options.outputs}: a transformers.js image classifier returns logits`);
  const data = options.data ?? options.calib;
  const reads = [
    ...filesRead(input, 'the input model'),
    ...(options.calib ? filesRead(options.calib, 'the calibration images') : []),
    ...(options.data ? filesRead(options.data, 'the measurement data') : []),
    ...(options.labels ? filesRead(options.labels, 'the labels file') : []),
    ...(options.labelsFile ? filesRead(options.labelsFile, 'the class names file') : []),
  ];
  checkModelOutput(dir, 'transformers.js', reads);
  checkTransformersJsFolder(dir, options.force ?? false);
  const prepared = await prepareModel(input, { ...options, format: 'onnx' }, steps, warnings);
  if (metadataJson(prepared.graph.metadata, 'quantization')) throw new InputError('the model is quantized already: give its float model or the checkpoint', input);
  const float = withTransformersJsNames(prepared.graph);
  const preprocessing = preprocessingOf(float, {});
  const processor = preprocessorConfig(preprocessing, warnings);
  const classes = float.outputs[0].shape[1] as number;
  const recorded = labelsOf(float.metadata);
  // Hugging Face's names for classes nobody named
  const labels = recorded?.length === classes ? recorded : Array.from({ length: classes }, (_, i) => `LABEL_${i}`);
  if (labels !== recorded) warnings.add(`the model records no class names for its ${classes} classes: transformers.js will say LABEL_0…; give --labels FILE`);
  // opened before any quantizing, so a bad data set or labels file is refused at once
  const set = data ? openDataset(data, { preprocessing, classNames: labels, labelsFile: options.labels }) : undefined;
  if (set) checkDataFits(set, float.inputs[0].shape, set.source);

  const models: TransformersJsModel[] = [];
  const made: Record<string, string> = {};
  let intFloat: Graph | undefined;
  for (const dtype of dtypes) {
    if (dtype === 'fp32') {
      models.push({ dtype, graph: float });
      continue;
    }
    const to = MODE[dtype];
    // transformers.js feeds float32 pixel_values and reads float32 logits whatever the dtype
    const how: QuantizeOptions = to === 'fp16' || dtype === 'q4f16' ? { ...options, to, keepIoTypes: true, float16: dtype === 'q4f16' } : { ...options, to };
    const base = inIntLayout(to, options) ? (intFloat ??= await intLayout(float, options, false)) : float;
    const q = await quantizeFloat(base, how, steps, warnings);
    models.push({ dtype, graph: q.graph });
    if (q.method) made[dtype] = `${q.method} calibration on ${q.calibration.calibrationImages} images${q.calibration.equalization ? `, channel equalization ${q.calibration.equalization}` : ''}`;
    if (q.keptFloat.length) made[dtype] = `${made[dtype] ? `${made[dtype]}; ` : ''}${q.keptFloat.length} layers kept float for the accuracy budget`;
  }
  const measurements = await steps.run('measure', () => measure(models, set, options));
  const source = metadataJson<{ file?: string; format?: string; layout?: string; variant?: string; version?: number; depths?: number[]; widths?: number[] }>(float.metadata, 'source') ?? {};
  const written = await steps.run('write', () =>
    writeTransformersJsFolder(dir, {
      models,
      preprocessing,
      processor,
      labels,
      measurements,
      card: {
        title: `ConvNeXt${source.version === 2 ? ' V2' : ''} ${source.variant ?? ''} image classifier for transformers.js`.replace(/ +/g, ' '),
        modelType: source.version === 2 ? 'convnextv2' : 'convnext',
        about: [
          ...(source.depths ? [`depths ${source.depths.join(', ')}, widths ${source.widths?.join(', ')}`] : []),
          `${classes} classes: ${labels.slice(0, 10).join(', ')}${labels.length > 10 ? ', …' : ''}`,
          `input \`pixel_values\` float32 [batch, 3, ${preprocessing.crop}, ${preprocessing.crop}], output \`logits\` [batch, ${classes}]`,
          ...(prepared.checkpoint ? [`${(prepared.checkpoint.parameters / 1e6).toFixed(2)} M parameters`] : []),
        ],
        provenance: [
          `from \`${source.file ?? input.split('/').pop()}\`${source.format ? ` (${source.format}, ${source.layout} layout)` : ''}`,
          `converted by ${float.metadata.converter}; ONNX opset ${float.opsets[''] ?? '?'}`,
        ],
        made,
      },
    }),
  );
  return { output: dir, dtypes, files: written.files, bytesWritten: written.bytes, measurements, checkpoint: prepared.checkpoint, timings: steps.timings, warnings: warnings.items };
}

/** Each model in onnxruntime-node on the CPU: median latency of one image, and top-1 on `data` if given. */
async function measure(models: readonly TransformersJsModel[], set: Dataset | undefined, options: TransformersJsOptions): Promise<Measurement[]> {
  const runtime = `onnxruntime-node ${ort.env.versions.node} (cpu)`;
  const device = cpuName();
  const sessions = await Promise.all(models.map((m) => createGraphSession(m.graph, '')));
  try {
    const probe = probeInput(models[0].graph);
    const latency: number[] = [];
    for (const s of sessions) {
      for (let i = 0; i < 3; i++) await runFloat(s, probe); // warm-up
      const times: number[] = [];
      for (let i = 0; i < LATENCY_RUNS; i++) {
        const start = performance.now();
        await runFloat(s, probe);
        times.push(performance.now() - start);
      }
      latency.push(times.sort((a, b) => a - b)[LATENCY_RUNS >> 1]);
    }
    if (!set) return models.map((m, k) => ({ dtype: m.dtype, runtime, device, latencyMs: latency[k] }));
    const p = await predict(sessions.map((s) => (x) => runFloat(s, x)), set, { batchSize: options.batchSize, onProgress: (d, t) => options.onProgress?.('measure', d, t) });
    const what = `${set.source} (${set.size} images${options.data === undefined ? ', the calibration images' : ''})`;
    return models.map((m, k) => ({
      dtype: m.dtype,
      runtime,
      device,
      data: what,
      images: set.size,
      top1: set.labelled ? accuracy(p.logits[k], p.classes, p.labels).top1 : undefined,
      agreement: agreement(p.logits[k], p.logits[0], p.classes).top1Agreement,
      latencyMs: latency[k],
    }));
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}
