// npm run bench: ratios against baselines measured in the same run. Medians of repeated runs.
//   convert: full-size ConvNeXt-T (.pth made here with torchvision, random weights) → ONNX,
//            vs a plain read+write copy of the checkpoint (the I/O floor) and torch.onnx.export.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'bench', 'out');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

function python(): string | undefined {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return undefined;
  return spawnSync(py, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0 ? py : undefined;
}

mkdirSync(out, { recursive: true });
const py = python();
const ckpt = join(out, 'convnext_tiny.pth');
let torchExportMs: number | undefined;
if (py) {
  process.stderr.write('making a full-size ConvNeXt-T with torchvision and timing torch.onnx.export …\n');
  const info = JSON.parse(execFileSync(py, [join(root, 'bench', 'make_convnext_tiny.py'), out], { encoding: 'utf8' }).trim().split('\n').pop()!);
  torchExportMs = info.torch_export_s * 1000;
} else if (!existsSync(ckpt)) {
  process.stderr.write('bench: needs python3-torch and python3-torchvision (apt-get install) to make the ConvNeXt-T checkpoint\n');
  process.exit(2);
}

const ckptBytes = statSync(ckpt).size;
const copyMs: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  writeFileSync(join(out, 'copy.pth'), readFileSync(ckpt));
  copyMs.push(performance.now() - t0);
}
rmSync(join(out, 'copy.pth'));

const convertMs: number[] = [];
const rss: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'bench', 'convert-once.js'), ckpt, join(out, 'convnext_tiny.onnx')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`convert failed: ${r.stderr}`);
  const m = JSON.parse(r.stdout);
  convertMs.push(m.wallMs);
  rss.push(m.maxRssBytes);
}

const conv = median(convertMs);
const lines = [
  `ConvNeXt-T checkpoint: ${mib(ckptBytes)}, ${RUNS} runs each, medians`,
  `convert (in-process wall)     ${fmt(conv)}`,
  `plain copy (read+write)       ${fmt(median(copyMs))}   convert/copy = ${(conv / median(copyMs)).toFixed(2)}×`,
  torchExportMs !== undefined
    ? `torch.onnx.export (opset 17)  ${fmt(torchExportMs)}   speed-up = ${(torchExportMs / conv).toFixed(1)}× (target ≥ 10×)`
    : 'torch.onnx.export             skipped (no python3-torch)',
  `peak RSS of convert           ${mib(median(rss))}   = ${(median(rss) / ckptBytes).toFixed(2)}× checkpoint (target ≤ 3×)`,
];
process.stdout.write(lines.join('\n') + '\n');

// onnxruntime-node CPU latency: our optimised graph vs torch.onnx.export's graph of the same weights
const ours = join(out, 'convnext_tiny.onnx');
const theirs = join(out, 'convnext_tiny.torch.onnx');
const latency: unknown[] = [];
let nodeCounts: Record<string, number> | undefined;
if (existsSync(theirs)) {
  const { inspect } = await import('../src/inspect.js');
  const count = async (p: string) => ((await inspect(p)) as { nodes: number }).nodes;
  nodeCounts = { ours: await count(ours), torch: await count(theirs) };
  process.stdout.write(`\nnodes: ours ${nodeCounts.ours}, torch.onnx.export ${nodeCounts.torch}\n`);
  const { compareLatency } = await import('./latency.js');
  const LAT_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 15);
  for (const [batch, runs] of [[1, LAT_RUNS], [32, Math.max(3, Math.round(LAT_RUNS / 3))]] as const) {
    const [r] = await compareLatency({ ours, torch: theirs }, [batch], runs);
    latency.push(r);
    const ratio = r.medianMs.ours / r.medianMs.torch;
    process.stdout.write(
      `onnxruntime-node CPU, batch ${String(batch).padEnd(2)}  ours ${r.medianMs.ours.toFixed(1)} ms, torch.onnx.export ${r.medianMs.torch.toFixed(1)} ms` +
        `  ratio ${ratio.toFixed(3)} (target ≤ 0.95; median of ${runs})\n`,
    );
  }
}
writeFileSync(join(out, 'bench.json'), JSON.stringify({ ckptBytes, copyMs, convertMs, rss, torchExportMs, nodeCounts, latency }, null, 2));
