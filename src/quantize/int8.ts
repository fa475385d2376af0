// The int8 recipe: calibrate activation ranges on real images (histograms, bounded memory), and use
// SmoothQuant-style channel equalization where it lowers the error against fp32. What it returns
// makes the quantized graph for any set of layers kept float, for the accuracy budget to choose.

import { checkDataFits, decodedOnce, openDataset, type Dataset } from '../data/images.js';
import { InputError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import type { Steps } from '../model/steps.js';
import { equalizablePairs, equalizeChannels } from '../passes/equalize.js';
import { activationsToCalibrate, QUANTIZABLE_OPS, quantizeStatic } from '../passes/quantize-int8.js';
import { limited, meanSquaredError, predictFloat, type EvaluationOptions } from './budget.js';
import { calibrate, ChannelAbsMax, observeActivations } from './calibrate.js';
import type { CalibrationMethod, Range } from './observer.js';
import { tfliteInt8Values, type TfliteIo } from '../formats/tflite/index.js';
import type { Preprocessing } from '../data/preprocessing.js';
import { DEFAULT_INT8_TARGET, INT8_TARGETS, weightsReduced, type Int8Target } from './targets.js';

export interface Int8Recipe extends EvaluationOptions {
  /** Calibration images (folder or .npy). */
  readonly calib?: string;
  readonly calibSize?: number;
  readonly method?: CalibrationMethod;
  readonly percentile?: number;
  readonly opTypes?: readonly string[];
  readonly exclude?: readonly string[];
  /**
   * 7-bit weights (default): exact on x86 CPUs without VNNI, where onnxruntime's u8×s8 kernels
   * saturate 16-bit sums with full-range weights. false for VNNI, ARM and GPU targets.
   */
  readonly reduceRange?: boolean;
  /** The runtime the int8 form is made for (see INT8_TARGETS); default cpu-avx2, which is exact on any x86 CPU. */
  readonly target?: Int8Target;
  /** Quantize the layer that reads the image too (by default it stays float). */
  readonly quantizeInputLayer?: boolean;
  /** SmoothQuant-style LayerNorm→pointwise channel equalization: 'auto' uses it when it lowers the error. */
  readonly equalize?: 'auto' | 'on' | 'off';
}

export interface CalibratedInt8 {
  readonly makeQuantized: (exclude: readonly string[]) => Graph;
  readonly calibrationImages: number;
  /** Whether channel equalization was used, and why; undefined when the graph has nothing to equalize. */
  readonly equalization?: string;
}

/** Decoded calibration images are kept for the later passes over them up to this size. */
const DECODED_CALIBRATION_LIMIT = 256 * 2 ** 20;

type ImageOptions = { preprocessing: Preprocessing; classNames?: readonly string[] };

function openCalibration(float: Graph, options: Int8Recipe, data: ImageOptions): Dataset {
  if (!options.calib) throw new InputError('int8 needs calibration images: give --calib DIR');
  const opened = openDataset(options.calib, { ...data, limit: options.calibSize });
  checkDataFits(opened, float.inputs[0].shape, options.calib);
  // calibration, channel ranges, the equalized calibration and the comparison all read the same
  // images: decode them once where they fit in memory
  return decodedOnce(opened, DECODED_CALIBRATION_LIMIT);
}

/**
 * Full-integer TFLite: ranges of the values around the layers that run int8 there
 * (formats/tflite tfliteInt8Values), from the same histogram calibration on the float graph.
 */
export async function calibrateTfliteInt8(float: Graph, options: Int8Recipe & { readonly io?: TfliteIo }, data: ImageOptions, steps: Steps): Promise<{ ranges: Map<string, Range>; calibrationImages: number }> {
  const calib = openCalibration(float, options, data);
  const values = tfliteInt8Values(float, { quantizeInputLayer: options.quantizeInputLayer, io: options.io, exclude: options.exclude });
  if (values.length === 0) throw new InputError('no layer of this model can run int8 in TFLite (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED on constant weights)');
  const ranges = await steps.run('calibrate', () =>
    calibrate(float, values, calib, { method: options.method ?? 'percentile', percentile: options.percentile, batchSize: options.batchSize, onProgress: (d, t) => options.onProgress?.('calibrate', d, t) }),
  );
  return { ranges, calibrationImages: calib.size };
}

export async function calibrateInt8(float: Graph, options: Int8Recipe, data: ImageOptions, steps: Steps): Promise<CalibratedInt8> {
  const calib = openCalibration(float, options, data);
  // The layer that reads the image stays float by default: it is a sliver of the compute, and its
  // uint8 input costs agreement (Fashion model, 10,000 test images: 99.47 % → 99.57 %).
  const inputLayers = options.quantizeInputLayer ? [] : float.nodes.filter((n) => n.inputs[0] === float.inputs[0].name).map((n) => n.name);
  const webgpu = INT8_TARGETS[options.target ?? DEFAULT_INT8_TARGET].form === 'webgpu';
  const intOptions = {
    opTypes: [...(options.opTypes ?? QUANTIZABLE_OPS)],
    exclude: [...(options.exclude ?? []), ...inputLayers],
    reduceRange: weightsReduced(options),
    activationType: webgpu ? ('int8' as const) : ('uint8' as const),
    vectorActivationScales: webgpu,
  };
  const values = activationsToCalibrate(float, intOptions);
  if (values.length === 0) throw new InputError('no layer is left to quantize (the --exclude patterns, --op-types and the input layer, which stays float unless --quantize-input-layer, take them all)');
  const onProgress = (what: string) => (d: number, t: number) => options.onProgress?.(what, d, t);
  const calibrated = async (g: Graph, what: string) => {
    const ranges = await calibrate(g, values, calib, { method: options.method ?? 'percentile', percentile: options.percentile, batchSize: options.batchSize, onProgress: onProgress(what) });
    return (exclude: readonly string[]) => quantizeStatic(g, ranges, { ...intOptions, exclude: [...intOptions.exclude, ...exclude] });
  };
  const plain = await steps.run('calibrate', () => calibrated(float, 'calibrate'));
  const equalize = options.equalize ?? 'auto';
  if (equalize === 'off' || equalizablePairs(float).size === 0) return { makeQuantized: plain, calibrationImages: calib.size };
  const equalizedGraph = await steps.run('equalize', async () => {
    const pairs = equalizablePairs(float);
    const stats = new Map([...pairs].map(([v, { linear }]) => [v, new ChannelAbsMax(linear.inChannels)]));
    await observeActivations(float, stats, calib, { batchSize: options.batchSize, onProgress: onProgress('channel ranges') });
    return equalizeChannels(float, new Map([...stats].map(([v, o]) => [v, o.absmax])));
  });
  const equalized = await steps.run('calibrate', () => calibrated(equalizedGraph, 'calibrate equalized'));
  if (equalize === 'on') return { makeQuantized: equalized, calibrationImages: calib.size, equalization: 'on' };
  // on when it helps: the smaller logit error against fp32 on the calibration images decides
  const [reference, a, b] = await steps.run('compare', async () =>
    Promise.all([float, plain([]), equalized([])].map((g) => predictFloat(g, limited(calib, 128), options, 'compare'))),
  );
  const better = meanSquaredError(b.logits, reference.logits) < meanSquaredError(a.logits, reference.logits);
  return { makeQuantized: better ? equalized : plain, calibrationImages: calib.size, equalization: better ? 'on (helped)' : 'off (did not help)' };
}
