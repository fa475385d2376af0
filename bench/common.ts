// Helpers shared by the bench parts: paths, medians and formatting, env switches, a child process
// whose peak RSS is its own, the machine's load, and JSON results in bench/out/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/bench/). */
export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const outDir = join(root, 'bench', 'out');
/** The Fashion-MNIST fixture (fixtures/make_fashion.py); BENCH_FASHION_DIR points elsewhere. */
export const fashionDir = process.env.BENCH_FASHION_DIR || join(root, 'fixtures', 'fashion');
/** A compiled bench script, by its base name: dist/bench/NAME.js. */
export const benchScript = (name: string) => join(root, 'dist', 'bench', `${name}.js`);

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const fmtS = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
export const fmtMs = (ms: number) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
export const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 1)} MiB`;
export const pct = (x: number) => `${x.toFixed(2)} %`;
/** "0.512 (target ≤ 0.7: met)": a value and whether it meets its target; `unit` follows both numbers. */
export function against(value: number, op: '≤' | '≥', target: number, digits = 3, unit = ''): string {
  const met = op === '≤' ? value <= target + 1e-12 : value >= target - 1e-12;
  return `${value.toFixed(digits)}${unit} (target ${op} ${target}${unit}: ${met ? 'met' : 'NOT met'})`;
}

/** True when the env var is set to something other than '', '0' or 'false'. */
export function envFlag(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${v}: expected a positive number`);
  return n;
}

/** Debian's python3 when it has torch and torchvision, else undefined. */
export function python(): string | undefined {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return undefined;
  return spawnSync(py, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0 ? py : undefined;
}

/** Runs a program whose last stdout line is JSON; stderr passes through to ours. */
export function runJson<T = Record<string, unknown>>(program: string, args: readonly string[], what: string): T {
  const r = spawnSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status ?? r.signal})`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}

// A tiny Node process that runs the real child and passes its exit status on. Linux folds the
// pre-exec RSS of a forked child (a copy of its parent's) into the child's ru_maxrss, so a child
// forked straight from a parent that has grown to gigabytes reports the parent's size as its peak;
// forked from this launcher, its maxRSS starts from a few tens of MiB.
const LAUNCHER = "const r = require('node:child_process').spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit' }); process.exit(r.status ?? 1);";

/**
 * Runs a compiled bench script in a fresh Node process (through LAUNCHER), so that its peak RSS is
 * its own; the child reports `process.resourceUsage().maxRSS` itself (see childReport).
 */
export function runChild<T = Record<string, unknown>>(script: string, args: readonly string[]): T & { maxRssBytes: number; vmHwmBytes?: number } {
  const r = spawnSync(process.execPath, ['-e', LAUNCHER, benchScript(script), ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
}

/**
 * What a child prints as its last line: its result plus its own peak RSS, as getrusage says
 * (maxRssBytes) and, on Linux, as the kernel's high-water mark of this process image (VmHWM).
 */
export function childReport(result: Record<string, unknown>): void {
  let vmHwmBytes: number | undefined;
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    vmHwmBytes = kb ? Number(kb) * 1024 : undefined;
  } catch {
    vmHwmBytes = undefined;
  }
  process.stdout.write(JSON.stringify({ ...result, maxRssBytes: process.resourceUsage().maxRSS * 1024, vmHwmBytes }) + '\n');
}

/** True when this module is the script Node was started with (a child-mode entry point). */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(moduleUrl) === process.argv[1];
}

/** Load averages and core count, to print beside every timing. */
export function machineLoad(): { loadavg: number[]; cores: number; cpu: string } {
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), cores: cpus().length, cpu: cpus()[0]?.model?.trim() ?? 'unknown' };
}

export function loadLine(): string {
  const m = machineLoad();
  return `load average ${m.loadavg.join(' / ')} (1/5/15 min) on ${m.cores} cores`;
}

/** Writes bench/out/NAME.json with the machine's load at the end of the part. */
export function writeResult(name: string, data: Record<string, unknown>): string {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...data, machine: machineLoad(), finishedAt: new Date().toISOString() }, null, 2) + '\n');
  return path;
}

/** Bytes of a file, or of every file under a folder. */
export function sizeOf(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0);
}

/** A heading for one bench part, with the load it starts under. */
export function heading(title: string): void {
  process.stdout.write(`\n== ${title}\n   (${loadLine()})\n`);
}

export function say(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Time of one async call in ms, with its result. */
export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await work();
  return { ms: performance.now() - t0, value };
}
