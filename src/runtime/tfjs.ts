// Running TF.js graph models in Node with @tensorflow/tfjs-core's cpu or wasm backend (both install
// from npm with nothing to download). Loaded lazily: only validate and the tests need them.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type GraphModel = import('@tensorflow/tfjs-converter').GraphModel;

export type TfjsBackend = 'cpu' | 'wasm';

let loaded: { tf: Tf; loadGraphModel: typeof import('@tensorflow/tfjs-converter').loadGraphModel } | undefined;

/** tfjs-core with the cpu and wasm backends registered, the wasm binaries found in node_modules. */
export async function tfjs(): Promise<NonNullable<typeof loaded>> {
  if (loaded) return loaded;
  try {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`);
    tf.env().set('IS_TEST', true); // silences the "use tfjs-node" banner
    loaded = { tf, loadGraphModel };
    return loaded;
  } catch (e) {
    throw new InputError(`TF.js models need @tensorflow/tfjs-core, -converter, -backend-cpu and -backend-wasm installed (${(e as Error).message})`);
  }
}

/** An IO handler that reads model.json and the shards it names from a folder. */
export function folderHandler(tf: Tf, folder: string): import('@tensorflow/tfjs-core').io.IOHandler {
  return {
    load: async () => {
      const modelJson = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8'));
      return tf.io.getModelArtifactsForJSON(modelJson, async (weightsManifest) => {
        const specs = weightsManifest.flatMap((g) => g.weights);
        const bytes = Buffer.concat(weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(folder, p)))));
        return [specs, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)];
      });
    },
  };
}

export interface LoadedTfjsModel {
  readonly model: GraphModel;
  readonly metadata: Record<string, unknown>;
  /** Runs NCHW input (fed as NHWC); returns the first output. */
  run(input: { data: Float32Array; shape: readonly number[] }): Promise<{ data: Float32Array; dims: number[] }>;
  dispose(): void;
}

export async function loadTfjsModel(folder: string, backend: TfjsBackend): Promise<LoadedTfjsModel> {
  const { tf, loadGraphModel } = await tfjs();
  await tf.setBackend(backend);
  await tf.ready();
  const model = await loadGraphModel(folderHandler(tf, folder));
  const metadata = (model.metadata ?? {}) as Record<string, unknown>;
  return {
    model,
    metadata,
    async run(input) {
      const y = tf.tidy(() => {
        const x = tf.tensor(input.data, [...input.shape]);
        const fed = input.shape.length === 4 ? tf.transpose(x, [0, 2, 3, 1]) : x;
        let out = model.predict(fed) as import('@tensorflow/tfjs-core').Tensor;
        if (out.rank === 4) out = tf.transpose(out, [0, 3, 1, 2]);
        return out;
      });
      const data = (await y.data()) as Float32Array;
      const dims = y.shape;
      y.dispose();
      return { data, dims };
    },
    dispose: () => model.dispose(),
  };
}
