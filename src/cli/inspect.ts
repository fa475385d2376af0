import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { describe } from '../convnext/spec.js';
import type { CheckpointInfo, OnnxInfo } from '../inspect.js';
import { formatBytes, Reporter, runCommand } from './report.js';

/** When the passes outside the default pipeline run. */
const WHEN: Record<string, string> = {
  'pointwise-to-matmul': 'instead of pointwise-to-conv in quantize --to int8 and int4-weights (and int8-weights with --skip-pass dequantize-as-cast-mul)',
  'bias-full-rank': 'after pointwise-to-matmul in quantize --to int8 and int4-weights (and int8-weights with --skip-pass dequantize-as-cast-mul)',
  'matmul-integer-to-float': "after quantize --to int8 for onnxruntime's CPU targets (not --target webgpu)",
  'dequantize-as-cast-mul': 'after quantize --to int8-weights (and on the Conv weights of int4-weights)',
  'matmul-nbits': 'in quantize --to int4-weights (after pointwise-to-matmul and bias-full-rank), with its --block-size',
  'compact-names': 'on writing ONNX: convert --compact-names; quantize unless --keep-names',
};

export function inspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('describe a checkpoint or ONNX model: layout, variant, depths, widths, parameters, dtypes, size')
    .argument('[file]', 'checkpoint file, Hugging Face folder or ONNX model')
    .option('--passes', 'list the passes of the convert pipeline, in order')
    .option('--json', 'print JSON on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (file: string | undefined, opts) => {
      const reporter = new Reporter(opts);
      await runCommand(reporter, async () => {
        if (opts.passes) {
          const { OPTIONAL_PASSES, PASSES, TFJS_WRITER_PASSES } = await import('../passes/pipeline.js');
          const passes = [
            ...PASSES.map((p) => ({ name: p.name, purpose: p.purpose, when: 'pipeline' })),
            ...OPTIONAL_PASSES.map((p) => ({ name: p.name, purpose: p.purpose, when: WHEN[p.name] })),
            ...TFJS_WRITER_PASSES.map((p) => ({ name: p.name, purpose: p.purpose, when: 'on writing TF.js' })),
          ];
          const line = (p: (typeof passes)[number]) => `${p.name.padEnd(22)} ${p.purpose}${p.when === 'pipeline' ? '' : ` (${p.when})`}`;
          reporter.result(passes.map(line).join('\n'), passes);
          return;
        }
        if (!file) throw new InputError('give a file to inspect, or --passes');
        const { inspect } = await import('../inspect.js');
        const info = await inspect(file);
        if (info.kind === 'checkpoint') for (const w of info.warnings) reporter.warn(w);
        reporter.result(info.kind === 'checkpoint' ? describeCheckpoint(info) : describeOnnx(info), info);
      });
    });
}

const counts = (r: Readonly<Record<string, number>>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`)
    .join(', ');

function describeCheckpoint(i: CheckpointInfo): string {
  return [
    `${i.file}`,
    `  format      ${i.format}, ${formatBytes(i.bytes)}`,
    `  layout      ${i.layout}${i.stateDictKey ? ` (weights under '${i.stateDictKey}')` : ''}`,
    `  model       ConvNeXt ${i.version.toUpperCase()} ${i.variant}${i.layerScale ? ', LayerScale' : ''}${i.stem !== 'patch' ? `, ${describe.stem[i.stem]}` : ''}${i.norm !== 'layernorm' ? `, ${describe.norm[i.norm].split(':')[0]}` : ''}`,
    `  depths      ${i.depths.join(', ')}`,
    `  widths      ${i.widths.join(', ')}`,
    i.outFeatures
      ? `  backbone    ${i.outFeatures.map((f) => `${f.name} (${f.channels} channels, stride ${f.stride}${f.norm ? ', normed' : ''})`).join(', ')}`
      : `  classes     ${i.numClasses || 'none (feature extractor)'}${i.labels ? `, ${i.labels} labels` : ''}`,
    `  parameters  ${i.parameters.toLocaleString('en-US')} (${counts(i.dtypes)})`,
    `  image size  ${i.imageSize}`,
    ...i.assumed.map((a, k) => `  ${k === 0 ? 'assumed' : ''}`.padEnd(14) + `${a.what} ${a.value}: ${a.why}`),
  ].join('\n');
}

function describeOnnx(i: OnnxInfo): string {
  const io = (v: OnnxInfo['inputs']) => v.map((x) => `${x.name} ${x.dtype} [${x.shape.join(', ')}]`).join('; ');
  const lines = [
    `${i.file}`,
    `  format      ONNX, ${formatBytes(i.bytes)}, opset ${Object.entries(i.opsets).map(([d, v]) => (d ? `${d} ${v}` : v)).join(', ')}`,
    `  inputs      ${io(i.inputs)}`,
    `  outputs     ${io(i.outputs)}`,
    `  nodes       ${i.nodes} (${counts(i.ops)})`,
    `  parameters  ${i.parameters.toLocaleString('en-US')} in ${i.initializers} initializers (${counts(i.dtypes)})`,
  ];
  for (const [k, v] of Object.entries(i.metadata)) lines.push(`  meta ${k.padEnd(6)} ${v.length > 100 ? `${v.slice(0, 97)}...` : v}`);
  return lines.join('\n');
}
