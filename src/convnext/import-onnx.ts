// Reading an existing ONNX model (torch.onnx.export, HF Optimum, timm exports) as a Graph for the
// passes. Refuses up front, in one message, what the passes and shape inference cannot reason
// about — an opset outside 13–21, ops outside KNOWN_OPS, other domains — rather than letting a pass
// meet an op it does not know halfway through.

import type OnnxProto from 'onnx-proto';
import { onnxProto } from '../formats/onnx-proto.js';
import { InputError, UnsupportedError } from '../errors.js';
import { externalDataReader } from '../formats/external-data.js';
import { decodeOnnx } from '../formats/onnx.js';
import { readInputFileSync } from '../formats/sniff.js';
import { checkGraph, topologicalOrder, type Graph } from '../graph/graph.js';
import { attributeProblem, KNOWN_OPS } from '../graph/ops.js';
import { expandMatMulIntegerToFloat } from '../passes/matmul-integer-to-float.js';
import { expandMatMulNBits } from '../passes/matmul-nbits.js';

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

export function loadOnnxModel(path: string): Graph {
  // the shared reader: a missing file, a folder, a FIFO, a link loop or an unreadable file is an InputError
  const bytes = readInputFileSync(path);
  let graph: Graph;
  try {
    graph = decodeOnnx(bytes, { source: path, readExternal: externalDataReader(path) });
  } catch (e) {
    // A control-flow op (If, Loop, Scan) carries a subgraph attribute the decoder refuses; name the
    // ops instead of the attribute type, which is what the user can act on.
    if (e instanceof UnsupportedError && e.kind === 'onnx-attribute') {
      const ops = opsOf(bytes).filter((op) => !isKnown(op.domain, op.op));
      if (ops.length) throw unsupportedOps(ops, path);
    }
    throw e;
  }
  const opset = graph.opsets[''] ?? graph.opsets['ai.onnx'];
  if (opset === undefined) throw new UnsupportedError('the model imports no default-domain (ai.onnx) opset', path, 'onnx-opset');
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new UnsupportedError(`ONNX opset ${opset} is not supported (opsets ${MIN_OPSET}–${MAX_OPSET} are); re-export the model with opset_version between them`, path, 'onnx-opset');
  }
  // our own int8 and int4 models hold onnxruntime's MatMulIntegerToFloat and MatMulNBits: read back
  // as the standard QDQ ops, and as MatMuls of the weights the 4-bit codes stand for
  graph = expandMatMulNBits(expandMatMulIntegerToFloat(graph));
  const unknown = graph.nodes.filter((n) => !isKnown(n.domain, n.op));
  if (unknown.length) throw unsupportedOps(unknown, path);
  // a pass reads attributes as the ONNX spec types them: a wrong kind is the file's fault, said here
  for (const n of graph.nodes) {
    const problem = attributeProblem(n);
    if (problem) throw new InputError(problem, path);
  }
  const problems = checkGraph(graph);
  if (problems.length) throw new InputError(`the ONNX graph is malformed: ${problems.slice(0, 3).join('; ')}`, path);
  return { ...graph, nodes: topologicalOrder(graph) };
}

function isKnown(domain: string, op: string): boolean {
  return (domain === '' || domain === 'ai.onnx') && KNOWN_OPS.has(op);
}

function unsupportedOps(nodes: readonly { domain: string; op: string }[], path: string): UnsupportedError {
  const counts = new Map<string, number>();
  for (const n of nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const list = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([op, n]) => (n > 1 ? `${op} (×${n})` : op));
  return new UnsupportedError(`unsupported ONNX op${counts.size > 1 ? 's' : ''}: ${list.join(', ')}`, path, 'onnx-op');
}

/** Op types of the main graph, read without decoding attributes. */
function opsOf(bytes: Uint8Array): { domain: string; op: string }[] {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  return (model.graph?.node ?? []).map((n) => ({ domain: n.domain ?? '', op: n.opType ?? '' }));
}
