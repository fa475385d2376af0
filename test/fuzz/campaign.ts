// A CLI fuzz campaign: cases drawn with a fixed seed, run a few at a time as child processes,
// judged, and counted per outcome, per command and per model format. The folder of every case with
// a bad outcome is kept, with the command line that reproduces it.

import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { BIN } from '../helpers/cli.js';
import { cliCase, materialize, type CliCase } from './cases.js';
import { knownIssue } from './known.js';
import { ACCEPTABLE, judge, OUTCOMES, type Judged, type Limits, type Outcome } from './outcome.js';
import type { Seed } from './seeds.js';

export interface CampaignOptions {
  readonly cases: number;
  readonly seed: number;
  readonly concurrency: number;
  readonly limits: Limits;
  /** Where case folders are made; bad ones stay under failures/. */
  readonly workDir: string;
  readonly onCase?: (done: number, c: CliCase, j: Judged) => void;
}

export interface Failure {
  readonly index: number;
  readonly outcome: Outcome;
  readonly detail: string;
  /** The command line, with the kept case folder's paths. */
  readonly command: string;
  readonly case: CliCase;
  /** The id of the open issue (test/fuzz/known.ts) it matches. */
  readonly known?: string;
}

export interface CampaignReport {
  readonly cases: number;
  readonly seed: number;
  readonly byOutcome: Record<Outcome, number>;
  /** "convert pth" → outcome → count. */
  readonly byTarget: Record<string, Partial<Record<Outcome, number>>>;
  readonly failures: Failure[];
  readonly slowestRefusal?: { readonly ms: number; readonly command: string };
  /** Wall time of the refusals: median, 99th percentile, the three slowest (one slow outlier is load, a slow tail is not). */
  readonly refusalMs: { readonly median: number; readonly p99: number; readonly slowest: readonly number[] };
  readonly peakRefusalRss?: { readonly bytes: number; readonly command: string };
  readonly seconds: number;
}

export async function runCampaign(seeds: readonly Seed[], options: CampaignOptions): Promise<CampaignReport> {
  const start = performance.now();
  const bySeed = new Map(seeds.map((s) => [s.name, s]));
  const cases = fc.sample(cliCase(seeds), { seed: options.seed, numRuns: options.cases });
  mkdirSync(options.workDir, { recursive: true });
  // the unreadable-file cases run as nobody, who must get in: every folder above must be searchable
  // (mkdtemp makes them 0700)
  for (let d = options.workDir; d !== dirname(d) && d !== tmpdir(); d = dirname(d)) chmodSync(d, statSync(d).mode | 0o755);
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const byTarget: CampaignReport['byTarget'] = {};
  const failures: Failure[] = [];
  let slowestRefusal: CampaignReport['slowestRefusal'];
  const refusalTimes: number[] = [];
  let peakRefusalRss: CampaignReport['peakRefusalRss'];
  let next = 0;
  let done = 0;

  const worker = async () => {
    while (next < cases.length) {
      const index = next++;
      const c = cases[index];
      const dir = join(options.workDir, `case-${index}`);
      mkdirSync(dir, { recursive: true });
      const laid = materialize(c, bySeed, dir);
      const j = await judge(laid, options.limits);
      const command = `node ${BIN} ${laid.args.map(quote).join(' ')}`;
      byOutcome[j.outcome]++;
      const model = bySeed.get(c.inputs[0].seed)!.kind;
      const target = `${c.command} ${model}`;
      byTarget[target] ??= {};
      byTarget[target][j.outcome] = (byTarget[target][j.outcome] ?? 0) + 1;
      if (j.outcome === 'refusal') {
        refusalTimes.push(j.ms);
        if (!slowestRefusal || j.ms > slowestRefusal.ms) slowestRefusal = { ms: j.ms, command };
        if (j.rssBytes !== undefined && (!peakRefusalRss || j.rssBytes > peakRefusalRss.bytes)) peakRefusalRss = { bytes: j.rssBytes, command };
      }
      if (ACCEPTABLE.has(j.outcome)) {
        rmSync(dir, { recursive: true, force: true });
      } else {
        // kept where it ran, so that the command line above reproduces it
        failures.push({ index, outcome: j.outcome, detail: j.detail, command, case: c, known: knownIssue(j.outcome, j.stderr)?.id });
        writeFileSync(join(dir, 'case.json'), JSON.stringify({ outcome: j.outcome, detail: j.detail, command, stderr: j.stderr, case: c }, null, 2));
      }
      options.onCase?.(++done, c, j);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const sorted = refusalTimes.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const refusalMs = { median: at(0.5), p99: at(0.99), slowest: sorted.slice(-3).reverse() };
  return { cases: cases.length, seed: options.seed, byOutcome, byTarget, failures, slowestRefusal, refusalMs, peakRefusalRss, seconds: (performance.now() - start) / 1000 };
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** The report as text: counts per outcome, per command and format, the extremes, the failures. */
export function renderReport(r: CampaignReport): string {
  const lines = [`${r.cases} CLI cases (seed ${r.seed}) in ${r.seconds.toFixed(0)} s`, '', 'by outcome:'];
  for (const o of OUTCOMES) lines.push(`  ${o.padEnd(18)} ${r.byOutcome[o]}`);
  lines.push('', 'by command and model format:');
  for (const [t, counts] of Object.entries(r.byTarget).sort()) {
    lines.push(`  ${t.padEnd(22)} ${Object.entries(counts).map(([o, n]) => `${o} ${n}`).join(', ')}`);
  }
  if (r.slowestRefusal) {
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    lines.push('', `refusal time: median ${ms(r.refusalMs.median)}, 99th percentile ${ms(r.refusalMs.p99)}, slowest ${r.refusalMs.slowest.map(ms).join(', ')}`);
    lines.push(`slowest refusal: ${ms(r.slowestRefusal.ms)}: ${r.slowestRefusal.command}`);
  }
  if (r.peakRefusalRss) lines.push(`peak RSS of a refusal: ${(r.peakRefusalRss.bytes / 2 ** 20).toFixed(0)} MiB: ${r.peakRefusalRss.command}`);
  if (r.failures.length) {
    const known = r.failures.filter((f) => f.known).length;
    lines.push('', `${r.failures.length} bad outcomes (${known} of them known open issues, test/fuzz/known.ts):`);
    for (const f of r.failures) lines.push(`  #${f.index} ${f.outcome}${f.known ? ` [known: ${f.known}]` : ''}: ${f.detail}`, `    ${f.command}`);
  }
  return lines.join('\n');
}
