// How the CLI talks to a person or a program: step spinners on a terminal, plain lines elsewhere,
// nothing but the result with --json, nothing but errors with --quiet. NO_COLOR is honoured.

import type { Ora } from 'ora';
import { isUserError, MeasuredFailure } from '../errors.js';

export interface OutputFlags {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

export class Reporter {
  private spinner?: Ora;
  // ora and its dependencies take ~60 ms to load: only a terminal that will see a spinner pays it
  private ora?: typeof import('ora').default;
  private stepName?: string;
  private stepStart = 0;
  readonly color = !('NO_COLOR' in process.env) && process.stderr.isTTY === true;

  constructor(private readonly flags: OutputFlags) {}

  private get chatty(): boolean {
    return !this.flags.json && !this.flags.quiet;
  }

  /** Loads the spinner library when this run will draw spinners. */
  async ready(): Promise<void> {
    if (this.chatty && process.stderr.isTTY && !this.ora) this.ora = (await import('ora')).default;
  }

  /** A named step starts; the previous one is marked done with its time. */
  step(name: string): void {
    this.finishStep();
    if (!this.chatty) return;
    this.stepName = name;
    this.stepStart = performance.now();
    if (this.ora) {
      this.spinner = this.ora({ text: name, stream: process.stderr, color: this.color ? 'cyan' : false }).start();
    }
  }

  finishStep(): void {
    if (!this.stepName) return;
    const text = `${this.stepName} (${formatMs(performance.now() - this.stepStart)})`;
    if (this.spinner) {
      if (this.color) this.spinner.succeed(text);
      else this.spinner.stopAndPersist({ symbol: '-', text });
    } else {
      process.stderr.write(`- ${text}\n`);
    }
    this.spinner = undefined;
    this.stepName = undefined;
  }

  failStep(): void {
    this.spinner?.stop();
    this.spinner = undefined;
    this.stepName = undefined;
  }

  private bar?: { what: string; start: number; lastDraw: number };

  /** A counted task: a bar with images done / total, images per second and ETA on a terminal. */
  progress(what: string, done: number, total: number): void {
    if (!this.chatty) return;
    const now = performance.now();
    if (!this.bar || this.bar.what !== what) this.bar = { what, start: now, lastDraw: 0 };
    const rate = done / Math.max(1e-3, (now - this.bar.start) / 1000);
    const finished = done >= total;
    if (process.stderr.isTTY) {
      if (!finished && now - this.bar.lastDraw < 100) return;
      this.bar.lastDraw = now;
      this.spinner?.stop();
      const width = 24;
      const filled = Math.round((width * done) / Math.max(1, total));
      const eta = rate > 0 ? (total - done) / rate : 0;
      process.stderr.write(`\r${what} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} images, ${rate.toFixed(1)} img/s, ETA ${eta.toFixed(0)} s\x1b[K`);
      if (finished) process.stderr.write('\n');
    } else if (finished) {
      process.stderr.write(`- ${what}: ${total} images, ${rate.toFixed(1)} img/s\n`);
    }
  }

  warn(message: string): void {
    if (!this.flags.json) process.stderr.write(`warning: ${message}\n`);
  }

  /** The result: a human summary, or the JSON document with --json. */
  result(human: string, json: unknown): void {
    this.finishStep();
    if (this.flags.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    else if (!this.flags.quiet) process.stdout.write(`${human}\n`);
  }
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export const EXIT = { ok: 0, failed: 1, badInput: 2, internal: 3 } as const;

/** Runs a command body with the one catch that maps errors to exit codes and one-line messages. */
/**
 * onnxruntime's own log lines (a provider that cannot start, a telemetry ID it cannot save) would
 * break the one-line contract on stderr: a process-wide setting, so the program's, not the library's.
 * Called by the verbs that run onnxruntime, before their first session.
 */
export async function quietOnnxruntime(): Promise<void> {
  (await import('onnxruntime-node')).env.logLevel = 'fatal';
}

export async function runCommand(reporter: Reporter, body: () => Promise<number | void>): Promise<void> {
  try {
    await reporter.ready();
    process.exitCode = (await body()) ?? EXIT.ok;
  } catch (e) {
    reporter.failStep();
    if (isUserError(e)) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = EXIT.badInput;
    } else if (e instanceof MeasuredFailure) {
      // a measured failure (accuracy budget, validation gate): exit 1, not a usage problem
      process.stderr.write(`failed: ${e.message}\n`);
      process.exitCode = EXIT.failed;
    } else {
      const err = e as Error;
      process.stderr.write(`internal error: ${err?.message ?? String(e)}\n`);
      if (process.env.CONVNEXT_DEBUG) process.stderr.write(`${err?.stack}\n`);
      process.exitCode = EXIT.internal;
    }
  }
}
