// The TFLite weight precisions, in a module of their own: the CLI lists them in its flags without
// loading the writer (and flatbuffers) at start-up.

/**
 * How conv and fully connected weights are stored; every other constant stays float32 or int32.
 * 'int8' is DEQUANTIZE'd to float32 in the graph; 'int8-hybrid' goes into the layer as it is, for
 * LiteRT's hybrid (dynamic-range) kernels, which quantize the float input on the fly.
 */
export type TfliteWeights = 'float32' | 'float16' | 'int8' | 'int8-hybrid';
export const TFLITE_WEIGHTS: readonly TfliteWeights[] = ['float32', 'float16', 'int8', 'int8-hybrid'];
