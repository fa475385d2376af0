import type { Command } from 'commander';
import { formatBytes, formatMs, quietOnnxruntime, Reporter, runCommand } from './report.js';
import { InputError } from '../errors.js';
import { WEIGHT_FORMATS } from '../formats/tfjs/weights.js';
import { TFLITE_WEIGHTS } from '../formats/tflite/precisions.js';
import type { PassReport } from '../passes/pipeline.js';
import { collect, imageSizeArg, list, positiveInt } from './parse.js';
import { checkDtypesFlag, runTransformersJs } from './transformers-js.js';
import { choice, outputFormatFlags, preprocessingFlags, preprocessingOverrides } from './parse.js';

function checkFormat(opts: { format?: string; weights?: string; gelu?: string; batch?: number; keepNames?: boolean; dynamicSize?: boolean; data?: string; dtypes?: string[] }): void {
  const format = opts.format ?? 'onnx';
  if (format !== 'tfjs' && format !== 'tflite' && (opts.weights !== undefined || (opts.gelu ?? 'erf') !== 'erf')) throw new InputError('--weights and --gelu apply to --format tfjs and tflite');
  if (opts.batch !== undefined && format !== 'tflite') throw new InputError('--batch applies to --format tflite (ONNX and TF.js models take any batch)');
  if (opts.keepNames && format !== 'tflite') throw new InputError('--keep-names applies to --format tflite (convert keeps ONNX names unless --compact-names)');
  if (format === 'tflite' && opts.weights !== undefined && !(TFLITE_WEIGHTS as readonly string[]).includes(opts.weights)) {
    throw new InputError(`--format tflite takes --weights ${TFLITE_WEIGHTS.join(', ')}, not '${opts.weights}'`);
  }
  if (format === 'tfjs' && opts.weights !== undefined && !(WEIGHT_FORMATS as readonly string[]).includes(opts.weights)) {
    throw new InputError(`--format tfjs takes --weights ${WEIGHT_FORMATS.join(', ')}, not '${opts.weights}'`);
  }
  if (format === 'tflite' && opts.dynamicSize) throw new InputError('--format tflite takes a fixed image size (LiteRT compiles static shapes); leave out --dynamic-size');
  if (opts.data !== undefined && format !== 'transformers.js') throw new InputError('--data applies to --format transformers.js');
  checkDtypesFlag(opts);
}

function passTable(reports: readonly PassReport[]): string[] {
  const rows = reports.map((p) => [
    p.name,
    `${p.nodesBefore} → ${p.nodesAfter}`,
    String(p.fired.length),
    p.change ? p.change.step.toExponential(2) : '-',
    p.change ? p.change.total.toExponential(2) : '-',
  ]);
  const head = ['pass', 'nodes', 'fired', 'max rel. change', 'vs. original'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `  ${r.map((c, i) => c.padEnd(widths[i])).join('  ')}`.trimEnd();
  return ['', line(head), ...rows.map(line)];
}

export function convertCommand(program: Command): void {
  preprocessingFlags(
    outputFormatFlags(
      program.command('convert')
      .description('convert a ConvNeXt checkpoint (.pth/.bin, .safetensors, Hugging Face folder) or ONNX model to ONNX, TF.js or TFLite')
      .argument('<input>', 'checkpoint file, Hugging Face model folder, or ONNX model')
      .requiredOption('-o, --output <path>', 'ONNX file to write (a folder with --format tfjs or transformers.js, a .tflite file with --format tflite)')
      .option('--image-size <pixels>', "input height and width (default: from config.json, else 224; 'test': a timm Hub folder's test_input_size)", imageSizeArg)
      .option('--dynamic-size', 'symbolic input height and width (the image size stays the preprocessing crop)')
      .addOption(choice('--outputs <what>', 'logits (default) | pooled (normalised features before the classifier) | stages (the four stages\' feature maps, NCHW, for detection/segmentation heads)', ['logits', 'pooled', 'stages']))
      .option('--state-dict-key <key>', "entry of the checkpoint to take weights from (e.g. 'model_ema')")
      .option('--labels <file>', 'class names to record in the model, one per line (for checkpoints without id2label)')
      .option('--external-data', 'keep weights in <output>.data beside the model (automatic above 1.8 GiB)')
      .option('--compact-names', 'onnx: short internal value names, layer names kept (a smaller file)')
      .option('--passes <list>', 'run exactly these passes, in this order (comma-separated; see inspect --passes)', list)
      .option('--skip-pass <name>', 'leave a pass out (repeatable)', collect, [])
      .option('--verify', 'run the graph in onnxruntime before and after each pass and report the output change')
      .addOption(choice('--weights <format>', 'tfjs: weight storage float32 | float16 | uint16 | uint8 | int8 (per-channel); tflite: float32 | float16 | int8 (DEQUANTIZE\'d) | int8-hybrid (LiteRT\'s dynamic-range kernels); default float32, or what a quantized ONNX input had', [...new Set([...WEIGHT_FORMATS, ...TFLITE_WEIGHTS])]))
      .addOption(choice('--gelu <form>', 'tfjs, tflite: erf (exact, default) | tanh (faster approximation)', ['erf', 'tanh']))
      .option('--batch <n>', "tflite: the input's batch size, fixed in the file (default 1)", positiveInt)
      .option('--keep-names', 'tflite: name every tensor (by default only the input and output are named: a smaller file)')
      .option('--data <dir>', "transformers.js: images (labelled, for top-1) to measure the model card's accuracy on")
      .option('--json', 'print a JSON summary on stdout')
      .option('-q, --quiet', 'print nothing but errors'),
    ),
    'preprocessing to record: ',
  ).action(async (input: string, opts) => {
      const reporter = new Reporter(opts);
      await runCommand(reporter, async () => {
        checkFormat(opts);
        // only these run onnxruntime (plain conversion starts faster without loading it)
        if (opts.verify || opts.format === 'transformers.js') await quietOnnxruntime();
        if (opts.format === 'transformers.js') {
          const { output, dtypes, data, force, imageSize, dynamicSize, outputs, stateDictKey, labels, passes, skipPass, verify } = opts;
          return runTransformersJs(input, output, { dtypes, data, force, imageSize, dynamicSize, outputs, stateDictKey, labelsFile: labels, ...preprocessingOverrides(opts), passes, skip: skipPass, verify }, reporter);
        }
        // the verb (and what it needs) loads only when the command runs: --help and --version start fast
        const { convert } = await import('../convert.js');
        const r = await convert(input, opts.output, {
          format: opts.format,
          tfjs: { weights: opts.weights, gelu: opts.gelu, shardSize: opts.shardSize, force: opts.force },
          tflite: { weights: opts.weights, gelu: opts.gelu, batch: opts.batch, keepNames: opts.keepNames },
          imageSize: opts.imageSize,
          dynamicSize: opts.dynamicSize,
          outputs: opts.outputs,
          stateDictKey: opts.stateDictKey,
          labelsFile: opts.labels,
          ...preprocessingOverrides(opts),
          externalData: opts.externalData,
          compactNames: opts.compactNames,
          passes: opts.passes,
          skip: opts.skipPass,
          verify: opts.verify,
          onStep: (s) => reporter.step(s),
        });
        reporter.finishStep();
        for (const w of r.warnings) reporter.warn(w);
        const c = r.checkpoint;
        const total = Object.values(r.timings).reduce((a, b) => a + b, 0);
        const what = c
          ? `ConvNeXt ${c.variant} (${c.layout} layout, ${c.format}${c.features ? `, backbone: ${c.features.map((f) => f.name).join(', ')}` : ''}), ${(c.parameters / 1e6).toFixed(2)} M parameters`
          : `ONNX model (opset ${r.onnxInput?.opset}, ${r.onnxInput?.nodes} nodes)`;
        reporter.result(
          [
            `${input} → ${r.output}: ${what}`,
            `  ${r.graph.nodes} nodes, ${formatBytes(r.bytesWritten)} written${r.externalDataFile ? ` (weights in ${r.externalDataFile})` : ''}, ${formatMs(total)}`,
            ...(opts.verify ? passTable(r.passes) : []),
          ].join('\n'),
          r,
        );
      });
    });
}
