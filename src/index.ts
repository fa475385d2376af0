// The library API: the same verbs as the command line, as typed functions.
export { convert, type ConvertOptions, type ConvertResult } from './convert.js';
export { inspect, type CheckpointInfo, type OnnxInfo } from './inspect.js';
export { loadCheckpoint, type LoadedCheckpoint } from './convnext/load.js';
export { buildConvNextGraph } from './convnext/build.js';
export { importConvNext } from './convnext/import.js';
export type { ConvNextModel, ConvNextSpec } from './convnext/spec.js';
export type { Graph, Node, ValueInfo } from './graph/graph.js';
export type { Tensor, DType } from './graph/tensor.js';
export { InputError, UnsupportedError } from './errors.js';
export { TOOL_VERSION } from './version.js';
export { quantize, type QuantizeOptions, type QuantizeResult } from './quantize/index.js';
export { validate, type ValidateOptions, type ValidateReport } from './validate/index.js';
export { encodeTfjs, writeTfjsModel, tfjsOpCounts, WEIGHT_FORMATS } from './formats/tfjs/index.js';
export { selectPasses, runPipeline, PASSES } from './passes/pipeline.js';
