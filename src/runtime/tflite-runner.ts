// validate's runner for LiteRT (.tflite) models.

import { InputError } from '../errors.js';
import { readInputFileSync } from '../formats/sniff.js';
import { readTfliteSummary } from '../formats/tflite/read.js';
import { concatFloat32, tensor, type Tensor } from '../graph/tensor.js';
import { cpuName } from './device.js';
import { loadTflite } from './litert.js';
import type { Runner } from './runners.js';

/**
 * A LiteRT (.tflite) model in LiteRT.js on the CPU. Its batch is fixed in the file, so a batch of
 * another size runs in pieces of that size, the last one padded.
 */
export async function tfliteRunner(path: string): Promise<Runner> {
  const bytes = readInputFileSync(path);
  const summary = readTfliteSummary(bytes, path);
  const { inputShape: nhwc, metadata } = summary;
  if (nhwc.length !== 4 || nhwc.some((d) => d < 1)) throw new InputError(`validate runs image models with a fixed [batch, H, W, C] input; this one is [${nhwc.join(', ')}]`, path);
  const start = performance.now();
  let model: Awaited<ReturnType<typeof loadTflite>>;
  try {
    model = await loadTflite(bytes, summary);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(e.message, path);
    throw new InputError(`LiteRT cannot load the model (${String((e as Error)?.message ?? e).split('\n')[0]})`, path);
  }
  const loadMs = performance.now() - start;
  const [fixed, h, w, c] = nhwc;
  return {
    label: path,
    kind: 'tflite',
    provider: 'litert-wasm',
    device: cpuName(),
    loadMs,
    fallbacks: [],
    metadata,
    warnings: [],
    inputShape: [fixed, c, h, w],
    async run(input: Tensor) {
      const [n, ...rest] = input.shape;
      const per = rest.reduce((a, b) => a * b, 1);
      const data = input.data as Float32Array;
      const parts: Float32Array[] = [];
      let classes = 0;
      for (let i = 0; i < n; i += fixed) {
        const piece = new Float32Array(fixed * per);
        piece.set(data.subarray(i * per, Math.min(n, i + fixed) * per));
        let y;
        try {
          y = await model.run(tensor('float32', [fixed, ...rest], piece));
        } catch (e) {
          throw new InputError(`LiteRT cannot run the model on input [${[fixed, ...rest].join(', ')}] (${String((e as Error)?.message ?? e).split('\n')[0]})`, path);
        }
        classes = y.data.length / fixed;
        parts.push(y.data.subarray(0, Math.min(fixed, n - i) * classes));
      }
      return { data: concatFloat32(parts), dims: [n, classes] };
    },
    release: async () => model.delete(),
  };
}
