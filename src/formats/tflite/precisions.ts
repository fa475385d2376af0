// The TFLite weight precisions, in a module of their own: the CLI lists them in its flags without
// loading the writer (and flatbuffers) at start-up.

/** How conv and fully connected weights are stored; every other constant stays float32 or int32. */
export type TfliteWeights = 'float32' | 'float16' | 'int8';
export const TFLITE_WEIGHTS: readonly TfliteWeights[] = ['float32', 'float16', 'int8'];
