// LiteRT.js in Node for the tests: the product's own loader (src/runtime/litert.ts).
export { imageByImage, liteRt, loadTflite, type TfliteModel as TfliteRunner } from '../../src/runtime/litert.js';
