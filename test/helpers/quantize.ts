// Helpers for the precision tests: observe value ranges by running a graph with those values added
// as outputs (a plain min/max calibrator), run a graph whose input may be float16, and list the ops
// onnxruntime actually runs (its optimised model, saved through optimizedModelFilePath).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { encodeOnnx, joinChunks } from '../../src/formats/onnx.js';
import type { Graph } from '../../src/graph/graph.js';
import { inferShapes } from '../../src/graph/shapes.js';
import { floatToHalf, halfToFloat, type Tensor } from '../../src/graph/tensor.js';
import type { Range } from '../../src/passes/quantize-int8.js';

/** What each precision may differ from float32 by, as a share of max |logit| (every runtime's tests use these). */
export const FP16_TOLERANCE = 1e-2;
export const INT8_WEIGHTS_TOLERANCE = 6e-2;
export const INT8_STATIC_TOLERANCE = 0.15;

const modelBytes = (g: Graph) => joinChunks(encodeOnnx(g, { producerVersion: 'test' }).model);

type Level = 'disabled' | 'basic' | 'extended' | 'all';

async function session(g: Graph, level: Level = 'all', optimizedModelFilePath?: string): Promise<ort.InferenceSession> {
  // severity 3: onnxruntime warns on every saved optimised model; errors still surface as exceptions
  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: level, logSeverityLevel: 3 };
  if (optimizedModelFilePath) options.optimizedModelFilePath = optimizedModelFilePath;
  return ort.InferenceSession.create(modelBytes(g), options);
}

/** min and max of each named value over `input` (one batch). */
export async function observeRanges(g: Graph, values: readonly string[], input: Tensor): Promise<Map<string, Range>> {
  const shapes = inferShapes(g);
  const outputs = values.map((name) => {
    const t = shapes.get(name);
    if (!t) throw new Error(`shape inference does not know ${name}`);
    return { name, dtype: t.dtype, shape: t.shape };
  });
  const s = await session({ ...g, outputs: [...g.outputs, ...outputs] });
  try {
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input.data as Float32Array, [...input.shape]) });
    return new Map(values.map((name) => {
      let min = Infinity;
      let max = -Infinity;
      for (const v of out[name].data as Float32Array) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      return [name, { min, max }];
    }));
  } finally {
    await s.release();
  }
}

/**
 * Runs `g` on a float32 input (converted to float16 when the graph's input is float16) and returns
 * the first output as float32. `level` picks onnxruntime's optimisation level: 'disabled' runs each
 * QuantizeLinear/DequantizeLinear as written (the reference semantics), 'all' runs fused kernels.
 */
export async function runAny(g: Graph, input: Tensor, level: Level = 'all'): Promise<Float32Array> {
  const s = await session(g, level);
  try {
    const x = input.data as Float32Array;
    const feed = g.inputs[0].dtype === 'float16'
      ? new ort.Tensor('float16', Uint16Array.from(x, floatToHalf), [...input.shape])
      : new ort.Tensor('float32', x, [...input.shape]);
    const out = (await s.run({ [s.inputNames[0]]: feed }))[s.outputNames[0]];
    return out.type === 'float16' ? Float32Array.from(out.data as Uint16Array, halfToFloat) : (out.data as Float32Array);
  } finally {
    await s.release();
  }
}

/** op type (contrib ops without their domain: QLinearConv, QGemm, …) → how many onnxruntime runs after optimising `g`. */
export async function optimizedOps(g: Graph): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'ort-optimized-'));
  try {
    const path = join(dir, 'model.onnx');
    await (await session(g, 'all', path)).release();
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(path));
    const counts = new Map<string, number>();
    for (const n of model.graph?.node ?? []) {
      const key = n.opType ?? '';
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { modelBytes };
