import type { Command } from 'commander';
import { convert } from '../convert.js';
import { formatBytes, formatMs, Reporter, runCommand } from './report.js';
import type { PassReport } from '../passes/pipeline.js';
import { collect, list, positiveInt } from './parse.js';

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
  program
    .command('convert')
    .description('convert a ConvNeXt checkpoint (.pth/.bin, .safetensors, Hugging Face folder) to ONNX')
    .argument('<input>', 'checkpoint file or Hugging Face model folder')
    .requiredOption('-o, --output <file>', 'ONNX file to write')
    .option('--image-size <pixels>', 'input height and width (default: from config.json, else 224)', positiveInt)
    .option('--state-dict-key <key>', "entry of the checkpoint to take weights from (e.g. 'model_ema')")
    .option('--external-data', 'keep weights in <output>.data beside the model (automatic above 1.8 GiB)')
    .option('--passes <list>', 'run exactly these passes, in this order (comma-separated; see inspect --passes)', list)
    .option('--skip-pass <name>', 'leave a pass out (repeatable)', collect, [])
    .option('--verify', 'run the graph in onnxruntime before and after each pass and report the output change')
    .option('--json', 'print a JSON summary on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (input: string, opts) => {
      const reporter = new Reporter(opts);
      await runCommand(reporter, async () => {
        const r = await convert(input, opts.output, {
          imageSize: opts.imageSize,
          stateDictKey: opts.stateDictKey,
          externalData: opts.externalData,
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
          ? `ConvNeXt ${c.variant} (${c.layout} layout, ${c.format}), ${(c.parameters / 1e6).toFixed(2)} M parameters`
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
