// LiteRT.js in Node for the tests: the product's own loader (src/runtime/litert.ts).
import { readFileSync } from 'node:fs';
import { loadTflite, type TfliteModel } from '../../src/runtime/litert.js';

export { imageByImage, liteRt, loadTflite, type TfliteModel as TfliteRunner } from '../../src/runtime/litert.js';

/** Loads a .tflite file, runs it once on `input`, and frees the model. */
export async function runTfliteFile(path: string, input: Parameters<TfliteModel['run']>[0]): ReturnType<TfliteModel['run']> {
  const model = await loadTflite(readFileSync(path));
  try {
    return await model.run(input);
  } finally {
    model.delete();
  }
}
