import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { EXIT, quietOnnxruntime, Reporter, runCommand } from './report.js';
import { batchSizes, channels3, finiteNumber, imageSizeArg, positiveChannels3, positiveInt, positiveNumber } from './parse.js';
import { choice, preprocessingFlags, preprocessingOverrides } from './parse.js';

const PROVIDERS = ['auto', 'webgpu', 'cuda', 'cpu', 'wasm', 'webgl'];

export function validateCommand(program: Command): void {
  preprocessingFlags(
      program.command('validate')
      .description('measure accuracy against labels and a reference, and speed on the GPU or CPU; gates for CI')
      .argument('<model>', 'ONNX file, TF.js model folder, or checkpoint (converted in memory)')
      .option('--reference <model>', 'the model to compare against (e.g. the fp32 model)')
      .option('--data <dir>', 'images (folder with labels.txt / CSV / class folders, or a .npy tensor)')
      .option('--labels <file>', 'labels for --data (FILE LABEL lines or CSV)')
      .option('--limit <n>', 'use the first N images', positiveInt)
      .addOption(choice('--runtime <where>', 'node (default: onnxruntime-node, TF.js in Node) | browser (onnxruntime-web and TF.js in headless Chromium)', ['node', 'browser']))
      .option('--browser <path>', 'with --runtime browser: the Chromium or Chrome executable (default: the system\'s)')
      .addOption(choice('--ep <provider>', 'onnxruntime execution provider: auto (default) | webgpu | cuda | cpu; in a browser auto | wasm | webgpu | webgl', PROVIDERS))
      .addOption(choice('--reference-ep <provider>', "the reference's provider, when it should differ (e.g. cpu, to check a GPU's numerics against the CPU)", PROVIDERS))
      .addOption(choice('--tfjs-backend <name>', 'TF.js backend: cpu | wasm (default); in a browser also webgl | webgpu', ['cpu', 'wasm', 'webgl', 'webgpu']))
      .option('--batch <list>', 'batch sizes to time (comma-separated, default 1,8,32; "none" to skip timing)', batchSizes)
      .option('--max-drop <points>', 'gate: largest top-1 drop against the reference', finiteNumber)
      .option('--min-agreement <pct>', 'gate: smallest top-1 agreement with the reference', finiteNumber)
      .option('--min-cosine <x>', 'gate: smallest mean cosine similarity of logits', finiteNumber)
      .option('--max-latency-ms <ms>', 'gate: largest median latency at the first batch size', positiveNumber)
      .option('--min-speedup <x>', 'gate: smallest reference/model latency ratio at every batch size', positiveNumber)
      .option('--image-size <pixels>', 'input size when validating a checkpoint (`test`: a timm Hub folder\'s test_input_size)', imageSizeArg)
      .option('--json [file]', 'write the full report as JSON to FILE (stdout when no file is given)')
      .option('--junit <file>', 'write one JUnit test case per gate')
      .option('--html <file>', 'write a self-contained HTML report with plots')
      .option('-q, --quiet', 'print nothing but errors and failed gates'),
      '',
  ).action(async (model: string, opts) => {
      const jsonToStdout = opts.json === true;
      const reporter = new Reporter({ json: jsonToStdout, quiet: opts.quiet });
      await runCommand(reporter, async () => {
        if (opts.referenceEp && !opts.reference) throw new InputError('--reference-ep needs --reference');
        if (opts.browser !== undefined && opts.runtime !== 'browser') throw new InputError('--browser needs --runtime browser');
        const { filesValidated, validate } = await import('../validate/index.js');
        const { checkOutputs, writeFilesAtomic } = await import('../formats/files.js');
        // the reports may not land on anything the run reads, checked before the work starts
        const reports = [
          ...(typeof opts.json === 'string' ? [{ path: opts.json, what: 'the --json report' }] : []),
          ...(opts.junit ? [{ path: opts.junit, what: 'the --junit report' }] : []),
          ...(opts.html ? [{ path: opts.html, what: 'the --html report' }] : []),
        ];
        checkOutputs(reports, filesValidated(model, opts));
        await quietOnnxruntime();
        const { renderHtml, renderJunit, renderText } = await import('../validate/report.js');
        const report = await validate(model, {
          reference: opts.reference,
          data: opts.data,
          labels: opts.labels,
          limit: opts.limit,
          runtime: opts.runtime,
          browser: opts.browser,
          ep: opts.ep,
          referenceEp: opts.referenceEp,
          tfjsBackend: opts.tfjsBackend,
          batches: opts.batch,
          ...preprocessingOverrides(opts),
          imageSize: opts.imageSize,
          gates: {
            maxDrop: opts.maxDrop,
            minAgreement: opts.minAgreement,
            minCosine: opts.minCosine,
            maxLatencyMs: opts.maxLatencyMs,
            minSpeedup: opts.minSpeedup,
          },
          onStep: (s) => reporter.step(s),
          onProgress: (what, done, total) => reporter.progress(what, done, total),
        });
        reporter.finishStep();
        for (const r of [report.model, report.reference]) for (const w of r?.warnings ?? []) reporter.warn(`${r!.path}: ${w}`);
        const files = [];
        if (typeof opts.json === 'string') files.push({ path: opts.json, chunks: [Buffer.from(JSON.stringify(report, null, 2) + '\n')] });
        if (opts.junit) files.push({ path: opts.junit, chunks: [Buffer.from(renderJunit(report))] });
        if (opts.html) files.push({ path: opts.html, chunks: [Buffer.from(renderHtml(report))] });
        writeFilesAtomic(files);
        reporter.result(renderText(report), report);
        for (const g of report.gates) if (!g.passed) process.stderr.write(`failed gate --${g.name} ${g.limit}: ${g.detail}\n`);
        return report.passed ? EXIT.ok : EXIT.failed;
      });
    });
}
