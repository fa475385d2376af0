// --format transformers.js on convert and quantize: both hand the same library call their flags
// and report the folder the same way.
import { InputError } from '../errors.js';
import type { TransformersJsOptions } from '../quantize/transformers-js.js';
import { formatBytes, formatMs, type Reporter } from './report.js';

export async function runTransformersJs(input: string, output: string, options: TransformersJsOptions, reporter: Reporter): Promise<void> {
  const { exportTransformersJs } = await import('../quantize/transformers-js.js');
  const r = await exportTransformersJs(input, output, { ...options, onStep: (s) => reporter.step(s) });
  reporter.finishStep();
  for (const w of r.warnings) reporter.warn(w);
  const rows = r.measurements.map((m) =>
    `  ${m.dtype.padEnd(5)} ${m.latencyMs!.toFixed(2).padStart(8)} ms${m.agreement !== undefined ? `, top-1 agreement with fp32 ${m.agreement.toFixed(2)} %` : ''}${m.top1 !== undefined ? `, top-1 ${m.top1.toFixed(2)} %` : ''}`,
  );
  const total = Object.values(r.timings).reduce((a, b) => a + b, 0);
  reporter.result([`${input} → ${r.output}: transformers.js folder (${r.dtypes.join(', ')}), ${formatBytes(r.bytesWritten)}, ${formatMs(total)}`, ...rows].join('\n'), r);
}

/** --dtypes is transformers.js's; refused with any other format rather than ignored. */
export function checkDtypesFlag(opts: { format?: string; dtypes?: string[] }): void {
  if (opts.dtypes && opts.format !== 'transformers.js') throw new InputError('--dtypes applies to --format transformers.js');
}
