// Running TF.js graph models in Node with @tensorflow/tfjs-core's cpu or wasm backend (both install
// from npm with nothing to download). Loaded lazily: only validate and the tests need them.

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { InputError, isUserError } from '../errors.js';
import { readTfjsFolder, type TfjsFolder } from '../formats/tfjs-folder.js';

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

/** An IO handler over a folder already read and checked by readTfjsFolder. */
function folderHandler(tf: Tf, folder: TfjsFolder): import('@tensorflow/tfjs-core').io.IOHandler {
  return {
    load: async () => tf.io.getModelArtifactsForJSON(folder.modelJson as unknown as import('@tensorflow/tfjs-core').io.ModelJSON, async () => [folder.weightSpecs, folder.weightData]),
  };
}

/**
 * An error from inside TF.js while it loads or runs a model that passed readTfjsFolder's checks:
 * what is left to go wrong is the model itself (an attribute TF.js cannot read, a weight whose shape
 * does not fit its op, an op TF.js does not have), so it is the user's file, named, not our bug.
 */
function modelError(e: unknown, where: string, doing: string): Error {
  if (isUserError(e)) return e;
  const message = (e as Error)?.message ?? String(e);
  // tfjs-converter maps ops at load but reports one it does not know only when a run reaches it
  const op = /^Unknown op '(.*)'\./.exec(message)?.[1];
  if (op !== undefined) return new InputError(`the model uses the op ${JSON.stringify(op)}, which TF.js does not have`, where);
  return new InputError(`TF.js cannot ${doing} this model: ${message.split('\n')[0]}`, where);
}

export interface LoadedTfjsModel {
  readonly model: GraphModel;
  readonly metadata: Record<string, unknown>;
  /** The signature's first input sizes as model.json gives them (NHWC; -1 where unknown). */
  readonly inputDims: readonly number[];
  /** Runs NCHW input (fed as NHWC); returns the first output. */
  run(input: { data: Float32Array; shape: readonly number[] }): Promise<{ data: Float32Array; dims: number[] }>;
  dispose(): void;
}

export async function loadTfjsModel(folder: string, backend: TfjsBackend): Promise<LoadedTfjsModel> {
  // checked before TF.js is even imported, so that a bad folder is refused at once
  const read = await readTfjsFolder(folder);
  const { tf, loadGraphModel } = await tfjs();
  await tf.setBackend(backend);
  await tf.ready();
  const model = await loadGraphModel(folderHandler(tf, read)).catch((e: unknown) => {
    throw modelError(e, read.modelJsonPath, 'load');
  });
  const metadata = (model.metadata ?? {}) as Record<string, unknown>;
  return {
    model,
    metadata,
    inputDims: read.inputDims,
    async run(input) {
      const y = tf.tidy(() => {
        const x = tf.tensor(input.data, [...input.shape]);
        const fed = input.shape.length === 4 ? tf.transpose(x, [0, 2, 3, 1]) : x;
        let out: unknown;
        try {
          out = model.predict(fed);
        } catch (e) {
          throw modelError(e, read.modelJsonPath, 'run');
        }
        // a graph with several outputs gives an array or a map; validate compares one logits tensor
        if (!(out instanceof tf.Tensor)) throw new InputError('the model has more than one output; validate runs models with one', read.modelJsonPath);
        return out.rank === 4 ? tf.transpose(out, [0, 3, 1, 2]) : out;
      });
      const data = (await y.data()) as Float32Array;
      const dims = y.shape;
      y.dispose();
      return { data, dims };
    },
    dispose: () => model.dispose(),
  };
}
