// LiteRT.js in Node for the tests: the product's own loader (src/runtime/litert.ts).
import { tensor, type Tensor } from '../../src/graph/tensor.js';
export { liteRt, loadTflite, type TfliteModel as TfliteRunner } from '../../src/runtime/litert.js';

/**
 * A predict() runner over a .tflite model whose batch is 1: the batch's images run one by one.
 */
export function imageByImage(model: import('../../src/runtime/litert.js').TfliteModel) {
  return async (input: Tensor) => {
    const [n, ...rest] = input.shape;
    const per = rest.reduce((a, b) => a * b, 1);
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i++) out.push((await model.run(tensor('float32', [1, ...rest], (input.data as Float32Array).subarray(i * per, (i + 1) * per)))).data);
    return { data: Float32Array.from(out.flatMap((o) => [...o])), dims: [n, out[0].length] };
  };
}
