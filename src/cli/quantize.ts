import type { Command } from 'commander';
import type { QuantizeMode } from '../quantize/index.js';
import { INT8_TARGETS } from '../quantize/targets.js';
import { InputError } from '../errors.js';
import { channels3, collect, finiteNumber, imageSizeArg, list, positiveChannels3, positiveInt, positiveNumber } from './parse.js';
import { choice, outputFormatFlags, preprocessingFlags, preprocessingOverrides } from './parse.js';
import { formatBytes, formatMs, quietOnnxruntime, Reporter, runCommand } from './report.js';
import { checkDtypesFlag, runTransformersJs } from './transformers-js.js';

const MODES: QuantizeMode[] = ['fp16', 'int8', 'int8-weights', 'int4-weights'];
// the transformers.js dtype each mode's model is (formats/transformers-js)
const DTYPE_OF: Record<QuantizeMode, string> = { fp16: 'fp16', int8: 'int8', 'int8-weights': 'q8', 'int4-weights': 'q4' };

export function quantizeCommand(program: Command): void {
  preprocessingFlags(
    outputFormatFlags(
      program.command('quantize')
      .description('convert and quantize: fp16, calibrated int8 (QDQ), int8 weights only, or 4-bit weights for WebGPU')
      .argument('<input>', 'checkpoint, Hugging Face folder or ONNX model')
      .requiredOption('-o, --output <path>', 'ONNX file to write (a folder with --format tfjs or transformers.js)')
      .addOption(choice('--to <mode>', "fp16 | int8 | int8-weights | int4-weights (4-bit MatMul/Gemm weights as onnxruntime's MatMulNBits, int8 Conv weights; ONNX for onnxruntime-web's WebGPU)", MODES).makeOptionMandatory())
      .option('--block-size <n>', 'int4-weights: weights per 4-bit block along the input channels, 16 | 32 (default) | 64 | 128 | 256', positiveInt)
      .option('--float16', "int4-weights: scales and activations float16 as --to fp16 makes them (LayerNorm float32; --fp32-ops, --no-keep-io-types apply): for WebGPU adapters with 'shader-f16'")
      .option('--calib <dir>', 'calibration images (folder of JPEG/PNG/WebP, or a .npy tensor) for int8')
      .option('--calib-size <n>', 'use the first N calibration images', positiveInt)
      .addOption(choice('--method <name>', 'calibration: minmax | percentile (default) | entropy', ['minmax', 'percentile', 'entropy']))
      .option('--percentile <p>', 'for --method percentile: share of values kept in range (default 99.99)', positiveNumber)
      .option('--op-types <list>', 'op types to quantize (default Conv,MatMul,Gemm)', list)
      .option('--exclude <name>', 'node name or glob to keep float (repeatable)', collect, [])
      .option('--quantize-input-layer', 'int8: quantize the layer that reads the image too (kept float by default)')
      .addOption(choice('--equalize <when>', 'int8: LayerNorm→pointwise channel equalization: auto (when it helps; default) | on | off', ['auto', 'on', 'off']))
      .addOption(choice('--target <runtime>', 'int8: where the model will run, which sets weight bits and QDQ form: cpu-avx2 (default; 7-bit, exact on any x86 CPU) | cpu-vnni | arm64 (8-bit) | wasm (7-bit) | webgpu (the form onnxruntime-web\'s WebGPU computes right; unfused on a CPU)', Object.keys(INT8_TARGETS)))
      .addOption(choice('--io <type>', 'tflite int8: the model\'s input and output: float (default) | uint8 (the image\'s RGB bytes in, uint8 logits out: what Android\'s ImageClassifier takes)', ['float', 'uint8']))
      .option('--no-reduce-range', 'int8: full 8-bit weights whatever the target')
      .option('--no-keep-io-types', 'fp16: make the model input and output float16 too')
      .option('--fp32-ops <list>', 'fp16: op types kept float32 (default LayerNormalization)', list)
      .option('--data <dir>', 'labelled images to measure the accuracy budget (and a transformers.js model card) on (default: --calib)')
      .option('--labels <file>', 'labels for --data (FILE LABEL lines or CSV)')
      .option('--max-drop <points>', 'accuracy budget: largest allowed top-1 drop, in points', finiteNumber)
      .option('--min-agreement <pct>', 'accuracy budget: smallest allowed top-1 agreement with fp32, in %', finiteNumber)
      .option('--keep-names', 'keep every name: onnx values and nodes, tflite tensors (by default ONNX\'s internal names are shortened and TFLite\'s left out: a smaller file)')
      .option('--batch-size <n>', 'images per inference batch', positiveInt)
      .option('--image-size <pixels>', 'input height and width for checkpoints (`test`: a timm Hub folder\'s test_input_size)', imageSizeArg)
      .option('--state-dict-key <key>', 'entry of the checkpoint to take weights from')
      .option('--skip-pass <name>', 'leave a pass out of the convert pipeline (repeatable)', collect, [])
      .option('--json', 'print a JSON summary on stdout')
      .option('-q, --quiet', 'print nothing but errors'),
      ' (TF.js keeps fp16 or per-channel int8 weights, activations float; TFLite also full-integer int8 with --to int8 --calib)',
      "fp32 and --to's",
    ),
    '',
  ).action(async (input: string, opts) => {
      const reporter = new Reporter(opts);
      await runCommand(reporter, async () => {
        if (opts.target !== undefined && (opts.to !== 'int8' || (opts.format ?? 'onnx') !== 'onnx')) throw new InputError('--target applies to ONNX int8 (--to int8)');
        const q4 = opts.to === 'int4-weights' || (opts.format === 'transformers.js' && (opts.dtypes ?? []).some((d: string) => d === 'q4' || d === 'q4f16'));
        if (opts.blockSize !== undefined && !q4) throw new InputError('--block-size applies to --to int4-weights (and transformers.js q4, q4f16)');
        if (opts.float16 && opts.to !== 'int4-weights') throw new InputError('--float16 applies to --to int4-weights (--to fp16 is float16 throughout)');
        checkModeFlags(opts);
        if (opts.io !== undefined && (opts.to !== 'int8' || opts.format !== 'tflite')) throw new InputError('--io applies to full-integer int8 TFLite (--format tflite --to int8)');
        checkDtypesFlag(opts);
        await quietOnnxruntime();
        if (opts.format === 'transformers.js') return transformersJs(input, opts, reporter);
        const { quantize } = await import('../quantize/index.js');
        const r = await quantize(input, opts.output, {
          to: opts.to,
          format: opts.format,
          tfjs: { shardSize: opts.shardSize, force: opts.force },
          tflite: { io: opts.io },
          calib: opts.calib,
          calibSize: opts.calibSize,
          method: opts.method,
          percentile: opts.percentile,
          opTypes: opts.opTypes,
          exclude: opts.exclude,
          blockSize: opts.blockSize,
          float16: opts.float16,
          // commander sets --no-reduce-range's default (true): pass it only when given, so that the target chooses
          reduceRange: opts.reduceRange === false ? false : undefined,
          target: opts.target,
          equalize: opts.equalize,
          quantizeInputLayer: opts.quantizeInputLayer,
          keepIoTypes: opts.keepIoTypes,
          fp32Ops: opts.fp32Ops,
          data: opts.data ?? opts.calib,
          labels: opts.labels,
          maxDrop: opts.maxDrop,
          minAgreement: opts.minAgreement,
          ...preprocessingOverrides(opts),
          batchSize: opts.batchSize,
          compactNames: !opts.keepNames,
          imageSize: opts.imageSize,
          stateDictKey: opts.stateDictKey,
          skip: opts.skipPass,
          onStep: (s) => reporter.step(s),
          onProgress: (what, done, total) => reporter.progress(what, done, total),
        });
        reporter.finishStep();
        for (const w of r.warnings) reporter.warn(w);
        const lines = [
          `${input} → ${r.output}: ${r.mode}${r.method ? ` (${r.method}, ${r.calibrationImages} calibration images${r.equalization ? `, channel equalization ${r.equalization}` : ''})` : ''}${r.target ? `, for ${r.target.name} (${r.target.weightBits}-bit weights; --target for another)` : ''}`,
          `  ${formatBytes(r.bytesWritten)} (${((100 * r.bytesWritten) / r.floatBytes).toFixed(1)} % of fp32), ${r.quantizedLayers} layers on ${r.mode === 'int4-weights' ? '4-bit (MatMul, Gemm) or int8 (Conv)' : 'int8'} weights, ${formatMs(Object.values(r.timings).reduce((a, b) => a + b, 0))}`,
        ];
        if (r.budget) {
          const b = r.budget;
          lines.push(
            `  accuracy: ${b.top1 !== undefined ? `top-1 ${b.top1.toFixed(2)} % (fp32 ${b.fp32Top1!.toFixed(2)} %, drop ${b.drop!.toFixed(2)}), ` : ''}agreement ${b.agreement.toFixed(2)} %`,
            `  ${r.mode === 'int4-weights' ? 'off 4 bits (MatMul, Gemm: int8 weights; Conv: float)' : 'kept float'}: ${r.keptFloat.length ? r.keptFloat.join(', ') : 'none'}`,
          );
        }
        reporter.result(lines.join('\n'), r);
      });
    });
}

// Flags of one mode, refused where no model of that mode is made rather than ignored (--calib also
// names the budget's data, so it is left to the library: every mode with a budget reads it)
const CALIBRATION_FLAGS: [string, string][] = [['calibSize', '--calib-size'], ['method', '--method'], ['percentile', '--percentile'], ['equalize', '--equalize'], ['quantizeInputLayer', '--quantize-input-layer']];
function checkModeFlags(opts: Record<string, any>): void {
  const dtypes: string[] = opts.format === 'transformers.js' ? opts.dtypes ?? [] : [];
  const int8 = opts.to === 'int8' || dtypes.includes('int8');
  const float16 = opts.to === 'fp16' || (opts.to === 'int4-weights' && opts.float16) || dtypes.includes('fp16') || dtypes.includes('q4f16');
  const given = CALIBRATION_FLAGS.filter(([key]) => opts[key] !== undefined).map(([, flag]) => flag);
  if (opts.reduceRange === false) given.push('--no-reduce-range');
  if (!int8 && given.length) throw new InputError(`${given.join(', ')} ${given.length > 1 ? 'apply' : 'applies'} to calibrated int8 (--to int8), not --to ${opts.to}`);
  const half = [opts.fp32Ops !== undefined && '--fp32-ops', opts.keepIoTypes === false && '--no-keep-io-types'].filter(Boolean);
  if (!float16 && half.length) throw new InputError(`${half.join(', ')} ${half.length > 1 ? 'apply' : 'applies'} to float16 models (--to fp16, int4-weights --float16), not --to ${opts.to}`);
}

// The folder holds fp32 and --to's model, or the --dtypes list, which must name --to's.
function transformersJs(input: string, opts: Record<string, any>, reporter: Reporter): Promise<void> {
  const mine = opts.to === 'int4-weights' && opts.float16 ? 'q4f16' : DTYPE_OF[opts.to as QuantizeMode];
  const dtypes: string[] = opts.dtypes ?? ['fp32', mine];
  if (!dtypes.includes(mine)) throw new InputError(`--to ${opts.to} makes the ${mine} model, which --dtypes ${dtypes.join(',')} leaves out`);
  if (opts.keepIoTypes === false) throw new InputError('--no-keep-io-types: transformers.js feeds float32 pixel_values to every dtype');
  const { output, calib, calibSize, method, percentile, opTypes, exclude, reduceRange, equalize, quantizeInputLayer, fp32Ops, blockSize, data, labels, maxDrop, minAgreement, batchSize, imageSize, stateDictKey, skipPass, force } = opts;
  return runTransformersJs(input, output, {
    dtypes, calib, calibSize, method, percentile, opTypes, exclude, reduceRange, equalize, quantizeInputLayer, fp32Ops, blockSize, data, labels, maxDrop, minAgreement, batchSize, imageSize, stateDictKey, skip: skipPass, force,
    ...preprocessingOverrides(opts),
    onProgress: (what, done, total) => reporter.progress(what, done, total),
  }, reporter);
}
