// The command line as a user meets it, run as a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './fixtures.js';

export const BIN = join(ROOT, 'dist', 'bin', 'convnext.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A bad input: exit 2, exactly one line on stderr matching `pattern`, no stack trace, no output
 * file, and no temporary file left in `dir`.
 */
export function assertCliRefused(r: CliResult, pattern: RegExp, dir: string, output?: string): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('- ') && !l.startsWith('(run with'));
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  if (output) assert.equal(existsSync(output), false, 'no output file');
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
}

const RSS_MARK = '__peak_rss_bytes ';
const CPU_MARK = '__cpu_ms ';

/**
 * The time limits of refusals are on the child's own CPU time, which other work on the machine
 * (CI's parallel test files) does not inflate; wall time only guards against a hang.
 */
export const HANG_MS = 20_000;
let rssHook: string | undefined;

/** runCli, also timing it and reading its peak RSS (from the child itself, at exit). */
export function runCliMeasured(...args: string[]): CliResult & { readonly ms: number; readonly cpuMs: number; readonly maxRssBytes: number } {
  if (!rssHook) {
    rssHook = join(mkdtempSync(join(tmpdir(), 'convnext-rss-')), 'rss.mjs');
    writeFileSync(
      rssHook,
      `process.on('exit', () => { const u = process.resourceUsage(); process.stderr.write('\\n${CPU_MARK}' + (u.userCPUTime + u.systemCPUTime) / 1000 + '\\n${RSS_MARK}' + u.maxRSS * 1024 + '\\n'); });\n`,
    );
  }
  const start = performance.now();
  const r = spawnSync(process.execPath, ['--import', rssHook, BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const ms = performance.now() - start;
  const at = r.stderr.lastIndexOf(`\n${CPU_MARK}`);
  const tail = at >= 0 ? r.stderr.slice(at) : '';
  const value = (mark: string) => Number(tail.split('\n').find((l) => l.startsWith(mark))?.slice(mark.length) ?? NaN);
  return { code: r.status, stdout: r.stdout, stderr: at >= 0 ? r.stderr.slice(0, at) : r.stderr, ms, cpuMs: value(CPU_MARK), maxRssBytes: value(RSS_MARK) };
}
