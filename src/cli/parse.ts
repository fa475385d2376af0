// Argument parsers shared by the commands; a bad value is a usage error (exit 2).
import { InvalidArgumentError, Option, type Command } from 'commander';

// Defaults live in the library, not here: a flag left out is passed on as undefined, and the help
// text says what the library then does.

/** An option that takes one of `values` (commander refuses anything else with exit 2). */
export function choice(flags: string, description: string, values: readonly string[]): Option {
  return new Option(flags, description).choices(values);
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got '${value}'`);
  return n;
}

/** --image-size: pixels, or `test` (a timm Hub folder's pretrained_cfg.test_input_size). */
export function imageSizeArg(value: string): number | 'test' {
  const n = Number(value);
  if (value === 'test') return 'test';
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number or 'test', got '${value}'`);
  return n;
}

export function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

/** A comma-separated list of numbers, e.g. a mean per channel. */
export function numbers(value: string): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isFinite(n))) throw new InvalidArgumentError(`expected numbers separated by commas, got '${value}'`);
  return out;
}

/** Three finite numbers, one per colour channel (a mean or a std). */
export function channels3(value: string): number[] {
  const out = numbers(value);
  if (out.length !== 3) throw new InvalidArgumentError(`expected three numbers (R,G,B), got '${value}'`);
  return out;
}

export function positiveChannels3(value: string): number[] {
  const out = channels3(value);
  if (out.some((n) => n <= 0)) throw new InvalidArgumentError(`expected three positive numbers, got '${value}'`);
  return out;
}

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}

/** Batch sizes: '1,8,32', or 'none' to skip timing. */
export function batchSizes(value: string): number[] {
  return value === 'none' ? [] : list(value).map(positiveInt);
}

/** --crop-pct, --mean, --std: the same preprocessing flags on every command that reads images. */
export function preprocessingFlags(command: Command, purpose: string): Command {
  return command
    .option('--crop-pct <x>', `${purpose}resize to crop/x before the centre crop (1: no crop)`, positiveNumber)
    .option('--mean <r,g,b>', `${purpose}normalisation mean`, channels3)
    .option('--std <r,g,b>', `${purpose}normalisation std`, positiveChannels3);
}

/** The preprocessing overrides the flags above produced. */
export function preprocessingOverrides(opts: { cropPct?: number; mean?: number[]; std?: number[] }) {
  return { cropPct: opts.cropPct, mean: opts.mean, std: opts.std };
}

/** --format, --shard-size, --dtypes and --force: where a command writes ONNX, a TF.js folder, a TFLite file or a transformers.js folder. */
export function outputFormatFlags(command: Command, tfjsNote = '', dtypesDefault = 'fp32'): Command {
  return command
    .addOption(choice('--format <format>', `onnx | tfjs | tflite${tfjsNote} | transformers.js (a Hugging Face transformers.js model folder) (default onnx)`, ['onnx', 'tfjs', 'tflite', 'transformers.js']))
    .option('--shard-size <bytes>', 'tfjs: bytes per weight shard (default 4 MiB)', positiveInt)
    .option('--dtypes <list>', `transformers.js: precisions to write, fp32 and any of fp16, q8 (int8 weights), int8 (calibrated; quantize --calib), q4 (4-bit weights, MatMulNBits), q4f16 (q4 in float16) (default ${dtypesDefault})`, list)
    .option('--force', 'tfjs, transformers.js: write into a folder that holds other files');
}
