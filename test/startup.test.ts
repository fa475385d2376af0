// Start-up pays only for what a command uses: --version and convert load no native runtime
// (onnxruntime, libvips/sharp, TF.js), so a plain conversion is not slowed by them. Read from the
// process's own memory map at exit, which names every shared library it loaded (Linux).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN } from './helpers/cli.js';
import { fixturePath, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const hook = join(dir, 'maps.mjs');
writeFileSync(
  hook,
  `import { readFileSync } from 'node:fs';
process.on('exit', () => {
  const libs = readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5] ?? '').filter((p) => /onnxruntime|vips|sharp|tfjs/.test(p));
  process.stderr.write('native: ' + JSON.stringify([...new Set(libs)]) + '\\n');
});
`,
);

function nativeLibraries(...args: string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', hook, BIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const line = r.stderr.split('\n').find((l) => l.startsWith('native: '));
  assert.ok(line, r.stderr);
  return JSON.parse(line.slice('native: '.length));
}

describe('start-up', { skip: !existsSync('/proc/self/maps') && 'no /proc/self/maps on this system' }, () => {
  it('--version loads no native runtime', () => {
    assert.deepEqual(nativeLibraries('--version'), []);
  });

  it('convert loads no native runtime; validate does load onnxruntime (the check can see one)', () => {
    const m = manifest.models.find((f) => f.name === 'v1_timm')!;
    const out = join(dir, 'v1.onnx');
    assert.deepEqual(nativeLibraries('convert', fixturePath(m.path), '-o', out, '--image-size', String(m.image_size), '-q'), []);
    assert.ok(nativeLibraries('validate', out, '--batch', '1', '--ep', 'cpu', '-q').some((l) => /onnxruntime/.test(l)));
  });

  // Every module loaded, through a module loader hook that appends each URL to a file.
  const loads = join(dir, 'loads.txt');
  const loaderHooks = join(dir, 'hooks.mjs');
  const registerHooks = join(dir, 'register.mjs');
  writeFileSync(loaderHooks, `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) { appendFileSync(${JSON.stringify(loads)}, url + '\\n'); return next(url, context); }
`);
  writeFileSync(registerHooks, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${loaderHooks}`).href)});\n`);
  function modulesLoaded(...args: string[]): string[] {
    rmSync(loads, { force: true });
    const r = spawnSync(process.execPath, ['--import', registerHooks, BIN, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(loads, 'utf8').split('\n').filter(Boolean);
  }
  const writers = /formats\/(tflite|tfjs)\/(index|ops|emit|lower)\.js|convnext\/import-onnx\.js|node_modules\/(flatbuffers|@tensorflow)\//;

  it('--version and an ONNX convert of a checkpoint load neither the TF.js and TFLite writers nor the ONNX importer', () => {
    const version = modulesLoaded('--version');
    assert.ok(version.some((u) => u.endsWith('/cli/program.js')), 'the hook saw the CLI load');
    assert.deepEqual(version.filter((u) => writers.test(u) || /formats\/onnx\.js|onnx-proto/.test(u)), []);
    const m = manifest.models.find((f) => f.name === 'v1_timm')!;
    const converted = modulesLoaded('convert', fixturePath(m.path), '-o', join(dir, 'v1-modules.onnx'), '--image-size', String(m.image_size), '-q');
    assert.ok(converted.some((u) => u.endsWith('/formats/onnx.js')));
    assert.deepEqual(converted.filter((u) => writers.test(u)), []);
    const tflite = modulesLoaded('convert', fixturePath(m.path), '-o', join(dir, 'v1.tflite'), '--format', 'tflite', '--image-size', String(m.image_size), '-q');
    assert.ok(tflite.some((u) => /formats\/tflite\/index\.js/.test(u)), 'the TFLite writer loads when asked for');
  });
});
