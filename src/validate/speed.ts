// Latency per batch size: warm-up runs, then timed runs until both a minimum count and a minimum
// time are reached; medians and 90th percentiles, never means (one slow run must not move them).

import { checkBatch } from '../data/preprocessing.js';
import { float32 } from '../graph/tensor.js';
import type { Runner } from '../runtime/runners.js';

export interface SpeedResult {
  readonly batch: number;
  readonly runs: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly imagesPerSecond: number;
}

export interface SpeedOptions {
  readonly batches: readonly number[];
  readonly warmup?: number;
  readonly minRuns?: number;
  readonly minSeconds?: number;
  readonly maxRuns?: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Times `runners` side by side: for each batch size they take turns run by run. */
export async function measureSpeed(runners: readonly Runner[], shape: readonly number[], options: SpeedOptions): Promise<SpeedResult[][]> {
  const results: SpeedResult[][] = runners.map(() => []);
  for (const batch of options.batches) checkBatch(batch, shape, '--batch');
  for (const batch of options.batches) {
    const input = float32([batch, ...shape]);
    const data = input.data as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.01);
    for (const r of runners) for (let i = 0; i < (options.warmup ?? 2); i++) await r.run(input);
    const times: number[][] = runners.map(() => []);
    const start = performance.now();
    const minRuns = options.minRuns ?? 5;
    const maxRuns = options.maxRuns ?? 50;
    while (times[0].length < maxRuns && (times[0].length < minRuns || performance.now() - start < (options.minSeconds ?? 1) * 1000)) {
      for (let k = 0; k < runners.length; k++) {
        const r = runners[k];
        if (r.timedRun) {
          times[k].push(await r.timedRun(input));
          continue;
        }
        const t0 = performance.now();
        await r.run(input);
        times[k].push(performance.now() - t0);
      }
    }
    times.forEach((t, k) => {
      const sorted = [...t].sort((a, b) => a - b);
      const median = quantile(sorted, 0.5);
      results[k].push({ batch, runs: t.length, medianMs: median, p90Ms: quantile(sorted, 0.9), imagesPerSecond: (1000 * batch) / median });
    });
  }
  return results;
}
