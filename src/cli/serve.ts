import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { EXIT, formatBytes, Reporter, runCommand } from './report.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port from 0 to 65535, got '${value}'`);
  return n;
}

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('a demo page that runs the model in your own browser (onnxruntime-web: WebGPU where it can, else wasm) on an image you drop or choose: top-5, backend, latency')
    .argument('<model>', 'an ONNX classifier from convert/quantize (labels and preprocessing from its metadata), or a --format transformers.js folder (each backend loads the dtype its device_config names)')
    .option('--port <n>', 'port on 127.0.0.1 (0: one the system picks)', port, 0)
    .option('--write-page', 'write the page as static files into a demo/ folder beside the model instead of serving it')
    .option('-q, --quiet', 'print only the URL (or the folder) and errors')
    .action(async (model: string, opts) => {
      const reporter = new Reporter({ quiet: opts.quiet });
      await runCommand(reporter, async () => {
        const { readDemoModel, serveDemo, writeDemoPage } = await import('../web/demo.js');
        const demo = readDemoModel(model);
        for (const w of demo.warnings) reporter.warn(w);
        if (opts.writePage) {
          const r = writeDemoPage(demo, model);
          process.stdout.write(`${r.dir}${opts.quiet ? '' : `: the demo page (${r.files.length} files, ${formatBytes(r.bytes)}); serve the model's folder with any static web server and open demo/index.html`}\n`);
          return EXIT.ok;
        }
        const server = await serveDemo(demo, opts.port);
        process.stdout.write(`${server.url}${opts.quiet ? '' : '  (127.0.0.1 only; Ctrl-C stops it)'}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await server.close();
        return EXIT.ok;
      });
    });
}
