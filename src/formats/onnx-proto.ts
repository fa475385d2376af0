// onnx-proto's generated protobuf code, loaded with require(): it is CommonJS, and an ESM import
// makes Node scan its 324 KB for export names first, about 30 ms of CPU at every start that reads
// or writes ONNX. Types come from `import type OnnxProto from 'onnx-proto'` as usual.
import { createRequire } from 'node:module';
import type OnnxProto from 'onnx-proto';

export const onnxProto = createRequire(import.meta.url)('onnx-proto') as typeof OnnxProto;
