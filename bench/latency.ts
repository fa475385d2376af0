// onnxruntime-node CPU latency of ONNX models compared side by side, in one process: each model
// has the process to itself while it runs (its session is made for a block of runs and released
// after, with onnxruntime's default options, as a deployment runs one model), and the models take
// turns block by block, so that drift of the machine (thermal, other load) hits every model alike.
// Medians over all blocks' timed runs.
// Sessions alive side by side do not do: with thread spinning on, the idle session's pool takes the
// cores of the one being timed; with it off, every op pays the wake-up of the pool, which costs a
// graph of many small ops (int8: 214 kernels) far more than one of few large ones (ConvNeXt-T at
// batch 1: int8 29 ms with spinning, 45–59 ms without; fp32 59–75 ms either way). Separate
// processes do not do either: on this shared machine one process ran 1.7× slower than the next.
import * as ort from 'onnxruntime-node';
export interface LatencyResult {
  readonly batch: number;
  readonly medianMs: Record<string, number>;
  readonly runsMs: Record<string, number[]>;
}

/** Timed runs per block: short blocks, many turns, as the machine's speed drifts within seconds. */
const BLOCK_RUNS = 3;

export async function compareLatency(models: Record<string, string>, batches: number[], runs: number, imageSize = 224): Promise<LatencyResult[]> {
  const results: LatencyResult[] = [];
  for (const batch of batches) {
    const runsMs: Record<string, number[]> = Object.fromEntries(Object.keys(models).map((k) => [k, [] as number[]]));
    for (let done = 0; done < runs; done += BLOCK_RUNS) {
      const n = Math.min(BLOCK_RUNS, runs - done);
      for (const [k, path] of Object.entries(models)) runsMs[k].push(...(await timeBlock(path, batch, n, imageSize)));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    results.push({ batch, runsMs, medianMs: Object.fromEntries(Object.entries(runsMs).map(([k, v]) => [k, median(v)])) });
  }
  return results;
}

/** One block: load the model, warm it up, time `runs` runs, release it. */
async function timeBlock(path: string, batch: number, runs: number, imageSize: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const data = new Float32Array(batch * 3 * imageSize * imageSize).map((_, i) => Math.sin(i * 0.001));
  const feed = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, imageSize, imageSize]) };
  await session.run(feed); // warm-up: weight prepacking, first allocations
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feed);
    times.push(performance.now() - t0);
  }
  await session.release();
  return times;
}
