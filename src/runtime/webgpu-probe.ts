// Whether onnxruntime's WebGPU provider finds an adapter on this machine, asked once, in a child
// process. Dawn writes its adapter-probing warnings (multi-line, with C++ source locations) straight
// to file descriptor 2, where no JavaScript can catch them; in a child, that stderr is ours to keep
// out of the user's terminal, and a machine without a GPU never starts Dawn in this process.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnxBytes } from '../formats/onnx.js';
import type { Graph } from '../graph/graph.js';

export type AdapterProbe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

let cached: AdapterProbe | undefined;

const IDENTITY: Graph = {
  name: 'probe',
  inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
  nodes: [{ name: 'id', op: 'Identity', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} }],
  initializers: new Map(),
  opsets: { '': 17 },
  metadata: {},
};

// The child creates a WebGPU session on a one-node model and says why it could not.
const CHILD = `
const ort = require(process.argv[1]);
ort.env.logLevel = 'fatal';
ort.InferenceSession.create(process.argv[2], { executionProviders: ['webgpu'] })
  .then(() => process.exit(0), (e) => { process.stdout.write(String(e && e.message)); process.exit(1); });
`;

export function probeWebgpuAdapter(): AdapterProbe {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'convnext-webgpu-'));
  try {
    const model = join(dir, 'probe.onnx');
    writeFileSync(model, onnxBytes(IDENTITY));
    const ort = createRequire(import.meta.url).resolve('onnxruntime-node');
    const r = spawnSync(process.execPath, ['-e', CHILD, ort, model], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() } });
    cached = r.status === 0 ? { ok: true } : { ok: false, reason: r.stdout || (r.error ? r.error.message : `the probe exited with ${r.status ?? r.signal}`) };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
