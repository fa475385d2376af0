// Running ONNX models with onnxruntime-node. Sessions are created from bytes or a path; the
// execution provider is explicit so that a report can always say what actually ran.

import * as ort from 'onnxruntime-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFilesAtomic } from '../formats/files.js';
import { encodeOnnx, EXTERNAL_DATA_THRESHOLD, initializerBytes, onnxBytes } from '../formats/onnx.js';
import type { Graph } from '../graph/graph.js';
import type { Tensor } from '../graph/tensor.js';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface SessionOptions {
  readonly provider?: ExecutionProvider;
  /** onnxruntime graph optimisation level; 'all' by default. */
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  readonly intraOpThreads?: number;
  /**
   * Let idle pool threads spin for work (onnxruntime's default; lowest latency for one session).
   * Off when several sessions are timed side by side, or their spinning pools steal each other's cores.
   */
  readonly spinning?: boolean;
}

export async function createSession(model: Uint8Array | string, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [options.provider ?? 'cpu'],
    graphOptimizationLevel: options.optimization ?? 'all',
  };
  if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads;
  if (options.spinning === false) sessionOptions.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, sessionOptions)
    : ort.InferenceSession.create(model, sessionOptions);
}

/** Runs a float32 input through the session's first input and returns its first output. */
export async function runFloat(session: ort.InferenceSession, input: Tensor): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const feed = { [session.inputNames[0]]: new ort.Tensor('float32', input.data as Float32Array, [...input.shape]) };
  const out = await session.run(feed);
  const t = out[session.outputNames[0]];
  return { data: t.data as Float32Array, dims: t.dims };
}

/**
 * Hands `use` the graph in a form onnxruntime loads: its bytes, or, past what one protobuf message
 * may hold (2 GiB), the path of a model with external data in a temporary folder, removed after
 * (onnxruntime has read or mapped the weights by then).
 */
export async function withLoadableModel<T>(graph: Graph, producer: string, use: (model: Uint8Array | string) => Promise<T>): Promise<T> {
  if (initializerBytes(graph) <= EXTERNAL_DATA_THRESHOLD) return use(onnxBytes(graph, producer));
  const dir = mkdtempSync(join(tmpdir(), 'convnext-session-'));
  try {
    const path = join(dir, 'model.onnx');
    const encoded = encodeOnnx(graph, { producerVersion: producer, external: { location: 'model.onnx.data', minBytes: 1024 } });
    writeFilesAtomic([{ path, chunks: encoded.model }, ...(encoded.externalData ? [{ path: `${path}.data`, chunks: encoded.externalData }] : [])]);
    return await use(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A session on an in-memory graph, of any size. */
export function createGraphSession(graph: Graph, producer: string, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  return withLoadableModel(graph, producer, (model) => createSession(model, options));
}

/** Serialises a graph and runs it once on `input` (CPU, all optimisations): for tests and --verify. */
export async function runGraph(graph: Graph, input: Tensor, options: SessionOptions = {}): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await createGraphSession(graph, 'probe', options);
  try {
    return await runFloat(session, input);
  } finally {
    await session.release();
  }
}
