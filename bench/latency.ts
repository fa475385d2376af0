// onnxruntime-node CPU latency of two ONNX models measured side by side in one process: warm-up,
// then repeated timed runs per batch size, reporting medians. Models alternate run by run so that
// drift of the machine (thermal, other load) hits both alike; thread spinning is off so that the
// idle session's pool does not steal the cores of the one being timed.
import { createSession } from '../src/runtime/onnxruntime.js';
import * as ort from 'onnxruntime-node';

export interface LatencyResult {
  readonly batch: number;
  readonly medianMs: Record<string, number>;
  readonly runsMs: Record<string, number[]>;
}

export async function compareLatency(models: Record<string, string>, batches: number[], runs: number, imageSize = 224): Promise<LatencyResult[]> {
  const sessions = Object.fromEntries(await Promise.all(Object.entries(models).map(async ([k, path]) => [k, await createSession(path, { spinning: false })] as const)));
  const results: LatencyResult[] = [];
  for (const batch of batches) {
    const data = new Float32Array(batch * 3 * imageSize * imageSize).map((_, i) => Math.sin(i * 0.001));
    const feed = (s: ort.InferenceSession) => ({ [s.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, imageSize, imageSize]) });
    for (const s of Object.values(sessions)) await s.run(feed(s)); // warm-up
    const runsMs: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((k) => [k, [] as number[]]));
    for (let i = 0; i < runs; i++) {
      for (const [k, s] of Object.entries(sessions)) {
        const t0 = performance.now();
        await s.run(feed(s));
        runsMs[k].push(performance.now() - t0);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    results.push({ batch, runsMs, medianMs: Object.fromEntries(Object.entries(runsMs).map(([k, v]) => [k, median(v)])) });
  }
  return results;
}
