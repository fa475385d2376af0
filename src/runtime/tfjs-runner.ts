import type { Tensor } from '../graph/tensor.js';
import { loadTfjsModel, type TfjsBackend } from './tfjs.js';
import { cpuName } from './device.js';
import type { Runner } from './runners.js';

/** A TF.js graph model folder on the cpu or wasm backend. */
export async function tfjsRunner(folder: string, backend: TfjsBackend): Promise<Runner> {
  const start = performance.now();
  const m = await loadTfjsModel(folder, backend);
  const loadMs = performance.now() - start;
  const { metadata, inputShape } = tfjsDescription(m.metadata, m.inputDims);
  return {
    label: folder,
    kind: 'tfjs',
    provider: `tfjs-${backend}`,
    device: cpuName(),
    loadMs,
    fallbacks: [],
    metadata,
    warnings: [],
    inputShape,
    run: (input: Tensor) => m.run({ data: input.data as Float32Array, shape: input.shape }),
    release: async () => m.dispose(),
  };
}

/**
 * A TF.js model's metadata as strings (as ONNX metadata is) and its input shape reported NCHW like
 * the ONNX models', the batch symbolic, as is any size model.json leaves unknown (-1).
 */
export function tfjsDescription(userMetadata: Record<string, unknown>, nhwc: readonly number[]): { metadata: Record<string, string>; inputShape: (number | string)[] } {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(userMetadata)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  const inputShape = nhwc.length === 4 ? ['batch', ...[nhwc[3], nhwc[1], nhwc[2]].map((d, i) => (d >= 0 ? d : ['channels', 'height', 'width'][i]))] : [];
  return { metadata, inputShape };
}
