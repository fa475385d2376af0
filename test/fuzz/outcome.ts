// Running one CLI case as a child process and judging what came of it. The child runs with a time
// limit, a heap cap and the rss-probe preload; the inputs are hashed before and after; the output
// folder is listed for temporary files and partial outputs; an output the command says it wrote
// must load (ONNX in onnxruntime, TF.js with loadTfjsModel).

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSession } from '../../src/runtime/onnxruntime.js';
import { loadTfjsModel } from '../../src/runtime/tfjs.js';
import { BIN } from '../helpers/cli.js';
import type { Laid } from './cases.js';

/** Outcome classes, the acceptable ones first. */
export const OUTCOMES = ['refusal', 'success', 'gate-failure', 'messy-refusal', 'internal', 'crash', 'hang', 'over-memory', 'leftover', 'modified-input', 'unloadable-output'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const ACCEPTABLE: ReadonlySet<Outcome> = new Set(['refusal', 'success', 'gate-failure']);

export interface Limits {
  readonly timeoutMs: number;
  /** --max-old-space-size for the child. */
  readonly heapMiB: number;
  /** A child whose peak resident memory passes this is over-memory. */
  readonly rssBytes: number;
}

export interface Judged {
  readonly outcome: Outcome;
  /** Why, for the bad outcomes: the line that shows it. */
  readonly detail: string;
  readonly code: number | null;
  readonly signal: string | null;
  /** How long the child ran, by its own clock (from its start to its exit). */
  readonly ms: number;
  readonly rssBytes?: number;
  readonly stderr: string;
}

const PROBE = pathToFileURL(join(BIN, '..', '..', 'test', 'fuzz', 'rss-probe.js')).href;
const STACK = /\n\s+at .+(:\d+:\d+\)?|\(native\))/;
/** Lines a refusal may carry besides its one message (step names, commander's usage hint). */
const NOT_MESSAGE = (l: string) => l.startsWith('- ') || l.startsWith('(run with') || l.trim() === '';

export async function judge(laid: Laid, limits: Limits): Promise<Judged> {
  const before = snapshot(laid.inputRoot);
  const outBefore = new Set(listAll(laid.outRoot));
  const rssFile = join(laid.outRoot, '..', 'rss');
  const run = await runChild(laid, limits, rssFile);
  const probe = existsSync(rssFile) ? (JSON.parse(readFileSync(rssFile, 'utf8')) as { rssBytes: number; ms: number }) : undefined;
  rmSync(rssFile, { force: true });
  const rssBytes = probe?.rssBytes;
  // the child's own run time when it reported one (it did unless killed)
  const base = { code: run.code, signal: run.signal, ms: probe?.ms ?? run.ms, rssBytes, stderr: run.stderr };
  const verdict = (outcome: Outcome, detail = ''): Judged => ({ ...base, outcome, detail });

  if (run.timedOut) return verdict('hang', `still running after ${limits.timeoutMs} ms`);
  if (run.signal || ![0, 1, 2, 3].includes(run.code ?? -1)) return verdict('crash', `signal ${run.signal}, exit ${run.code}`);
  if (run.code === 3 || STACK.test(run.stderr)) return verdict('internal', firstLine(run.stderr));
  const after = snapshot(laid.inputRoot);
  const changed = [...before].filter(([p, h]) => after.get(p) !== h).map(([p]) => p);
  if (changed.length) return verdict('modified-input', `changed or removed: ${changed.slice(0, 3).join(', ')}`);
  const added = listAll(laid.outRoot).filter((p) => !outBefore.has(p)).concat(listAll(laid.inputRoot).filter((p) => !before.has(p)));
  const temporary = added.filter((p) => /\.tmp/.test(p));
  if (temporary.length) return verdict('leftover', `temporary files: ${temporary.slice(0, 3).join(', ')}`);
  if (run.code !== 0 && laid.output && existsSync(laid.output) && !outBefore.has(relative(laid.outRoot, laid.output))) {
    return verdict('leftover', `failed but left ${laid.output}`);
  }
  if (rssBytes !== undefined && rssBytes > limits.rssBytes) return verdict('over-memory', `peak RSS ${(rssBytes / 2 ** 20).toFixed(0)} MiB`);
  if (run.code === 0 && laid.output && laid.args.includes('-o')) {
    const problem = await loadProblem(laid);
    if (problem) return verdict('unloadable-output', problem);
  }
  if (run.code === 2) {
    const lines = run.stderr.split('\n').filter((l) => !NOT_MESSAGE(l));
    return lines.length === 1 ? verdict('refusal') : verdict('messy-refusal', `${lines.length} lines: ${lines.slice(0, 3).join(' | ')}`);
  }
  return verdict(run.code === 1 ? 'gate-failure' : 'success');
}

interface ChildRun {
  readonly code: number | null;
  readonly signal: string | null;
  readonly ms: number;
  readonly timedOut: boolean;
  readonly stderr: string;
}

function runChild(laid: Laid, limits: Limits, rssFile: string): Promise<ChildRun> {
  const node = [`--max-old-space-size=${limits.heapMiB}`, '--import', PROBE, BIN, ...laid.args];
  // setpriv drops root, under which chmod 000 would not stop a read
  const [cmd, argv] = laid.asNobody
    ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...node]]
    : [process.execPath, node];
  const start = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, {
      cwd: laid.outRoot,
      // CONVNEXT_DEBUG: an internal error prints its stack, which names the file at fault
      env: { ...process.env, NO_COLOR: '1', FUZZ_RSS_FILE: rssFile, CONVNEXT_DEBUG: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 1 << 16) stderr += d.toString('utf8');
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limits.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: performance.now() - start, timedOut, stderr });
    });
  });
}

/** Why the written output does not load, or undefined when it does. */
async function loadProblem(laid: Laid): Promise<string | undefined> {
  const out = laid.output!;
  if (!existsSync(out)) return `exit 0 but no ${out}`;
  try {
    if (laid.outputKind === 'tfjs') (await loadTfjsModel(out, 'cpu')).dispose();
    else await (await createSession(out)).release();
    return undefined;
  } catch (e) {
    return `does not load: ${firstLine((e as Error).message)}`;
  }
}

/** sha256 of every regular file under `root` (symbolic links by their target), by path. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of listAll(root)) {
    const p = join(root, rel);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink()) out.set(rel, `link:${readlinkSync(p)}`);
    // FIFOs are not read (that would block); root reads the chmod 000 ones
    else if (st.isFile()) out.set(rel, createHash('sha256').update(readFileSync(p)).digest('hex'));
    else out.set(rel, st.isDirectory() ? 'dir' : 'special');
  }
  return out;
}

function listAll(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      out.push(relative(root, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

const firstLine = (s: string) => s.split('\n').find((l) => l.trim() && !l.startsWith('- ')) ?? '';
