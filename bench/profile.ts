// Where onnxruntime's CPU time goes, by op type: fp32 and int8 ConvNeXt-T at batch 1 and 32, from
// onnxruntime's own profiler (its per-kernel events in the trace it writes), after warm-up runs.
// Kernel names are onnxruntime's after its fusions (FusedConv, QLinearConv, MatMulIntegerToFloat,
// BiasGelu, …): the graph it really runs, not ours.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fmtMs, machineLoad, outDir, say, writeResult } from './common.js';

interface TraceEvent {
  readonly cat?: string;
  readonly name?: string;
  readonly ts?: number;
  readonly dur?: number;
  readonly args?: { readonly op_name?: string };
}

export interface OpProfile {
  readonly model: string;
  readonly batch: number;
  readonly runs: number;
  /** Microseconds per run by op type, largest first. */
  readonly byOp: readonly { op: string; usPerRun: number; share: number }[];
  readonly kernelUsPerRun: number;
}

const WARM_UP = 2;
// BENCH_PROFILE_THREADS=1: one thread, so that an op onnxruntime does not parallelize shows up beside one it does
const THREADS = Number(process.env.BENCH_PROFILE_THREADS ?? 0) || undefined;

async function profileOne(path: string, label: string, batch: number, runs: number): Promise<OpProfile> {
  const prefix = `profile-${label}-b${batch}`;
  const session = await ort.InferenceSession.create(path, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    ...(THREADS ? { intraOpNumThreads: THREADS } : {}),
    enableProfiling: true,
    profileFilePrefix: join(outDir, prefix),
  });
  const size = 224;
  const data = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i * 0.001));
  const feed = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, size, size]) };
  for (let i = 0; i < WARM_UP; i++) await session.run(feed);
  for (let i = 0; i < runs; i++) await session.run(feed);
  session.endProfiling();
  await session.release();
  // onnxruntime names the trace <prefix>_<timestamp>.json
  const file = join(outDir, readdirSync(outDir).filter((f) => f.startsWith(`${prefix}_`) && f.endsWith('.json')).sort().pop()!);
  const events = JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[];
  rmSync(file, { force: true });
  // Node events come as <node>_kernel_time, one per node per run. The warm-up runs are left out:
  // the first one pays page faults and weight prepacking, several times a steady run's kernel time.
  const runStarts = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.ts ?? 0).sort((a, b) => a - b);
  const counted = runStarts[WARM_UP] ?? Infinity;
  const kernels = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time') && e.args?.op_name && (e.ts ?? 0) >= counted);
  const total = new Map<string, number>();
  for (const e of kernels) total.set(e.args!.op_name!, (total.get(e.args!.op_name!) ?? 0) + (e.dur ?? 0));
  const perRun = runStarts.length - WARM_UP;
  if (perRun !== runs) throw new Error(`profile ${prefix}: the trace holds ${runStarts.length} runs, expected ${runs + WARM_UP}`);
  const sum = [...total.values()].reduce((a, b) => a + b, 0) / perRun;
  const byOp = [...total].map(([op, us]) => ({ op, usPerRun: us / perRun, share: us / perRun / sum })).sort((a, b) => b.usPerRun - a.usPerRun);
  return { model: label, batch, runs: perRun, byOp, kernelUsPerRun: sum };
}

export async function benchProfile(models: Record<string, string>, runs: number): Promise<void> {
  say(`\n== profile: onnxruntime CPU kernel time by op type, ConvNeXt-T 224×224 (${machineLoad().cpu}; ${THREADS ?? 'default'} threads)`);
  const profiles: OpProfile[] = [];
  for (const batch of [1, 32]) {
    for (const [label, path] of Object.entries(models)) {
      const p = await profileOne(path, label, batch, batch === 1 ? runs : Math.max(2, Math.round(runs / 5)));
      profiles.push(p);
      say(`\n${label}, batch ${batch}: ${fmtMs(p.kernelUsPerRun / 1000)} of kernels per run (${p.runs} runs)`);
      for (const o of p.byOp.slice(0, 12)) say(`  ${o.op.padEnd(28)} ${fmtMs(o.usPerRun / 1000).padStart(10)}  ${(100 * o.share).toFixed(1).padStart(5)} %`);
    }
  }
  writeResult('profile_convnext_tiny', { profiles });
}
