import type { Command } from 'commander';
import { convert } from '../convert.js';
import { formatBytes, formatMs, Reporter, runCommand } from './report.js';
import { positiveInt } from './parse.js';

export function convertCommand(program: Command): void {
  program
    .command('convert')
    .description('convert a ConvNeXt checkpoint (.pth/.bin, .safetensors, Hugging Face folder) to ONNX')
    .argument('<input>', 'checkpoint file or Hugging Face model folder')
    .requiredOption('-o, --output <file>', 'ONNX file to write')
    .option('--image-size <pixels>', 'input height and width (default: from config.json, else 224)', positiveInt)
    .option('--state-dict-key <key>', "entry of the checkpoint to take weights from (e.g. 'model_ema')")
    .option('--external-data', 'keep weights in <output>.data beside the model (automatic above 1.8 GiB)')
    .option('--json', 'print a JSON summary on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (input: string, opts) => {
      const reporter = new Reporter(opts);
      await runCommand(reporter, async () => {
        const r = await convert(input, opts.output, {
          imageSize: opts.imageSize,
          stateDictKey: opts.stateDictKey,
          externalData: opts.externalData,
          onStep: (s) => reporter.step(s),
        });
        reporter.finishStep();
        for (const w of r.warnings) reporter.warn(w);
        const c = r.checkpoint;
        const total = Object.values(r.timings).reduce((a, b) => a + b, 0);
        reporter.result(
          [
            `${r.output}: ConvNeXt ${c.variant} (${c.layout} layout, ${c.format}), ${(c.parameters / 1e6).toFixed(2)} M parameters`,
            `  ${r.graph.nodes} nodes, ${formatBytes(r.bytesWritten)} written${r.externalDataFile ? ` (weights in ${r.externalDataFile})` : ''}, ${formatMs(total)}`,
          ].join('\n'),
          r,
        );
      });
    });
}
